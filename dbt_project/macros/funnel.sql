{#-
    An ordered conversion funnel over analytics.fct_events, counted per person:

        {{ funnel(['signed_up', 'checkout_started', 'checkout_completed'], conversion_window='7 days') }}

    A call of the lake's table function `analytics.funnel` (models/marts/product_analytics/funnel.sql, where the
    rules are) with these arguments as SQL literals, so `dbt show`, the read API and any DuckDB
    client count with one definition. Returns one row per step: `step`, `event`, `persons`,
    `conversion_rate` (% of step 1) and `step_conversion_rate` (% of the previous step); with
    `breakdown_flag`, `variant` first. `start_at` / `end_at` bound the step-1 events (timestamps,
    end exclusive); `org_id` / `project_id` restrict to one tenant.
-#}
{% macro funnel(steps, conversion_window='14 days', start_at=none, end_at=none, breakdown_flag=none, org_id=none, project_id=none) -%}
{%- if steps | length < 2 -%}
    {{ exceptions.raise_compiler_error("a funnel needs at least two steps, got " ~ steps) }}
{%- endif -%}
select {% if breakdown_flag %}variant, {% endif %}step, event, persons, conversion_rate, step_conversion_rate
from {{ ref('funnel') }}(
    [{% for step in steps %}{{ sql_literal(step) }}{{ ', ' if not loop.last }}{% endfor %}],
    conversion_window := interval {{ sql_literal(conversion_window) }}
    {%- if start_at %}, start_at := timestamp {{ sql_literal(start_at) }}{% endif %}
    {%- if end_at %}, end_at := timestamp {{ sql_literal(end_at) }}{% endif %}
    {%- if breakdown_flag %}, breakdown_flag := {{ sql_literal(breakdown_flag) }}{% endif %}
    {%- if org_id %}, scope_org_id := {{ sql_literal(org_id) }}{% endif %}
    {%- if project_id %}, scope_project_id := {{ project_id | int }}{% endif %}
)
order by {% if breakdown_flag %}variant, {% endif %}step
{%- endmacro %}

{#- A string as a single-quoted SQL literal. -#}
{% macro sql_literal(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}
