{#- The run's inclusive range of UTC trading days, from vars date_from / date_to. -#}

{% macro batch_date_from() -%}
  cast('{{ var("date_from") }}' as date)
{%- endmacro %}

{% macro batch_date_to() -%}
  cast('{{ var("date_to") }}' as date)
{%- endmacro %}

{% macro in_batch_dates(column) -%}
  {{ column }} between {{ batch_date_from() }} and {{ batch_date_to() }}
{%- endmacro %}

{#- Pre-hook of every incremental model: delete the run's days before inserting them again
    (delete+insert by date). Explicit rather than the delete+insert strategy so that a day whose
    new result is empty is emptied too; this is what makes a re-run give identical tables. -#}
{% macro delete_batch_dates(date_column='trading_date') -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ in_batch_dates(date_column) }}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}
