{#- How unusual each market's day was: today's annualised realized volatility ranked
    (a) against the same market's previous rank_history_days days -- today EXCLUDED, so the
        point under test is never part of its own baseline (the original z-score included the
        current row in a 5-row window and so could never exceed 1.79), and
    (b) against every market on the same day.
    Grain: market x trading_date. Percentiles are 0-100.
      own_percentile  = 100 * (days below + 0.5 * days equal) / history_days (mid-rank);
                        NULL without history.
      own_zscore      = (today - mean) / sample stddev of the history; NULL with < 2 days or a
                        zero stddev.
      cross_percentile = 100 * percent_rank() among the day's markets (0 = calmest,
                        100 = most volatile; 0 when only one market traded). -#}
{{ config(pre_hook = "{{ delete_batch_dates('trading_date') }}") }}

with today as (
    select market, trading_date, realized_vol_annualized
    from {{ ref('gold_market_daily') }}
    where {{ in_batch_dates('trading_date') }}
      and realized_vol_annualized is not null
),

history as (
    select market, trading_date, realized_vol_annualized
    from {{ ref('gold_market_daily') }}
    where trading_date >= {{ dbt.dateadd('day', -var('rank_history_days'), batch_date_from()) }}
      and trading_date < {{ batch_date_to() }}
      and realized_vol_annualized is not null
),

own as (
    select
        t.market,
        t.trading_date,
        count(h.trading_date) as history_days,
        sum(case when h.realized_vol_annualized < t.realized_vol_annualized then 1 else 0 end)
            as days_below,
        sum(case when h.realized_vol_annualized = t.realized_vol_annualized then 1 else 0 end)
            as days_equal,
        {{ ordered_agg('avg', 'h.realized_vol_annualized', 'h.trading_date') }} as history_mean,
        {{ ordered_agg('stddev_samp', 'h.realized_vol_annualized', 'h.trading_date') }}
            as history_stddev
    from today as t
    left join history as h
        on h.market = t.market
        and h.trading_date >= {{ dbt.dateadd('day', -var('rank_history_days'), 't.trading_date') }}
        and h.trading_date < t.trading_date
    group by t.market, t.trading_date
)

select
    t.market,
    t.trading_date,
    t.realized_vol_annualized,
    own.history_days,
    own.history_mean as history_mean_vol_annualized,
    case when own.history_days > 0
        then 100.0 * (own.days_below + 0.5 * own.days_equal) / own.history_days
    end as own_percentile,
    case when own.history_days >= 2 and own.history_stddev > 0
        then (t.realized_vol_annualized - own.history_mean) / own.history_stddev
    end as own_zscore,
    100.0 * percent_rank() over (
        partition by t.trading_date order by t.realized_vol_annualized
    ) as cross_percentile,
    rank() over (
        partition by t.trading_date order by t.realized_vol_annualized desc
    ) as cross_rank,
    count(*) over (partition by t.trading_date) as markets_ranked
from today as t
inner join own
    on own.market = t.market and own.trading_date = t.trading_date
