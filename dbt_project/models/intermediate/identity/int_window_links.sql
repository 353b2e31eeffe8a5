{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='sync_all_columns') }}
-- Rebuilt whole every run, its rows replaced in place (macros/lake_workarounds/replace_all.sql). A
-- table, not ephemeral: dbt's Python models (int_identity_components) read only tables and views.

-- The identity links received in the run's window: identify ($identify with $anon_distinct_id),
-- alias ($create_alias) and merge_dangerously, without the ones PostHog never applies (see
-- stg_identities.is_link).

with

identities as (

    select * from {{ ref('stg_identities') }}
    where {{ in_window('received_at', 'received_hour') }}

),

links as (

    select
        org_id,
        uuid,
        project_id,
        kind as link_kind,
        event,
        distinct_id as into_id,
        other_id,
        occurred_at as linked_at

    from identities
    where is_link
    {{ first_copy_in_window() }}

)

select * from links
