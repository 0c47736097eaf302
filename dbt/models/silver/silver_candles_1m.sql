{#- REST 1-minute candles on an explicit minute grid: every minute of every market's day, one
    row each, including the minutes in which nothing traded (has_trades = false).
    Grain: market x candle_start_utc. Days: the run's UTC trading days (delete+insert per day).
    A market appears on a day when REST returned at least one candle for it that day.
    No-trade minutes carry the last close forward as their price (O = H = L = C = that close,
    volume 0, the standard "previous tick" convention of realized-volatility work); minutes before
    the day's first trade have NULL prices, since no price existed yet within the day. -#}
{{ config(pre_hook = "{{ delete_batch_dates('trading_date') }}") }}

with renamed as (
    select * from {{ ref('stg_upbit__rest_candles_1m') }}
),

deduped as (
    -- the same minute twice (overlapping raw files) keeps the row with the latest last trade
    select * from (
        select
            *,
            row_number() over (
                partition by market, candle_start_utc
                order by last_trade_ts_utc desc, partition_date desc
            ) as copy_rank
        from renamed
    ) as ranked
    where copy_rank = 1
),

market_days as (
    select distinct market, cast(candle_start_utc as date) as trading_date
    from deduped
),

grid as (
    select m.market, g.minute_utc as candle_start_utc, m.trading_date
    from market_days as m
    inner join ({{ minute_grid() }}) as g
        on cast(g.minute_utc as date) = m.trading_date
),

joined as (
    select
        grid.market,
        grid.candle_start_utc,
        grid.trading_date,
        c.open_price,
        c.high_price,
        c.low_price,
        c.close_price,
        c.volume,
        c.value_traded,
        c.last_trade_ts_utc,
        c.market is not null as has_trades,
        {{ last_non_null('c.close_price', 'grid.market, grid.trading_date', 'grid.candle_start_utc') }}
            as carried_close
    from grid
    left join deduped as c
        on c.market = grid.market and c.candle_start_utc = grid.candle_start_utc
)

select
    market,
    candle_start_utc,
    {{ utc_to_kst('candle_start_utc') }} as candle_start_kst,
    trading_date,
    has_trades,
    coalesce(open_price, carried_close) as open_price,
    coalesce(high_price, carried_close) as high_price,
    coalesce(low_price, carried_close) as low_price,
    coalesce(close_price, carried_close) as close_price,
    coalesce(volume, 0) as volume,
    coalesce(value_traded, 0) as value_traded,
    last_trade_ts_utc
from joined
where {{ in_batch_dates('trading_date') }}
