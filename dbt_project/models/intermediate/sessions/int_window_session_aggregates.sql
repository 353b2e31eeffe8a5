{{ config(materialized='ephemeral') }}

-- The Sentry session aggregate buckets received in the run's window.

select * from {{ ref('stg_session_aggregates') }}
where {{ in_window('received_at', 'received_hour') }}
