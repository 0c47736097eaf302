{#- The market list as Upbit published it when each day was ingested (/v1/market/all).
    Grain: market x snapshot_date. -#}
{{ config(pre_hook = "{{ delete_batch_dates('snapshot_date') }}") }}

select distinct
    market,
    snapshot_date,
    quote_currency,
    korean_name,
    english_name,
    has_warning
from {{ ref('stg_upbit__rest_markets') }}
