{{
    config(
        materialized='table_function',
        parameters=[
            'steps',
            "conversion_window := interval '14 days'",
            "start_at := timestamp '-infinity'",
            "end_at := timestamp 'infinity'",
            "breakdown_flag := ''",
            "scope_org_id := ''",
            'scope_project_id := 0',
        ],
    )
}}

-- The ordered conversion funnel, callable from any client attached to the lake:
-- `select * from warehouse.analytics.funnel(['viewed_pricing', 'subscribed'],
-- conversion_window := interval '7 days', scope_org_id := 'org_…')`. The `funnel` Jinja macro
-- and the read API's funnel route call this function; the rules are in the YAML. Optional
-- arguments default to values meaning "none" ('' and 0, unbounded times), not to NULL: DuckLake
-- stores a macro's defaults as text, and reads a NULL default back as the string 'NULL'.

with

funnel_events as (

    select org_id, person_id, event, "timestamp"
    from {{ ref('fct_events') }}
    where person_id is not null
      and list_contains(steps, event)
      and (nullif(scope_org_id, '') is null or org_id = scope_org_id)
      and (nullif(scope_project_id, 0) is null or project_id = scope_project_id)

),

step_1 as (

    select org_id, person_id, "timestamp" as step_1_at
    from funnel_events
    where event = steps[1]
      and "timestamp" >= coalesce(start_at, '-infinity')
      and "timestamp" < coalesce(end_at, 'infinity')

),

later_events as (

    -- each step-1 event with the person's funnel events after it and within the window, in order
    select
        step_1.org_id,
        step_1.person_id,
        step_1.step_1_at,
        coalesce(
            list({'event': next_event.event, 'at': next_event."timestamp"}
                order by next_event."timestamp", next_event.event)
                filter (where next_event.event is not null),
            []
        ) as later

    from step_1
    left join funnel_events as next_event
        on next_event.org_id = step_1.org_id
        and next_event.person_id = step_1.person_id
        and next_event."timestamp" > step_1.step_1_at
        and next_event."timestamp" <= step_1.step_1_at + conversion_window
    group by all

),

furthest_steps as (

    -- Walking the later events in time order, step k+1 is the first event named like it after
    -- step k: the earliest possible, so no other choice reaches further. A person counts once,
    -- at the furthest step any of their step-1 events reached.
    select
        org_id,
        person_id,
        max(
            list_reduce(
                later,
                lambda reached, candidate: if(
                    reached.step < len(steps)
                    and candidate.event = steps[reached.step + 1]
                    and candidate.at > reached.at,
                    {'step': reached.step + 1, 'at': candidate.at},
                    reached
                ),
                {'step': 1, 'at': step_1_at}
            ).step
        ) as furthest_step

    from later_events
    group by org_id, person_id

),

variants as (

    -- the variant of each person's first exposure to the breakdown flag (none without one)
    select org_id, person_id, arg_min(variant, (first_exposed_at, variant)) as variant
    from {{ ref('fct_feature_flag_exposures') }}
    where feature_flag = breakdown_flag
      and (nullif(scope_org_id, '') is null or org_id = scope_org_id)
    group by org_id, person_id

),

funnel_persons as (

    select furthest_steps.*, variants.variant
    from furthest_steps
    left join variants using (org_id, person_id)
    -- with a breakdown, persons never exposed to the flag are not counted
    where nullif(breakdown_flag, '') is null or variants.variant is not null

),

groups as (

    -- one funnel per variant; without a breakdown one funnel, even with nobody in it
    select variant from funnel_persons
    union
    select null::varchar as variant where nullif(breakdown_flag, '') is null

),

numbered_steps as (

    select step, steps[step] as event
    from range(1, len(steps) + 1) as numbers(step)

),

counts as (

    select
        groups.variant,
        numbered_steps.step,
        numbered_steps.event,
        count(funnel_persons.person_id) as persons

    from groups
    cross join numbered_steps
    left join funnel_persons
        on funnel_persons.variant is not distinct from groups.variant
        and funnel_persons.furthest_step >= numbered_steps.step
    group by all

),

final as (

    select
        variant,
        step::integer as step,
        event,
        persons,
        round(100.0 * persons / nullif(first_value(persons) over per_funnel, 0), 2) as conversion_rate,
        round(100.0 * persons / nullif(lag(persons) over per_funnel, 0), 2) as step_conversion_rate

    from counts
    window per_funnel as (partition by variant order by step)

)

select * from final
order by variant nulls first, step
