with

source as (

    select * from {{ source('raw', 'session_aggregates') }}

),

typed as (

    select
        uuid,
        org_id,
        project_id,
        release,
        coalesce(nullif(trim(environment), ''), 'production') as environment,
        lower(platform) as platform,
        started_at,
        nullif(distinct_id, '') as distinct_id,
        coalesce(exited, 0) as exited,
        coalesce(errored, 0) as errored,
        coalesce(abnormal, 0) as abnormal,
        coalesce(crashed, 0) as crashed,
        received_at,
        _received_hour as received_hour,
        _file as landing_file

    from source

)

select * from typed
