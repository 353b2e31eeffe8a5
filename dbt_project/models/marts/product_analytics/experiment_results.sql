{{
    config(
        materialized='table_function',
        parameters=[
            'scope_org_id',
            'flag_key',
            "goal_event := ''",
            "conversion_window := interval '14 days'",
        ],
    )
}}

-- An experiment's exposures per variant and, with a goal event, its conversions:
-- `select * from warehouse.analytics.experiment_results('org_…', 'new-checkout',
-- goal_event := 'purchase_completed', conversion_window := interval '7 days')`. The read API's
-- experiments route answers from it; the definitions are in the YAML. No goal event is ''
-- (a NULL default would come back from DuckLake's catalog as the string 'NULL').

with

exposures as (

    select org_id, person_id, variant, first_exposed_at
    from {{ ref('fct_feature_flag_exposures') }}
    where org_id = scope_org_id
      and feature_flag = flag_key

),

assignments as (

    -- a person belongs to the variant they were exposed to first (ties: the first variant name)
    select
        org_id,
        person_id,
        arg_min(variant, (first_exposed_at, variant)) as variant,
        min(first_exposed_at) as exposed_at

    from exposures
    group by org_id, person_id

),

goals as (

    select org_id, person_id, "timestamp"
    from {{ ref('fct_events') }}
    where org_id = scope_org_id
      -- the stored name: callers normalize a name as sent (the read API with ingest's rule)
      and event = goal_event
      and person_id is not null

),

converted_persons as (

    select distinct assignments.person_id
    from assignments
    inner join goals
        on goals.org_id = assignments.org_id
        and goals.person_id = assignments.person_id
        and goals."timestamp" > assignments.exposed_at
        and goals."timestamp" <= assignments.exposed_at + conversion_window

),

final as (

    select
        assignments.variant,
        count(*) as persons,
        min(assignments.exposed_at) as first_exposed_at,
        if(nullif(goal_event, '') is null, null, count(converted_persons.person_id)) as conversions

    from assignments
    left join converted_persons using (person_id)
    group by assignments.variant

)

select
    variant,
    persons,
    first_exposed_at,
    conversions,
    round(100.0 * conversions / persons, 2) as conversion_rate,
    1 + conversions as posterior_alpha,
    1 + persons - conversions as posterior_beta

from final
order by variant
