{{ config(materialized='ephemeral') }}

-- Sessions with a start or end record received in the run's window.

select distinct org_id, session_id
from {{ ref('int_window_session_records') }}
