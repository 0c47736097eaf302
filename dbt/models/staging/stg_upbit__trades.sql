{#- Staging: the stream's raw trades (source lake.trades), renamed and typed, nothing else.
    One row per record as written (duplicates included: snapshots, replays, backfill overlap);
    silver_trades deduplicates. Times are UTC wall-clock timestamps. -#}

with source as (
    select * from {{ lake_source('trades') }}
),

renamed as (
    select
        market,
        sequential_id,
        {{ to_utc_wall('trade_timestamp') }} as trade_ts_utc,            -- UTC wall time, ms
        trade_price,                                                      -- quote currency per unit
        trade_volume,                                                     -- base currency
        ask_bid,
        prev_closing_price,                                               -- quote currency
        coalesce(backfill, false) as is_backfill,
        coalesce(snapshot, false) as is_snapshot,
        {{ to_utc_wall('recv_ts') }} as recv_ts_utc,                      -- local receive time
        kafka_partition,
        kafka_offset,
        frame_item,
        date as partition_date
    from source
)

select * from renamed
