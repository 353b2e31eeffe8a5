with

source as (

    select * from {{ source('raw', 'sessions') }}

),

typed as (

    select
        uuid,
        org_id,
        project_id,
        lower(kind) as kind,
        session_id,
        nullif(distinct_id, '') as distinct_id,
        nullif(release, '') as release,
        nullif(trim(environment), '') as environment,
        lower(platform) as platform,
        started_at,
        sample_rate,
        lower(status) as reported_status,
        error_count,
        crash_count,
        ended_at,
        duration_ms as reported_duration_ms,
        received_at,
        _received_hour as received_hour,
        _file as landing_file

    from source
    where session_id is not null

)

select * from typed
