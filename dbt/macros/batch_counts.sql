{#- on-run-end: rows per built model for the run's days, written as a JSON array to the var
    counts_path ({model, rows}). The batch layer records these counts in its build markers; it
    cannot query the DuckDB file itself while dbt-duckdb holds it open in the same process. -#}
{% macro write_batch_counts() %}
  {{ return(adapter.dispatch('write_batch_counts', 'upbit_pipeline')()) }}
{% endmacro %}

{% macro default__write_batch_counts() %}
  select 1
{% endmacro %}

{% macro duckdb__write_batch_counts() %}
  {%- set path = var('counts_path', '') -%}
  {%- set parts = [] -%}
  {%- if execute and path -%}
    {%- for r in results if r.node.resource_type == 'model' and r.status == 'success'
          and r.node.config.materialized != 'view' -%}
      {%- set column = 'snapshot_date' if r.node.name == 'silver_markets' else 'trading_date' -%}
      {%- do parts.append("select '" ~ r.node.name ~ "' as model, count(*) as rows from "
            ~ r.node.relation_name ~ " where " ~ in_batch_dates(column)) -%}
    {%- endfor -%}
  {%- endif -%}
  {%- if parts -%}
    copy ({{ parts | join(' union all ') }}) to '{{ path | replace("'", "''") }}' (format json, array true)
  {%- else -%}
    select 1
  {%- endif -%}
{% endmacro %}
