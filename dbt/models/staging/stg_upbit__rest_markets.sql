{#- Staging: the /v1/market/all snapshot of each ingested day (source lake.rest_markets),
    renamed and typed. -#}

with source as (
    select * from {{ lake_source('rest_markets') }}
),

renamed as (
    select
        market,
        date as snapshot_date,
        quote_currency,
        korean_name,
        english_name,
        coalesce(warning, false) as has_warning
    from source
)

select * from renamed
