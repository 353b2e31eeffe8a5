{#- Of several copies of a warning the earliest received is kept. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['org_id', 'uuid'],
        merge_update_set_expressions=earliest_copy_wins(
            ['project_id', 'record_stream', 'record_uuid', 'kind', 'field', 'details', 'received_at']
        ),
    )
}}

-- One row per ingestion warning (uuid): a correction or fallback ingest applied to one field of
-- one record. A run merges its window's warnings; of several copies of one (a retried request)
-- the earliest received is kept, whichever window runs first, so any cut of windows, sub-hour
-- micro-batches included, ends in the same rows.

with

window_warnings as (

    select * from {{ ref('stg_ingestion_warnings') }}
    where {{ in_window('received_at', 'received_hour') }}
    {{ first_copy_in_window() }}

),

final as (

    select
        uuid,
        org_id,
        project_id,
        record_stream,
        record_uuid,
        kind,
        field,
        details,
        received_at

    from window_warnings

)

select * from final
