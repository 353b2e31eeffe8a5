with

source as (

    select * from {{ source('raw', 'ingestion_warnings') }}

),

typed as (

    select
        uuid,
        org_id,
        project_id,
        record_stream,
        record_uuid,
        kind,
        field,
        coalesce(details, '{}'::json) as details,
        received_at,
        _received_hour as received_hour,
        _file as landing_file

    from source

)

select * from typed
