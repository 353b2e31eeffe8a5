{{ config(materialized='ephemeral') }}

-- The session start and end records received in the run's window.

select * from {{ ref('stg_sessions') }}
where {{ in_window('received_at', 'received_hour') }}
