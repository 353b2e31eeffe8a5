{#- Custom schemas are used as written (`analytics`, not `main_analytics`): the marts' schema is
    part of the analyst contract (`warehouse.analytics.events`). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
