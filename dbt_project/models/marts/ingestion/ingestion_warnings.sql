{{ config(materialized='view') }}

-- The analysts' ingestion warnings, as PostHog shows them: per project, received hour and kind,
-- how many records ingest corrected or fell back for, and one of them as an example (the
-- earliest received, so the answer does not depend on how runs were cut).

with

warnings as (

    select * from {{ ref('fct_ingestion_warnings') }}

),

final as (

    select
        org_id,
        project_id,
        date_trunc('hour', received_at) as hour,
        kind,
        count(*) as warnings,
        first(field order by received_at, uuid) as example_field,
        first(details order by received_at, uuid) as example_details,
        first(record_stream order by received_at, uuid) as example_record_stream,
        first(record_uuid order by received_at, uuid) as example_record_uuid,
        min(received_at) as first_received_at,
        max(received_at) as last_received_at

    from warnings
    group by org_id, project_id, hour, kind

)

select * from final
