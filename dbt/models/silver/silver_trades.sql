{#- Stream trades, typed and deduplicated on (market, sequential_id), one row per trade.
    Grain: market x sequential_id. Days: the run's UTC trading days (delete+insert per day).
    sequential_id identifies a trade (Upbit); a millisecond timestamp does not -- several trades
    share one -- so deduplicating on the timestamp would merge distinct trades. -#}
{{ config(pre_hook = "{{ delete_batch_dates('trading_date') }}") }}

with renamed as (
    select
        *,
        trade_price * trade_volume as trade_value                         -- quote currency
    from {{ ref('stg_upbit__trades') }}
),

deduped as (
    select
        *,
        row_number() over (
            partition by market, sequential_id
            -- the live record wins over a backfilled copy, then the first one received
            order by is_backfill, recv_ts_utc, kafka_partition, kafka_offset, frame_item
        ) as copy_rank
    from renamed
)

select
    market,
    sequential_id,
    trade_ts_utc,
    {{ utc_to_kst('trade_ts_utc') }} as trade_ts_kst,
    cast(trade_ts_utc as date) as trading_date,
    cast({{ utc_to_kst('trade_ts_utc') }} as date) as trade_date_kst,
    trade_price,
    trade_volume,
    trade_value,
    ask_bid,
    prev_closing_price,
    is_backfill,
    is_snapshot,
    recv_ts_utc,
    kafka_partition,
    kafka_offset
from deduped
where copy_rank = 1
  and {{ in_batch_dates('cast(trade_ts_utc as date)') }}
