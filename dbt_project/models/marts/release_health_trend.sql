{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'project_id', 'grain', 'bucket_start'],
    )
}}

-- Crash-free rates per project over time, by hour, day and week (ISO weeks, from Monday). Each
-- bucket's users are the distinct persons over the whole bucket (from the hour masks of
-- agg_release_users_daily), not a sum of hourly counts. A run recomputes the buckets that contain
-- an hour agg_release_health_hourly recomputed.

with

affected_hours as (

    select distinct org_id, project_id, hour
    from {{ ref('int_release_health_affected_hours') }}

),

buckets as (

    select distinct
        org_id,
        project_id,
        grain.grain,
        date_trunc(grain.grain, hour) as bucket_start,
        date_trunc(grain.grain, hour) + if(grain.grain = 'hour', interval 1 hour,
            if(grain.grain = 'day', interval 1 day, interval 7 day)) as bucket_end

    from affected_hours
    cross join (values ('hour'), ('day'), ('week')) as grain(grain)

),

sessions as (

    select
        buckets.org_id,
        buckets.project_id,
        buckets.grain,
        buckets.bucket_start,
        sum(hourly.stored_sessions)::bigint as stored_sessions,
        sum(hourly.adjusted_sessions) as adjusted_sessions,
        sum(hourly.crashed_sessions)::bigint as crashed_sessions

    from buckets
    inner join {{ ref('agg_release_health_hourly') }} as hourly
        on hourly.org_id = buckets.org_id
        and hourly.project_id = buckets.project_id
        and hourly.hour >= buckets.bucket_start
        and hourly.hour < buckets.bucket_end
    group by all

),

persons as (

    select
        buckets.org_id,
        buckets.project_id,
        buckets.grain,
        buckets.bucket_start,
        users.person_id,
        bool_or(users.crashed_hours & {{ hour_mask('users.day', 'buckets.bucket_start', 'buckets.bucket_end') }} <> 0)
            as has_crashed,
        max(users.sample_rate) as highest_sample_rate

    from buckets
    inner join {{ ref('agg_release_users_daily') }} as users
        on users.org_id = buckets.org_id
        and users.project_id = buckets.project_id
        and users.day >= buckets.bucket_start::date
        and users.day < buckets.bucket_end::date + 1
    where users.session_hours & {{ hour_mask('users.day', 'buckets.bucket_start', 'buckets.bucket_end') }} <> 0
    group by all

),

users as (

    select
        org_id,
        project_id,
        grain,
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
        sessions.grain,
        sessions.bucket_start,
        round(sessions.adjusted_sessions)::bigint as total_sessions,
        sessions.crashed_sessions,
        round(coalesce(users.adjusted_users, 0))::bigint as total_users,
        coalesce(users.crashed_users, 0) as crashed_users,
        round({{ percentage('sessions.adjusted_sessions - sessions.crashed_sessions', 'sessions.adjusted_sessions') }}, 2)
            as crash_free_session_rate,
        round({{ percentage('users.adjusted_users - users.crashed_users', 'users.adjusted_users') }}, 2)
            as crash_free_user_rate,
        sessions.stored_sessions,
        sessions.adjusted_sessions,
        coalesce(users.adjusted_users, 0) as adjusted_users

    from sessions
    left join users using (org_id, project_id, grain, bucket_start)

)

select * from final
