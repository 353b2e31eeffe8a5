-- For every hour still inside the session retention, the incrementally maintained aggregate
-- equals a recount from fct_sessions and the Sentry aggregate buckets of fct_session_aggregates.
with

sessions as (

    select
        org_id,
        project_id,
        coalesce(release, 'unknown') as release,
        environment,
        date_trunc('hour', started_at) as hour,
        1 as stored_sessions,
        sample_weight as adjusted_sessions,
        (status = 'crashed')::integer as crashed_sessions,
        if(status = 'abnormal', sample_weight, 0) as abnormal_sessions

    from {{ ref('fct_sessions') }}
    where started_at >= {{ retention_horizon() }}

    union all

    select
        org_id,
        project_id,
        release,
        environment,
        date_trunc('hour', started_at) as hour,
        sessions as stored_sessions,
        sessions as adjusted_sessions,
        crashed as crashed_sessions,
        abnormal as abnormal_sessions

    from {{ ref('fct_session_aggregates') }}
    where started_at >= {{ retention_horizon() }}

),

recount as (

    select
        org_id,
        project_id,
        release,
        environment,
        hour,
        sum(stored_sessions)::bigint as stored_sessions,
        sum(adjusted_sessions)::double as adjusted_sessions,
        sum(crashed_sessions)::bigint as crashed_sessions,
        sum(abnormal_sessions)::double as abnormal_sessions

    from sessions
    group by all

),

stored as (

    select org_id, project_id, release, environment, hour, stored_sessions, adjusted_sessions,
        crashed_sessions, abnormal_sessions
    from {{ ref('agg_release_health_hourly') }}
    where hour >= {{ retention_horizon() }}

)

select * from (select * from recount except select * from stored)
union all
select * from (select * from stored except select * from recount)
