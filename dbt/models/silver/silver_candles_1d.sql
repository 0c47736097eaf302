{#- Upbit's own REST day candles (00:00-24:00 UTC), typed and deduplicated.
    Grain: market x trading_date. Used for the previous close and as a cross-check of the
    minute aggregation. -#}
{{ config(pre_hook = "{{ delete_batch_dates('trading_date') }}") }}

with renamed as (
    select * from {{ ref('stg_upbit__rest_candles_1d') }}
),

deduped as (
    select * from (
        select
            *,
            row_number() over (
                partition by market, trading_date order by last_trade_ts_utc desc
            ) as copy_rank
        from renamed
    ) as ranked
    where copy_rank = 1
)

select
    market,
    trading_date,
    open_price,
    high_price,
    low_price,
    close_price,
    prev_close_price,
    change_rate,
    volume,
    value_traded,
    last_trade_ts_utc
from deduped
where {{ in_batch_dates('trading_date') }}
