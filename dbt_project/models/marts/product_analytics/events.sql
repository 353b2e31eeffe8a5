{{ config(materialized='view') }}

-- The analysts' event table: `select event, properties->>'currency' as currency,
-- count(*) as total from warehouse.analytics.events group by all order by total desc`.

select
    uuid,
    org_id,
    project_id,
    environment,
    event,
    distinct_id,
    person_id,
    properties,
    "timestamp",
    received_at,
    session_id,
    device_id

from {{ ref('fct_events') }}
