{#- The market list as Upbit published it when each day was ingested (/v1/market/all).
    Grain: market x snapshot_date. -#}
{{ config(pre_hook = "{{ delete_batch_dates('snapshot_date') }}") }}

select distinct
    market,
    date as snapshot_date,
    quote_currency,
    korean_name,
    english_name,
    coalesce(warning, false) as has_warning
from {{ lake_source('rest_markets') }}
