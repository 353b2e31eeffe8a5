{{ config(materialized='view') }}

-- The analysts' event table: `select event, properties->>'currency' as currency,
-- count(*) as total from warehouse.analytics.events group by all order by total desc`. Identity
-- operations ($identify, ...) are among its events (fct_events).

select
    uuid,
    org_id,
    project_id,
    environment,
    event,
    event_display_name,
    distinct_id,
    person_id,
    properties,
    "timestamp",
    received_at,
    session_id,
    device_id

from {{ ref('fct_events') }}
