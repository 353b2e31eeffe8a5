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
        date_trunc(grain.grain, hour) as bucket_start

    from affected_hours
    cross join (values ('hour'), ('day'), ('week')) as grain(grain)

),

earliest as (

    -- every affected bucket starts at or after this: lets the scans below skip older rows
    select min(bucket_start) as bucket_start from buckets

),

hourly_in_buckets as (

    -- each hourly row under its hour, day and week bucket, so buckets join on equality
    select
        hourly.org_id,
        hourly.project_id,
        grain.grain,
        date_trunc(grain.grain, hourly.hour) as bucket_start,
        hourly.stored_sessions,
        hourly.adjusted_sessions,
        hourly.crashed_sessions

    from {{ ref('agg_release_health_hourly') }} as hourly
    cross join (values ('hour'), ('day'), ('week')) as grain(grain)
    where hourly.hour >= (select bucket_start from earliest)

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
    inner join hourly_in_buckets as hourly using (org_id, project_id, grain, bucket_start)
    group by all

),

users_in_buckets as (

    -- a daily row belongs to its day and its week bucket whole ...
    select
        users.org_id,
        users.project_id,
        grain.grain,
        date_trunc(grain.grain, users.day)::timestamp as bucket_start,
        users.person_id,
        users.crashed_hours <> 0 as has_crashed,
        users.sample_rate

    from {{ ref('agg_release_users_daily') }} as users
    cross join (values ('day'), ('week')) as grain(grain)
    where users.day >= (select bucket_start from earliest)::date

    union all

    -- ... and to the hour buckets of its mask (only the affected hours are looked at)
    select
        users.org_id,
        users.project_id,
        buckets.grain,
        buckets.bucket_start,
        users.person_id,
        users.crashed_hours & {{ hour_bit('buckets.bucket_start') }} <> 0 as has_crashed,
        users.sample_rate

    from buckets
    inner join {{ ref('agg_release_users_daily') }} as users
        on users.org_id = buckets.org_id
        and users.project_id = buckets.project_id
        and users.day = buckets.bucket_start::date
    where buckets.grain = 'hour'
      and users.session_hours & {{ hour_bit('buckets.bucket_start') }} <> 0

),

persons as (

    select
        buckets.org_id,
        buckets.project_id,
        buckets.grain,
        buckets.bucket_start,
        users.person_id,
        bool_or(users.has_crashed) as has_crashed,
        max(users.sample_rate) as highest_sample_rate

    from buckets
    inner join users_in_buckets as users using (org_id, project_id, grain, bucket_start)
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
        {{ trend_bucket_columns('sessions', 'users') }}

    from sessions
    left join users using (org_id, project_id, grain, bucket_start)

)

select * from final
