{#- Time-zone handling. Every timestamp column in silver and gold is a zone-less TIMESTAMP whose
    zone is in its name: *_utc holds UTC wall time, *_kst holds Korea Standard Time (UTC+9, no
    daylight saving). Zone-less types are the portable common ground of DuckDB, BigQuery
    (DATETIME) and Snowflake (TIMESTAMP_NTZ); adapters differ only in the conversions below. -#}

{#- A zone-aware timestamp (the lake's timestamp[ms, UTC]) -> zone-less UTC wall time. -#}
{% macro to_utc_wall(expr) -%}
  {{ return(adapter.dispatch('to_utc_wall', 'upbit_pipeline')(expr)) }}
{%- endmacro %}
{% macro default__to_utc_wall(expr) -%}
  cast(convert_timezone('UTC', {{ expr }}) as timestamp_ntz)
{%- endmacro %}
{% macro duckdb__to_utc_wall(expr) -%}
  timezone('UTC', {{ expr }})
{%- endmacro %}
{% macro bigquery__to_utc_wall(expr) -%}
  datetime({{ expr }}, 'UTC')
{%- endmacro %}

{#- Epoch milliseconds (UTC) -> zone-less UTC wall time. -#}
{% macro epoch_ms_to_utc(expr) -%}
  {{ return(adapter.dispatch('epoch_ms_to_utc', 'upbit_pipeline')(expr)) }}
{%- endmacro %}
{% macro default__epoch_ms_to_utc(expr) -%}
  to_timestamp_ntz({{ expr }}, 3)
{%- endmacro %}
{% macro duckdb__epoch_ms_to_utc(expr) -%}
  make_timestamp(cast({{ expr }} as bigint) * 1000)
{%- endmacro %}
{% macro bigquery__epoch_ms_to_utc(expr) -%}
  datetime(timestamp_millis({{ expr }}), 'UTC')
{%- endmacro %}

{#- UTC wall time -> KST wall time. KST is UTC+9 all year, so a fixed offset is exact. -#}
{% macro utc_to_kst(expr) -%}
  {{ dbt.dateadd('hour', 9, expr) }}
{%- endmacro %}

{#- Every minute start of the run's days: 1,440 rows per UTC day (the explicit-minute grid). -#}
{% macro minute_grid() -%}
  {{ return(adapter.dispatch('minute_grid', 'upbit_pipeline')()) }}
{%- endmacro %}
{% macro default__minute_grid() -%}
  select dateadd(minute, seq4(), cast({{ batch_date_from() }} as timestamp_ntz)) as minute_utc
  from table(generator(rowcount => 1440 * ({{ dbt.datediff(batch_date_from(), batch_date_to(), 'day') }} + 1)))
{%- endmacro %}
{% macro duckdb__minute_grid() -%}
  select range as minute_utc
  from range(
    cast({{ batch_date_from() }} as timestamp),
    cast({{ batch_date_to() }} as timestamp) + interval 1 day,
    interval 1 minute
  )
{%- endmacro %}
{% macro bigquery__minute_grid() -%}
  select minute_utc
  from unnest(generate_timestamp_array(
    timestamp({{ batch_date_from() }}),
    timestamp_sub(timestamp(date_add({{ batch_date_to() }}, interval 1 day)), interval 1 minute),
    interval 1 minute
  )) as minute_ts, unnest([datetime(minute_ts)]) as minute_utc
{%- endmacro %}
