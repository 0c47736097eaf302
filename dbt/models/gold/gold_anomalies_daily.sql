{#- Real-time alerts per market and UTC trading day, from the alert log in the lake (deduplicated
    by alert id: a replay re-writes the same id). Grain: market x trading_date; only market-days
    with at least one alert. Moves are percent (the alert's move_pct), ratios are x baseline. -#}
{{ config(pre_hook = "{{ delete_batch_dates('trading_date') }}") }}

with deduped as (
    select * from (
        select
            *,
            row_number() over (partition by alert_id order by event_ms) as copy_rank
        from {{ ref('stg_upbit__alerts') }}
    ) as ranked
    where copy_rank = 1
),

alerts as (
    select
        alert_id,
        rule,
        market,
        severity,
        event_ts_utc,
        cast(event_ts_utc as date) as trading_date,
        {{ json_number('payload_json', 'move_pct') }} as move_pct,
        {{ json_number('payload_json', 'ratio') }} as volume_ratio
    from deduped
)

select
    market,
    trading_date,
    count(*) as alert_count,
    sum(case when rule = 'price_move' then 1 else 0 end) as price_move_alerts,
    sum(case when rule = 'volume_spike' then 1 else 0 end) as volume_spike_alerts,
    sum(case when rule in ('market_warning', 'market_caution') then 1 else 0 end) as flag_alerts,
    sum(case when severity = 'critical' then 1 else 0 end) as critical_alerts,
    max(abs(move_pct)) as max_abs_move_pct,
    max(volume_ratio) as max_volume_ratio,
    min(event_ts_utc) as first_alert_utc,
    max(event_ts_utc) as last_alert_utc,
    {{ utc_to_kst('min(event_ts_utc)') }} as first_alert_kst,
    {{ utc_to_kst('max(event_ts_utc)') }} as last_alert_kst
from alerts
where {{ in_batch_dates('trading_date') }}
group by market, trading_date
