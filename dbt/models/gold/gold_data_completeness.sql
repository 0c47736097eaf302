{#- Stream against REST, per market and UTC trading day: which traded minutes each side has and
    whether their candles agree. REST 1-minute candles (Upbit's own aggregation) are the
    reference; the stream candles are rebuilt from the trades the pipeline captured (live and
    backfilled). Grain: market x trading_date, for every market-day either side has.
    A minute "agrees" when open, high, low and close are equal and volume and KRW value are
    equal to 1e-9 relative (macro approx_equal). completeness_pct is in percent. -#}
{{ config(pre_hook = "{{ delete_batch_dates('trading_date') }}") }}

with rest as (
    select * from {{ ref('silver_candles_1m') }}
    where has_trades and {{ in_batch_dates('trading_date') }}
),

stream as (
    select * from {{ ref('silver_candles_1m_stream') }}
    where {{ in_batch_dates('trading_date') }}
),

paired as (
    select
        coalesce(r.market, s.market) as market,
        coalesce(r.trading_date, s.trading_date) as trading_date,
        r.market is not null as in_rest,
        s.market is not null as in_stream,
        {{ approx_equal('s.open_price', 'r.open_price') }}
            and {{ approx_equal('s.high_price', 'r.high_price') }}
            and {{ approx_equal('s.low_price', 'r.low_price') }}
            and {{ approx_equal('s.close_price', 'r.close_price') }} as prices_agree,
        {{ approx_equal('s.volume', 'r.volume') }}
            and {{ approx_equal('s.value_traded', 'r.value_traded') }} as volumes_agree,
        coalesce(s.trade_count, 0) as stream_trades
    from rest as r
    full outer join stream as s
        on s.market = r.market and s.candle_start_utc = r.candle_start_utc
)

select
    market,
    trading_date,
    sum(case when in_rest then 1 else 0 end) as rest_minutes,
    sum(case when in_stream then 1 else 0 end) as stream_minutes,
    sum(case when in_rest and in_stream then 1 else 0 end) as both_minutes,
    sum(case when in_rest and not in_stream then 1 else 0 end) as missing_in_stream_minutes,
    sum(case when in_stream and not in_rest then 1 else 0 end) as missing_in_rest_minutes,
    sum(case when in_rest and in_stream and not prices_agree then 1 else 0 end)
        as price_mismatch_minutes,
    sum(case when in_rest and in_stream and not volumes_agree then 1 else 0 end)
        as volume_mismatch_minutes,
    sum(case when in_rest and in_stream and not (prices_agree and volumes_agree) then 1 else 0 end)
        as mismatched_minutes,
    sum(stream_trades) as stream_trades,
    case when sum(case when in_rest then 1 else 0 end) > 0 then
        100.0 * sum(case when in_rest and in_stream and prices_agree and volumes_agree
                         then 1 else 0 end)
        / sum(case when in_rest then 1 else 0 end)
    end as completeness_pct
from paired
group by market, trading_date
