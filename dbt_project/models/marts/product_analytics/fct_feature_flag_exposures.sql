{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'person_id'],
        pre_hook="{{ delete_restitched_rows('distinct_id') }}",
    )
}}

-- depends_on: {{ ref('int_identity_replay') }}
-- depends_on: {{ ref('int_window_sightings') }}
-- depends_on: {{ ref('int_identity_map') }}

-- The first exposure of each person to each variant of each feature flag, from
-- `$feature_flag_called` events. A run recomputes the persons seen in its window and the persons it
-- re-stitched (whose exposures may now be one person's); the pre-hook first deletes the rows of
-- persons merged away.

with

exposure_events as (

    select
        org_id,
        project_id,
        environment,
        person_id,
        distinct_id,
        uuid,
        "timestamp",
        properties ->> '$."$feature_flag"' as feature_flag,
        properties ->> '$."$feature_flag_response"' as variant

    from {{ ref('fct_events') }}
    where event = '$feature_flag_called'
      and (properties ->> '$."$feature_flag"') is not null

),

affected_persons as (

    {% if not is_windowed() %}
    -- unwindowed: everyone with an exposure
    select distinct org_id, person_id from exposure_events
    {% else %}
    -- persons with an id seen in the window (a superset of those with a new exposure), and
    -- the persons re-stitched in this run
    select
        sightings.org_id,
        coalesce(identities.person_id, {{ person_uuid('sightings.org_id', 'sightings.distinct_id') }}) as person_id
    from {{ ref('int_window_sightings') }} as sightings
    left join {{ ref('int_identity_map') }} as identities
        on identities.org_id = sightings.org_id and identities.distinct_id = sightings.distinct_id
    {% if is_incremental() %}
    union
    select identities.org_id, identities.person_id
    from {{ ref('int_identity_map') }} as identities
    semi join {{ ref('int_identity_replay') }} as restitched
        on restitched.org_id = identities.org_id and restitched.distinct_id = identities.distinct_id
    {% endif %}
    {% endif %}

),

first_exposures as (

    select
        org_id,
        project_id,
        person_id,
        feature_flag,
        coalesce(variant, 'null') as variant,
        "timestamp" as first_exposed_at,
        uuid as first_event_uuid,
        distinct_id,
        environment

    from exposure_events
    semi join affected_persons using (org_id, person_id)
    qualify row_number() over (
        partition by org_id, project_id, person_id, feature_flag, coalesce(variant, 'null')
        order by "timestamp", uuid
    ) = 1

)

select * from first_exposures
