{#- One row per market and UTC trading day (00:00-24:00 UTC = 09:00-09:00 KST), from the REST
    1-minute candles on their explicit minute grid (silver_candles_1m).

    Volatility, all as fractions (0.05 = 5 %), daily and annualised x sqrt(365) (crypto trades
    every day of the year):
      realized_vol   = sqrt(sum r_i^2), r_i = ln(C_i / C_{i-1}) over consecutive minutes of the
                       day, from the day's first traded minute on (no-trade minutes repeat the last
                       close, r = 0); the first return is within the day (no overnight term).
      parkinson_vol  = sqrt( ln(H/L)^2 / (4 ln 2) ) on the day's OHLC.
      garman_klass_vol = sqrt( 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2 ) on the day's OHLC.
    largest_1m_move = the 1-minute log return r_i of largest magnitude (signed), as a fraction.
    Returns are fractions; range_pct = 100 (H - L) / O is in percent. Prices in quote currency. -#}
{{ config(pre_hook = "{{ delete_batch_dates('trading_date') }}") }}

with minutes as (
    select
        market,
        trading_date,
        candle_start_utc,
        has_trades,
        open_price,
        high_price,
        low_price,
        close_price,
        volume,
        value_traded,
        ln(close_price / lag(close_price) over (
            partition by market, trading_date order by candle_start_utc
        )) as log_return
    from {{ ref('silver_candles_1m') }}
    where {{ in_batch_dates('trading_date') }}
),

bounds as (
    select
        market,
        trading_date,
        min(case when has_trades then candle_start_utc end) as first_minute_utc,
        max(case when has_trades then candle_start_utc end) as last_minute_utc,
        max(case when has_trades then high_price end) as high_price,
        min(case when has_trades then low_price end) as low_price,
        {{ ordered_agg('sum', 'volume', 'candle_start_utc') }} as volume,
        {{ ordered_agg('sum', 'value_traded', 'candle_start_utc') }} as value_traded,
        sum(case when has_trades then 1 else 0 end) as minutes_traded,
        count(*) as minutes_in_grid,
        count(log_return) as n_returns,
        {{ ordered_agg('sum', 'log_return * log_return', 'candle_start_utc') }} as sum_sq_returns,
        max(abs(log_return)) as max_abs_return
    from minutes
    group by market, trading_date
),

daily as (
    select
        b.*,
        first_m.open_price,
        last_m.close_price
    from bounds as b
    left join minutes as first_m
        on first_m.market = b.market and first_m.candle_start_utc = b.first_minute_utc
    left join minutes as last_m
        on last_m.market = b.market and last_m.candle_start_utc = b.last_minute_utc
),

largest_move as (
    select market, trading_date, log_return, candle_start_utc
    from (
        select
            market,
            trading_date,
            log_return,
            candle_start_utc,
            row_number() over (
                partition by market, trading_date
                order by abs(log_return) desc, candle_start_utc
            ) as move_rank
        from minutes
        where log_return is not null
    ) as ranked
    where move_rank = 1
),

trade_counts as (
    select market, trading_date, count(*) as trade_count
    from {{ ref('silver_trades') }}
    where {{ in_batch_dates('trading_date') }}
    group by market, trading_date
)

select
    d.market,
    d.trading_date,
    {{ utc_to_kst('cast(d.trading_date as timestamp)') }} as day_start_kst,
    mk.korean_name,
    mk.english_name,
    d.open_price,
    d.high_price,
    d.low_price,
    d.close_price,
    day_candle.prev_close_price,
    d.close_price / d.open_price - 1 as return_open_close,
    d.close_price / day_candle.prev_close_price - 1 as return_prev_close,
    d.value_traded as volume_krw,
    d.volume as volume_base,
    tc.trade_count,
    d.minutes_traded,
    d.minutes_in_grid - d.minutes_traded as minutes_without_trades,
    d.first_minute_utc,
    d.last_minute_utc,
    d.n_returns,
    sqrt(d.sum_sq_returns) as realized_vol,
    sqrt(d.sum_sq_returns) * {{ sqrt_days_per_year() }} as realized_vol_annualized,
    sqrt(power(ln(d.high_price / d.low_price), 2) / (4 * ln(2.0))) as parkinson_vol,
    sqrt(power(ln(d.high_price / d.low_price), 2) / (4 * ln(2.0)))
        * {{ sqrt_days_per_year() }} as parkinson_vol_annualized,
    sqrt(greatest(0.0,
        0.5 * power(ln(d.high_price / d.low_price), 2)
        - (2 * ln(2.0) - 1) * power(ln(d.close_price / d.open_price), 2)
    )) as garman_klass_vol,
    sqrt(greatest(0.0,
        0.5 * power(ln(d.high_price / d.low_price), 2)
        - (2 * ln(2.0) - 1) * power(ln(d.close_price / d.open_price), 2)
    )) * {{ sqrt_days_per_year() }} as garman_klass_vol_annualized,
    lm.log_return as largest_1m_move,
    lm.candle_start_utc as largest_1m_move_at_utc,
    100 * (d.high_price - d.low_price) / d.open_price as range_pct
from daily as d
left join largest_move as lm
    on lm.market = d.market and lm.trading_date = d.trading_date
left join trade_counts as tc
    on tc.market = d.market and tc.trading_date = d.trading_date
left join {{ ref('silver_candles_1d') }} as day_candle
    on day_candle.market = d.market and day_candle.trading_date = d.trading_date
left join {{ ref('silver_markets') }} as mk
    on mk.market = d.market and mk.snapshot_date = d.trading_date
