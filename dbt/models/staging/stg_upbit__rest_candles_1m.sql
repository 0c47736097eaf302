{#- Staging: REST 1-minute candles (source lake.rest_candles_1m), renamed and typed.
    One row per candle as fetched; only traded minutes exist (Upbit's REST has no empty
    candles). silver_candles_1m deduplicates and makes the empty minutes explicit. -#}

with source as (
    select * from {{ lake_source('rest_candles_1m') }}
),

renamed as (
    select
        market,
        {{ to_utc_wall('candle_date_time_utc') }} as candle_start_utc,
        opening_price as open_price,                        -- quote currency (KRW)
        high_price,
        low_price,
        trade_price as close_price,
        candle_acc_trade_volume as volume,                  -- base currency
        candle_acc_trade_price as value_traded,             -- quote currency (KRW)
        {{ to_utc_wall('timestamp') }} as last_trade_ts_utc,
        date as partition_date
    from source
)

select * from renamed
