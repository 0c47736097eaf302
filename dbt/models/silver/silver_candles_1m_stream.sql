{#- 1-minute candles aggregated from the stream's trades (silver_trades), the same shape as the
    REST candles' traded minutes, for the completeness report. Only minutes with trades exist.
    Grain: market x candle_start_utc. Open/close are the first/last trade of the minute by
    (trade time, sequential_id). -#}
{{ config(pre_hook = "{{ delete_batch_dates('trading_date') }}") }}

with trades as (
    select
        market,
        trading_date,
        {{ dbt.date_trunc('minute', 'trade_ts_utc') }} as candle_start_utc,
        trade_ts_utc,
        sequential_id,
        trade_price,
        trade_volume,
        trade_value
    from {{ ref('silver_trades') }}
    where {{ in_batch_dates('trading_date') }}
),

ordered as (
    select
        *,
        row_number() over (
            partition by market, candle_start_utc order by trade_ts_utc, sequential_id
        ) as first_rank,
        row_number() over (
            partition by market, candle_start_utc order by trade_ts_utc desc, sequential_id desc
        ) as last_rank
    from trades
)

select
    market,
    candle_start_utc,
    {{ utc_to_kst('candle_start_utc') }} as candle_start_kst,
    trading_date,
    max(case when first_rank = 1 then trade_price end) as open_price,
    max(trade_price) as high_price,
    min(trade_price) as low_price,
    max(case when last_rank = 1 then trade_price end) as close_price,
    {{ ordered_agg('sum', 'trade_volume', 'trade_ts_utc, sequential_id') }} as volume,
    {{ ordered_agg('sum', 'trade_value', 'trade_ts_utc, sequential_id') }} as value_traded,
    count(*) as trade_count,
    max(trade_ts_utc) as last_trade_ts_utc
from ordered
group by market, candle_start_utc, trading_date
