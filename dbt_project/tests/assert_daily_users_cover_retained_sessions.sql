-- Every retained session's start hour is set in its user's row of agg_release_users_daily.
select sessions.org_id, sessions.session_id
from {{ ref('fct_sessions') }} as sessions
left join {{ ref('agg_release_users_daily') }} as users
    on users.org_id = sessions.org_id
    and users.project_id = sessions.project_id
    and users.release = coalesce(sessions.release, 'unknown')
    and users.environment = sessions.environment
    and users.day = sessions.started_at::date
    and users.distinct_id = sessions.distinct_id
    and users.sample_rate = sessions.sample_rate
where sessions.started_at >= {{ retention_horizon() }}
  and sessions.distinct_id is not null
  and (users.session_hours is null or users.session_hours & {{ hour_bit('sessions.started_at') }} = 0)
