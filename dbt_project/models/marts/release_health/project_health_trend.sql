{{
    config(
        materialized='table_function',
        parameters=[
            'scope_org_id',
            'scope_project_id',
            'grain',
            "environment_filter := ''",
            "release_filter := ''",
        ],
    )
}}

-- release_health_trend of one project, narrowed to one environment and/or release:
-- `select * from warehouse.analytics.project_health_trend('acme', 1, 'day',
-- environment_filter := 'staging')`. The same definitions as release_health_trend, computed from
-- the same forever-kept aggregates (only the project's rows that pass the filters); the singular
-- test `assert_project_health_trend_matches_mart` checks that without filters they agree. No
-- filter is '' (a NULL default would come back from DuckLake's catalog as the string 'NULL').

with

hourly as (

    select hourly.*
    from {{ ref('agg_release_health_hourly') }} as hourly
    where hourly.org_id = scope_org_id
      and hourly.project_id = scope_project_id
      and (nullif(environment_filter, '') is null or hourly.environment = environment_filter)
      and (nullif(release_filter, '') is null or hourly.release = release_filter)

),

sessions as (

    select
        org_id,
        project_id,
        date_trunc(grain, hour) as bucket_start,
        sum(stored_sessions)::bigint as stored_sessions,
        sum(adjusted_sessions) as adjusted_sessions,
        sum(crashed_sessions)::bigint as crashed_sessions

    from hourly
    group by all

),

daily_users as (

    select users.*
    from {{ ref('agg_release_users_daily') }} as users
    where users.org_id = scope_org_id
      and users.project_id = scope_project_id
      and (nullif(environment_filter, '') is null or users.environment = environment_filter)
      and (nullif(release_filter, '') is null or users.release = release_filter)

),

users_in_buckets as (

    -- a daily row belongs to its day and its week bucket whole ...
    select
        org_id,
        project_id,
        date_trunc(grain, day)::timestamp as bucket_start,
        person_id,
        crashed_hours <> 0 as has_crashed,
        sample_rate

    from daily_users
    where grain <> 'hour'

    union all

    -- ... and to the hour buckets of its mask
    select
        users.org_id,
        users.project_id,
        users.day::timestamp + to_hours(hours.hour) as bucket_start,
        users.person_id,
        users.crashed_hours & (1::bigint << hours.hour) <> 0 as has_crashed,
        users.sample_rate

    from daily_users as users
    cross join range(0, 24) as hours(hour)
    where grain = 'hour'
      and users.session_hours & (1::bigint << hours.hour) <> 0

),

persons as (

    select
        org_id,
        project_id,
        bucket_start,
        person_id,
        bool_or(has_crashed) as has_crashed,
        max(sample_rate) as highest_sample_rate

    from users_in_buckets
    group by all

),

users as (

    select
        org_id,
        project_id,
        bucket_start,
        sum({{ user_weight('has_crashed', 'highest_sample_rate') }}) as adjusted_users,
        count(*) filter (where has_crashed) as crashed_users

    from persons
    group by all

),

final as (

    select
        sessions.org_id,
        sessions.project_id,
        grain::varchar as grain,
        sessions.bucket_start,
        {{ trend_bucket_columns('sessions', 'users') }}

    from sessions
    left join users using (org_id, project_id, bucket_start)

)

select * from final
