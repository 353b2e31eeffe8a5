{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'project_id', 'release', 'environment', 'hour'],
    )
}}

-- Release health per org, project, release, environment and hour of session start, kept
-- forever. A run recomputes the rows int_release_health_affected_hours lists: session counts from
-- fct_sessions and fct_session_aggregates (Sentry's pre-aggregated sessions, each weighing what
-- an unsampled session weighs), users from agg_release_users_daily. Hours before the retention
-- horizon keep their session counts (their sessions are gone) and only get their users recounted.

with

affected as (

    select * from {{ ref('int_release_health_affected_hours') }}

),

horizon as (

    select {{ retention_horizon() }} as retained_from

),

sessions as (

    select
        affected.org_id,
        affected.project_id,
        affected.release,
        affected.environment,
        affected.hour,
        sessions.status,
        sessions.sample_weight,
        sessions.duration_ms,
        sessions.started_at

    from {{ ref('fct_sessions') }} as sessions
    inner join affected
        on affected.org_id = sessions.org_id
        and affected.project_id = sessions.project_id
        and affected.release = coalesce(sessions.release, 'unknown')
        and affected.environment = sessions.environment
        and affected.hour = date_trunc('hour', sessions.started_at)
    where affected.hour >= (select retained_from from horizon)

),

individual_counts as (

    select
        org_id,
        project_id,
        release,
        environment,
        hour,
        count(*) as stored_sessions,
        sum(sample_weight) as adjusted_sessions,
        count(*) filter (where status = 'crashed') as crashed_sessions,
        coalesce(sum(sample_weight) filter (where status = 'errored'), 0) as errored_sessions,
        coalesce(sum(sample_weight) filter (where status = 'abnormal'), 0) as abnormal_sessions,
        coalesce(sum(sample_weight) filter (where status = 'exited'), 0) as exited_sessions,
        coalesce(sum(sample_weight) filter (where status = 'active'), 0) as active_sessions,
        coalesce(sum(sample_weight * duration_ms) filter (where duration_ms is not null), 0)
            as weighted_duration_ms,
        coalesce(sum(sample_weight) filter (where duration_ms is not null), 0)
            as weighted_sessions_with_duration,
        min(started_at) as first_started_at,
        max(started_at) as last_started_at

    from sessions
    group by all

),

aggregate_counts as (

    select
        affected.org_id,
        affected.project_id,
        affected.release,
        affected.environment,
        affected.hour,
        sum(buckets.sessions)::bigint as stored_sessions,
        sum(buckets.sessions)::double as adjusted_sessions,
        sum(buckets.crashed)::bigint as crashed_sessions,
        sum(buckets.errored)::double as errored_sessions,
        sum(buckets.abnormal)::double as abnormal_sessions,
        sum(buckets.exited)::double as exited_sessions,
        0::double as active_sessions,
        -- aggregated sessions carry no duration
        0::double as weighted_duration_ms,
        0::double as weighted_sessions_with_duration,
        min(buckets.started_at) as first_started_at,
        max(buckets.started_at) as last_started_at

    from {{ ref('fct_session_aggregates') }} as buckets
    inner join affected
        on affected.org_id = buckets.org_id
        and affected.project_id = buckets.project_id
        and affected.release = buckets.release
        and affected.environment = buckets.environment
        and affected.hour = date_trunc('hour', buckets.started_at)
    where affected.hour >= (select retained_from from horizon)
    group by all

),

session_counts as (

    select
        org_id,
        project_id,
        release,
        environment,
        hour,
        sum(stored_sessions)::bigint as stored_sessions,
        sum(adjusted_sessions) as adjusted_sessions,
        sum(crashed_sessions)::bigint as crashed_sessions,
        sum(errored_sessions) as errored_sessions,
        sum(abnormal_sessions) as abnormal_sessions,
        sum(exited_sessions) as exited_sessions,
        sum(active_sessions) as active_sessions,
        sum(weighted_duration_ms) as weighted_duration_ms,
        sum(weighted_sessions_with_duration) as weighted_sessions_with_duration,
        min(first_started_at) as first_started_at,
        max(last_started_at) as last_started_at

    from (
        select * from individual_counts
        union all by name
        select * from aggregate_counts
    )
    group by all

),

{% if is_incremental() %}
frozen_counts as (

    select
        previous.org_id,
        previous.project_id,
        previous.release,
        previous.environment,
        previous.hour,
        previous.stored_sessions,
        previous.adjusted_sessions,
        previous.crashed_sessions,
        previous.errored_sessions,
        previous.abnormal_sessions,
        previous.exited_sessions,
        previous.active_sessions,
        previous.weighted_duration_ms,
        previous.weighted_sessions_with_duration,
        previous.first_started_at,
        previous.last_started_at

    from {{ this }} as previous
    inner join affected using (org_id, project_id, release, environment, hour)
    where previous.hour < (select retained_from from horizon)

),
{% endif %}

counts as (

    select * from session_counts
    {% if is_incremental() %}
    union all
    select * from frozen_counts
    {% endif %}

),

persons as (

    select
        affected.org_id,
        affected.project_id,
        affected.release,
        affected.environment,
        affected.hour,
        users.person_id,
        bool_or(users.crashed_hours & {{ hour_bit('affected.hour') }} <> 0) as has_crashed,
        max(users.sample_rate) as highest_sample_rate

    from {{ ref('agg_release_users_daily') }} as users
    inner join affected
        on affected.org_id = users.org_id
        and affected.project_id = users.project_id
        and affected.release = users.release
        and affected.environment = users.environment
        and affected.hour::date = users.day
    where users.session_hours & {{ hour_bit('affected.hour') }} <> 0
    group by all

),

users as (

    select
        org_id,
        project_id,
        release,
        environment,
        hour,
        count(*) as stored_users,
        sum({{ user_weight('has_crashed', 'highest_sample_rate') }}) as adjusted_users,
        count(*) filter (where has_crashed) as crashed_users

    from persons
    group by all

),

final as (

    select
        counts.org_id,
        counts.project_id,
        counts.release,
        counts.environment,
        counts.hour,
        counts.stored_sessions,
        counts.adjusted_sessions,
        counts.crashed_sessions,
        counts.errored_sessions,
        counts.abnormal_sessions,
        counts.exited_sessions,
        counts.active_sessions,
        coalesce(users.stored_users, 0) as stored_users,
        coalesce(users.adjusted_users, 0) as adjusted_users,
        coalesce(users.crashed_users, 0) as crashed_users,
        if(counts.weighted_sessions_with_duration > 0,
            counts.weighted_duration_ms / counts.weighted_sessions_with_duration, null) as avg_duration_ms,
        counts.weighted_duration_ms,
        counts.weighted_sessions_with_duration,
        counts.first_started_at,
        counts.last_started_at

    from counts
    left join users using (org_id, project_id, release, environment, hour)

)

select * from final
