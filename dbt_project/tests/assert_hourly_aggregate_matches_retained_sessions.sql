-- For every hour still inside the session retention, the incrementally maintained aggregate
-- equals a recount from fct_sessions.
with

recount as (

    select
        org_id,
        project_id,
        coalesce(release, 'unknown') as release,
        environment,
        date_trunc('hour', started_at) as hour,
        count(*) as stored_sessions,
        sum(sample_weight) as adjusted_sessions,
        count(*) filter (where status = 'crashed') as crashed_sessions,
        coalesce(sum(sample_weight) filter (where status = 'abnormal'), 0) as abnormal_sessions

    from {{ ref('fct_sessions') }}
    where started_at >= {{ retention_horizon() }}
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
