{#- Small portable helpers shared by the models. -#}

{#- Two measurements of the same quantity agree: equal to 1e-9 relative, or 1e-8 absolute
    (Upbit spells prices and sizes with 8 decimals; sums of float trades differ in the last
    bits from the exchange's decimal sums). NULL on either side is a disagreement. -#}
{% macro approx_equal(a, b) -%}
  coalesce(abs({{ a }} - {{ b }}) <= 1e-8 + 1e-9 * abs({{ b }}), false)
{%- endmacro %}

{#- Last non-NULL value of expr up to the current row (forward fill). -#}
{% macro last_non_null(expr, partition_by, order_by) -%}
  {{ return(adapter.dispatch('last_non_null', 'upbit_pipeline')(expr, partition_by, order_by)) }}
{%- endmacro %}
{% macro default__last_non_null(expr, partition_by, order_by) -%}
  last_value({{ expr }}) ignore nulls over (
    partition by {{ partition_by }} order by {{ order_by }}
    rows between unbounded preceding and current row)
{%- endmacro %}
{% macro duckdb__last_non_null(expr, partition_by, order_by) -%}
  last_value({{ expr }} ignore nulls) over (
    partition by {{ partition_by }} order by {{ order_by }}
    rows between unbounded preceding and current row)
{%- endmacro %}
{% macro bigquery__last_non_null(expr, partition_by, order_by) -%}
  last_value({{ expr }} ignore nulls) over (
    partition by {{ partition_by }} order by {{ order_by }}
    rows between unbounded preceding and current row)
{%- endmacro %}

{#- A number inside a JSON text column (the alert log keeps each alert as JSON). -#}
{% macro json_number(column, key) -%}
  {{ return(adapter.dispatch('json_number', 'upbit_pipeline')(column, key)) }}
{%- endmacro %}
{% macro default__json_number(column, key) -%}
  try_cast(parse_json({{ column }}):{{ key }}::varchar as double)
{%- endmacro %}
{% macro duckdb__json_number(column, key) -%}
  try_cast(json_extract_string({{ column }}, '$.{{ key }}') as double)
{%- endmacro %}
{% macro bigquery__json_number(column, key) -%}
  safe_cast(json_value({{ column }}, '$.{{ key }}') as float64)
{%- endmacro %}

{#- Annualisation factor of a daily volatility: crypto trades every day of the year. -#}
{% macro sqrt_days_per_year() -%}
  sqrt(365.0)
{%- endmacro %}

{#- A floating-point aggregate computed in a fixed order, so that a re-run gives bit-identical
    results: a parallel hash aggregate adds partial sums in whatever order threads finish, which
    changes the last bits of a float sum between runs. On DuckDB the values are collected in
    order_by order and aggregated sequentially; other adapters use the plain aggregate. -#}
{% macro ordered_agg(fn, expr, order_by) -%}
  {{ return(adapter.dispatch('ordered_agg', 'upbit_pipeline')(fn, expr, order_by)) }}
{%- endmacro %}
{% macro default__ordered_agg(fn, expr, order_by) -%}
  {{ fn }}({{ expr }})
{%- endmacro %}
{% macro duckdb__ordered_agg(fn, expr, order_by) -%}
  list_aggregate(list({{ expr }} order by {{ order_by }}), '{{ fn }}')
{%- endmacro %}
