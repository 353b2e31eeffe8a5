{#-
    An ordered conversion funnel over analytics.fct_events, counted per person:

        {{ funnel(['signed_up', 'checkout_started', 'checkout_completed'], conversion_window='7 days') }}

    A person reaches step k when, after one of their step-1 events, they did step 2 later than
    step 1, step 3 later than that step 2, ... and step k, all within `conversion_window` of that
    step-1 event; each person counts once, at the furthest step any of their step-1 events
    reached. Returns one row per step: `step`, `event`, `persons`, `conversion_rate` (% of step 1)
    and `step_conversion_rate` (% of the previous step). With `breakdown_flag`, persons are split
    by the variant of their first exposure to that feature flag (column `variant`; persons never
    exposed are not counted). `start_at` / `end_at` bound the step-1 events (timestamps, end
    exclusive); `org_id` / `project_id` restrict to one tenant.
-#}
{% macro funnel(steps, conversion_window='14 days', start_at=none, end_at=none, breakdown_flag=none, org_id=none, project_id=none) -%}
{%- if steps | length < 2 -%}
    {{ exceptions.raise_compiler_error("a funnel needs at least two steps, got " ~ steps) }}
{%- endif -%}
with

funnel_events as (

    select org_id, person_id, event, "timestamp"
    from {{ ref('fct_events') }}
    where person_id is not null
      and event in ({% for step in steps %}'{{ step | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor %})
      {%- if org_id %}
      and org_id = '{{ org_id | replace("'", "''") }}'
      {%- endif %}
      {%- if project_id %}
      and project_id = {{ project_id | int }}
      {%- endif %}

),

step_1 as (

    select org_id, person_id, "timestamp" as step_1_at
    from funnel_events
    where event = '{{ steps[0] | replace("'", "''") }}'
      {%- if start_at %}
      and "timestamp" >= timestamp '{{ start_at }}'
      {%- endif %}
      {%- if end_at %}
      and "timestamp" < timestamp '{{ end_at }}'
      {%- endif %}

),
{% for step in steps[1:] %}
{%- set n = loop.index + 1 %}

step_{{ n }} as (

    select
        previous.*,
        min(next_event."timestamp") as step_{{ n }}_at

    from step_{{ n - 1 }} as previous
    left join funnel_events as next_event
        on next_event.org_id = previous.org_id
        and next_event.person_id = previous.person_id
        and next_event.event = '{{ step | replace("'", "''") }}'
        and next_event."timestamp" > previous.step_{{ n - 1 }}_at
        and next_event."timestamp" <= previous.step_1_at + interval '{{ conversion_window }}'
    group by all

),
{% endfor %}

furthest_steps as (

    select
        org_id,
        person_id,
        max(
            case
                {%- for n in range(steps | length, 1, -1) %}
                when step_{{ n }}_at is not null then {{ n }}
                {%- endfor %}
                else 1
            end
        ) as furthest_step

    from step_{{ steps | length }}
    group by org_id, person_id

),

{% if breakdown_flag %}
variants as (

    select org_id, person_id, arg_min(variant, first_exposed_at) as variant
    from {{ ref('fct_feature_flag_exposures') }}
    where feature_flag = '{{ breakdown_flag | replace("'", "''") }}'
    group by org_id, person_id

),
{% endif %}

steps as (

    select * from (values
        {%- for step in steps %}
        ({{ loop.index }}, '{{ step | replace("'", "''") }}'){{ ',' if not loop.last }}
        {%- endfor %}
    ) as steps(step, event)

),

funnel_persons as (

    select furthest_steps.*{% if breakdown_flag %}, variants.variant{% endif %}
    from furthest_steps
    {%- if breakdown_flag %}
    inner join variants using (org_id, person_id)
    {%- endif %}

),

counts as (

    select
        {% if breakdown_flag %}groups.variant,{% endif %}
        steps.step,
        steps.event,
        count(funnel_persons.person_id) as persons

    from steps
    {%- if breakdown_flag %}
    cross join (select distinct variant from funnel_persons) as groups
    left join funnel_persons
        on funnel_persons.variant = groups.variant
        and funnel_persons.furthest_step >= steps.step
    {%- else %}
    left join funnel_persons
        on funnel_persons.furthest_step >= steps.step
    {%- endif %}
    group by all

),

final as (

    select
        *,
        round(100.0 * persons / nullif(first_value(persons) over per_funnel, 0), 2) as conversion_rate,
        round(100.0 * persons / nullif(lag(persons) over per_funnel, 0), 2) as step_conversion_rate

    from counts
    window per_funnel as (
        {% if breakdown_flag %}partition by variant{% endif %}
        order by step
    )

)

select * from final
order by {% if breakdown_flag %}variant, {% endif %}step
{%- endmacro %}
