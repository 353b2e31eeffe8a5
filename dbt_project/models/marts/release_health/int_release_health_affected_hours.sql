{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='sync_all_columns') }}
-- Rebuilt whole every run, its rows replaced in place (macros/lake_workarounds/replace_all.sql).
-- The (org, project, release, environment, hour) rows of agg_release_health_hourly this run must
-- recompute: the start hours of the sessions and session aggregates its window touched, of the
-- sessions that turned abnormal because the clock passed their deadline in this run, and every
-- hour a re-stitched distinct_id started a session in (its users count may have changed).

with

clock as (

    select * from {{ ref('int_pipeline_clock') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}
    where started_at is not null

),

touched as (

    select sessions.org_id, sessions.project_id, sessions.release, sessions.environment, sessions.started_at
    from sessions
    semi join {{ ref('int_window_session_keys') }} as touched
        on touched.org_id = sessions.org_id and touched.session_id = sessions.session_id

),

timed_out as (

    select org_id, project_id, release, environment, started_at
    from sessions
    where end_received_at is null
      and end_deadline_at <= (select as_of from clock)
      and end_deadline_at > coalesce((select previous_as_of from clock), timestamp '-infinity')

),

session_hours as (

    select
        org_id,
        project_id,
        coalesce(release, 'unknown') as release,
        environment,
        date_trunc('hour', started_at) as hour
    from (select * from touched union all select * from timed_out)

),

aggregate_hours as (

    select distinct org_id, project_id, release, environment, date_trunc('hour', started_at) as hour
    from {{ ref('int_window_session_aggregates') }}

),

restitched_hours as (

    select
        users.org_id,
        users.project_id,
        users.release,
        users.environment,
        users.day::timestamp + to_hours(bit_index) as hour

    from {{ ref('agg_release_users_daily') }} as users
    semi join {{ ref('int_identity_replay') }} as restitched
        on restitched.org_id = users.org_id and restitched.distinct_id = users.distinct_id
    cross join range(24) as bits(bit_index)
    where (users.session_hours >> bit_index) & 1 = 1

),

final as (

    select * from session_hours
    union
    select * from aggregate_hours
    union
    select * from restitched_hours

)

select * from final
