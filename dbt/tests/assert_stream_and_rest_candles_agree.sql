{#- Wherever the stream and REST both have a 1-minute candle, they agree (OHLC equal, volume and
    KRW value to 1e-9 relative). Returns the disagreeing minutes. Severity comes from the var
    stream_rest_agreement_severity: `error` in CI (one simulated tape feeds both sides), `warn` in
    production, where gold_data_completeness reports disagreements instead of failing the build. -#}
{{ config(severity = var('stream_rest_agreement_severity', 'warn')) }}

select
    r.market,
    r.candle_start_utc,
    r.open_price as rest_open, s.open_price as stream_open,
    r.high_price as rest_high, s.high_price as stream_high,
    r.low_price as rest_low, s.low_price as stream_low,
    r.close_price as rest_close, s.close_price as stream_close,
    r.volume as rest_volume, s.volume as stream_volume,
    r.value_traded as rest_value, s.value_traded as stream_value
from {{ ref('silver_candles_1m') }} as r
inner join {{ ref('silver_candles_1m_stream') }} as s
    on s.market = r.market and s.candle_start_utc = r.candle_start_utc
where r.has_trades
  and {{ in_batch_dates('r.trading_date') }}
  and not (
    {{ approx_equal('s.open_price', 'r.open_price') }}
    and {{ approx_equal('s.high_price', 'r.high_price') }}
    and {{ approx_equal('s.low_price', 'r.low_price') }}
    and {{ approx_equal('s.close_price', 'r.close_price') }}
    and {{ approx_equal('s.volume', 'r.volume') }}
    and {{ approx_equal('s.value_traded', 'r.value_traded') }}
  )
