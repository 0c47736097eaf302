{#- Staging: the real-time alert log (source lake.alerts), renamed and typed. One row per record
    as written (a replay may repeat an alert id; gold_anomalies_daily deduplicates). The rule's
    figures stay in the JSON payload; json_number() extracts them downstream. -#}

with source as (
    select * from {{ lake_source('alerts') }}
),

renamed as (
    select
        id as alert_id,
        rule,
        market,
        severity,
        event_ms,                                             -- epoch milliseconds
        {{ epoch_ms_to_utc('event_ms') }} as event_ts_utc,    -- UTC wall time
        json as payload_json,
        date as partition_date
    from source
)

select * from renamed
