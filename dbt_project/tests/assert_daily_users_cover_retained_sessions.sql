-- Every retained session's start hour, and every retained Sentry aggregate bucket's with a
-- distinct_id (an unsampled session of that user), is set in its user's row of
-- agg_release_users_daily.
with

starts as (

    select org_id, project_id, coalesce(release, 'unknown') as release, environment, started_at,
        distinct_id, sample_rate, session_id as counted
    from {{ ref('fct_sessions') }}

    union all

    select org_id, project_id, release, environment, started_at, distinct_id, 1.0::double,
        uuid as counted
    from {{ ref('fct_session_aggregates') }}

)

select starts.org_id, starts.counted
from starts
left join {{ ref('agg_release_users_daily') }} as users
    on users.org_id = starts.org_id
    and users.project_id = starts.project_id
    and users.release = starts.release
    and users.environment = starts.environment
    and users.day = starts.started_at::date
    and users.distinct_id = starts.distinct_id
    and users.sample_rate = starts.sample_rate
where starts.started_at >= {{ retention_horizon() }}
  and starts.distinct_id is not null
  and (users.session_hours is null or users.session_hours & {{ hour_bit('starts.started_at') }} = 0)
