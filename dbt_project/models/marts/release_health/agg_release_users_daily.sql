{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['org_id', 'project_id', 'release', 'environment', 'day', 'distinct_id', 'sample_rate'],
        merge_update_set_expressions={
            'session_hours': 'DBT_INTERNAL_DEST.session_hours | DBT_INTERNAL_SOURCE.session_hours',
            'crashed_hours': 'DBT_INTERNAL_DEST.crashed_hours | DBT_INTERNAL_SOURCE.crashed_hours',
            'person_id': 'DBT_INTERNAL_SOURCE.person_id',
        },
    )
}}

-- depends_on: {{ ref('int_identity_replay') }}
-- depends_on: {{ ref('int_identity_map') }}

-- Who used which release on which UTC day, kept forever: one row per (release, environment,
-- day, distinct_id, sample_rate) with a 24-bit mask of the hours the id started a session in and
-- of the hours it started a crashed one. Masks are merged with OR, which is idempotent and
-- order-independent, so rows only need the sessions the window touched; re-stitching only
-- rewrites person_id. Sessions that start before the retention horizon are never added (their
-- day is frozen, see agg_release_health_hourly). A Sentry aggregate bucket with a distinct_id
-- counts as its user's unsampled sessions; one without adds no user (as in Sentry).

with

touched_sessions as (

    select sessions.*
    from {{ ref('fct_sessions') }} as sessions
    where exists (
            select 1 from {{ ref('int_window_session_keys') }} as touched
            where touched.org_id = sessions.org_id and touched.session_id = sessions.session_id
        )
      and sessions.started_at >= {{ retention_horizon() }}
      and sessions.distinct_id is not null

),

from_sessions as (

    select
        org_id,
        project_id,
        coalesce(release, 'unknown') as release,
        environment,
        started_at::date as day,
        distinct_id,
        sample_rate,
        any_value(person_id) as person_id,
        bit_or({{ hour_bit('started_at') }}) as session_hours,
        coalesce(bit_or({{ hour_bit('started_at') }}) filter (where is_crashed), 0) as crashed_hours

    from touched_sessions
    group by all

),

touched_buckets as (

    select buckets.*
    from {{ ref('fct_session_aggregates') }} as buckets
    where exists (
            select 1 from {{ ref('int_window_session_aggregates') }} as touched
            where touched.org_id = buckets.org_id and touched.uuid = buckets.uuid
        )
      and buckets.started_at >= {{ retention_horizon() }}
      and buckets.distinct_id is not null

),

from_buckets as (

    select
        buckets.org_id,
        buckets.project_id,
        buckets.release,
        buckets.environment,
        buckets.started_at::date as day,
        buckets.distinct_id,
        1.0::double as sample_rate,
        any_value(coalesce(
            identities.person_id, {{ person_uuid('buckets.org_id', 'buckets.distinct_id') }}
        )) as person_id,
        bit_or({{ hour_bit('buckets.started_at') }}) as session_hours,
        coalesce(
            bit_or({{ hour_bit('buckets.started_at') }}) filter (where buckets.crashed > 0), 0
        ) as crashed_hours

    from touched_buckets as buckets
    left join {{ ref('int_identity_map') }} as identities
        on identities.org_id = buckets.org_id and identities.distinct_id = buckets.distinct_id
    group by all

),

{% if is_incremental() %}
restitched as (

    select
        previous.org_id,
        previous.project_id,
        previous.release,
        previous.environment,
        previous.day,
        previous.distinct_id,
        previous.sample_rate,
        identities.person_id,
        0::bigint as session_hours,
        0::bigint as crashed_hours

    from {{ this }} as previous
    inner join {{ ref('int_identity_replay') }} as restitched
        on restitched.org_id = previous.org_id and restitched.distinct_id = previous.distinct_id
    inner join {{ ref('int_identity_map') }} as identities
        on identities.org_id = previous.org_id and identities.distinct_id = previous.distinct_id

),
{% endif %}

batch as (

    select * from from_sessions
    union all
    select * from from_buckets
    {% if is_incremental() %}
    union all
    select * from restitched
    {% endif %}

),

final as (

    select
        org_id,
        project_id,
        release,
        environment,
        day,
        distinct_id,
        sample_rate,
        max(person_id) as person_id,
        bit_or(session_hours) as session_hours,
        bit_or(crashed_hours) as crashed_hours

    from batch
    group by all

)

select * from final
