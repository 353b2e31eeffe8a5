{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['org_id', 'distinct_id'],
        merge_update_set_expressions={
            'first_seen_at': 'least(DBT_INTERNAL_DEST.first_seen_at, DBT_INTERNAL_SOURCE.first_seen_at)',
            'last_seen_at': 'greatest(DBT_INTERNAL_DEST.last_seen_at, DBT_INTERNAL_SOURCE.last_seen_at)',
        },
    )
}}

-- min/max are commutative and idempotent, so merging each window's sightings gives the same
-- table whatever the order the windows run in and however often each one reruns.

select * from {{ ref('int_window_sightings') }}
