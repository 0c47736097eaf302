{#- Reading the lake: the one place that knows the lake's Parquet layout on the dbt side
    (mirrors upbit_pipeline.lake.layout).

    lake_source('trades') is a subquery of the named dataset restricted to the run's days
    (date_from..date_to, pruned by the hive `date=` folders), with a fixed column list. When no
    file exists yet (a lake without a stream, a day without alerts) it is an empty relation with
    the same typed columns, so silver and gold still build: batch and streaming are independent.

    On DuckDB it reads the Parquet in place. On other adapters (BigQuery, Snowflake) the
    datasets are external tables declared as the `lake` source (models/sources.yml). -#}

{% macro lake_datasets() -%}
  {%- set ts = 'timestamp with time zone' -%}
  {{ return({
    'trades': {
      'glob': 'raw/trade/date=*/hour=*/*.parquet',
      'columns': [
        ('market', 'varchar'), ('trade_timestamp', ts), ('trade_price', 'double'),
        ('trade_volume', 'double'), ('ask_bid', 'varchar'), ('sequential_id', 'bigint'),
        ('prev_closing_price', 'double'), ('change_price', 'double'), ('stream_type', 'varchar'),
        ('snapshot', 'boolean'), ('backfill', 'boolean'), ('recv_ts', ts),
        ('kafka_partition', 'integer'), ('kafka_offset', 'bigint'), ('frame_item', 'smallint'),
      ],
    },
    'rest_candles_1m': {
      'glob': 'raw/rest/candles_1m/date=*/*.parquet',
      'columns': [
        ('market', 'varchar'), ('candle_date_time_utc', ts), ('opening_price', 'double'),
        ('high_price', 'double'), ('low_price', 'double'), ('trade_price', 'double'),
        ('candle_acc_trade_price', 'double'), ('candle_acc_trade_volume', 'double'),
        ('timestamp', ts),
      ],
    },
    'rest_candles_1d': {
      'glob': 'raw/rest/candles_1d/date=*/*.parquet',
      'columns': [
        ('market', 'varchar'), ('candle_date_time_utc', ts), ('opening_price', 'double'),
        ('high_price', 'double'), ('low_price', 'double'), ('trade_price', 'double'),
        ('candle_acc_trade_price', 'double'), ('candle_acc_trade_volume', 'double'),
        ('timestamp', ts), ('prev_closing_price', 'double'), ('change_price', 'double'),
        ('change_rate', 'double'),
      ],
    },
    'rest_markets': {
      'glob': 'raw/rest/markets/date=*/*.parquet',
      'columns': [
        ('market', 'varchar'), ('quote_currency', 'varchar'), ('korean_name', 'varchar'),
        ('english_name', 'varchar'), ('warning', 'boolean'),
      ],
    },
    'alerts': {
      'glob': 'alerts/date=*/*.parquet',
      'columns': [
        ('id', 'varchar'), ('rule', 'varchar'), ('market', 'varchar'), ('severity', 'varchar'),
        ('event_ms', 'bigint'), ('json', 'varchar'),
      ],
    },
  }) }}
{%- endmacro %}

{% macro lake_source(name) -%}
  {%- set relation = source('lake', name) -%}
  {{ return(adapter.dispatch('lake_source', 'upbit_pipeline')(name, relation)) }}
{%- endmacro %}

{% macro default__lake_source(name, relation) -%}
  {%- set spec = lake_datasets()[name] -%}
  (select
    {%- for column, type in spec['columns'] %} {{ column }},{% endfor %} date
   from {{ relation }}
   where {{ in_batch_dates('date') }})
{%- endmacro %}

{% macro duckdb__lake_source(name, relation) -%}
  {%- set spec = lake_datasets()[name] -%}
  {%- set path = (var('lake_path') | string).rstrip('/') ~ '/' ~ spec['glob'] -%}
  {%- set path = path | replace("'", "''") -%}
  {%- set found = 0 -%}
  {%- if execute -%}
    {%- set found = run_query("select count(*) from glob('" ~ path ~ "')").columns[0].values()[0] -%}
  {%- endif -%}
  {%- if found > 0 -%}
  (select
    {%- for column, type in spec['columns'] %} cast({{ column }} as {{ type }}) as {{ column }},{% endfor %}
    cast(date as date) as date
   from read_parquet('{{ path }}', hive_partitioning = true, union_by_name = true)
   where {{ in_batch_dates('date') }})
  {%- else -%}
  (select
    {%- for column, type in spec['columns'] %} cast(null as {{ type }}) as {{ column }},{% endfor %}
    cast(null as date) as date
   where false)
  {%- endif -%}
{%- endmacro %}
