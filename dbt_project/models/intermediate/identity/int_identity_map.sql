{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['org_id', 'distinct_id'],
        on_schema_change='sync_all_columns',
    )
}}

-- Every linked distinct_id with its person. A run rewrites exactly the ids it replayed (members
-- only ever join components, never leave them). An id that was never linked is not here: it is a
-- person of its own, with person_id = person_uuid(org_id, distinct_id).

select
    org_id,
    distinct_id,
    {{ person_uuid('org_id', 'founder_distinct_id') }} as person_id,
    founder_distinct_id,
    is_identified,
    component_key,
    representatives,
    person_positions

from {{ ref('int_identity_replay') }}
