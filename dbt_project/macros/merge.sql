{#- merge_update_set_expressions for a merge keyed by record uuid where, of several copies of a
    record, the earliest received wins: a stored row is replaced only by an earlier received
    copy, so the result does not depend on the order windows run in. One UPDATE action with
    conditional values (DuckLake's MERGE takes a single UPDATE), evaluated against the stored row
    as it was. `always` columns take the new copy's value whichever arrived first. -#}
{% macro earliest_copy_wins(columns, always=[]) -%}
    {%- set expressions = {} -%}
    {%- for column in columns -%}
        {%- do expressions.update({column: 'if(DBT_INTERNAL_SOURCE.received_at < DBT_INTERNAL_DEST.received_at, DBT_INTERNAL_SOURCE."' ~ column ~ '", DBT_INTERNAL_DEST."' ~ column ~ '")'}) -%}
    {%- endfor -%}
    {%- for column in always -%}
        {%- do expressions.update({column: 'DBT_INTERNAL_SOURCE."' ~ column ~ '"'}) -%}
    {%- endfor -%}
    {{ return(expressions) }}
{%- endmacro %}
