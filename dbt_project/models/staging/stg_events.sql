with

source as (

    select * from {{ source('raw', 'events') }}

),

typed as (

    select
        uuid,
        org_id,
        project_id,
        coalesce(nullif(trim(environment), ''), 'production') as environment,
        event,
        event_display_name,
        -- `/track` may send only an anonymous or device id; it then is the actor's id
        coalesce(nullif(distinct_id, ''), nullif(anonymous_id, ''), nullif(device_id, '')) as distinct_id,
        nullif(anonymous_id, '') as anonymous_id,
        nullif(device_id, '') as device_id,
        nullif(session_id, '') as session_id,
        coalesce(properties, '{}'::json) as properties,
        -- PostHog's person-less events: only a JSON false turns person processing off
        (properties -> '$."$process_person_profile"') is distinct from 'false'::json as processes_person,
        "timestamp",
        received_at,
        _received_hour as received_hour,
        _file as landing_file

    from source

)

select * from typed
