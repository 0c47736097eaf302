{#- Staging: REST day candles, 00:00-24:00 UTC (source lake.rest_candles_1d), renamed and typed.
    One row per candle as fetched; silver_candles_1d deduplicates. -#}

with source as (
    select * from {{ lake_source('rest_candles_1d') }}
),

renamed as (
    select
        market,
        cast({{ to_utc_wall('candle_date_time_utc') }} as date) as trading_date,
        opening_price as open_price,                 -- quote currency (KRW)
        high_price,
        low_price,
        trade_price as close_price,
        prev_closing_price as prev_close_price,
        change_rate,                                  -- fraction: close / prev close - 1
        candle_acc_trade_volume as volume,            -- base currency
        candle_acc_trade_price as value_traded,       -- quote currency (KRW)
        {{ to_utc_wall('timestamp') }} as last_trade_ts_utc,
        date as partition_date
    from source
)

select * from renamed
