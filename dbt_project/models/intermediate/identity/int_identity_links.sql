{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'uuid'],
    )
}}

-- Copies of one operation (same uuid) are identical apart from when they arrived, so replacing
-- a link by a later copy changes nothing.

select * from {{ ref('int_window_links') }}
