{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='sync_all_columns') }}
-- Rebuilt whole every run, its rows replaced in place (macros/lake_workarounds/replace_all.sql). A
-- table, not ephemeral: four models read it, and each would otherwise scan the window's events.

-- Every distinct_id seen in the run's window with its earliest and latest event time: event
-- actors, identity operations (both ids of an applied link), session starts and the users of
-- Sentry session aggregates. An id "exists" for the identity rules from its first sighting on.
-- Person-less events ($process_person_profile false) are no sighting: they create no person.

with

events as (

    select org_id, distinct_id, "timestamp" as seen_at
    from {{ ref('stg_events') }}
    where {{ in_window('received_at', 'received_hour') }}
      and distinct_id is not null
      and processes_person

),

identity_actors as (

    select org_id, distinct_id, occurred_at as seen_at
    from {{ ref('stg_identities') }}
    where {{ in_window('received_at', 'received_hour') }}
      and distinct_id is not null
      and processes_person

),

linked_ids as (

    select org_id, other_id as distinct_id, linked_at as seen_at
    from {{ ref('int_window_links') }}

),

session_actors as (

    select org_id, distinct_id, started_at as seen_at
    from {{ ref('stg_sessions') }}
    where {{ in_window('received_at', 'received_hour') }}
      and kind = 'start'
      and distinct_id is not null
      and started_at is not null

),

aggregate_actors as (

    select org_id, distinct_id, started_at as seen_at
    from {{ ref('int_window_session_aggregates') }}
    where distinct_id is not null

),

sightings as (

    select * from events
    union all
    select * from identity_actors
    union all
    select * from linked_ids
    union all
    select * from session_actors
    union all
    select * from aggregate_actors

),

final as (

    select
        org_id,
        distinct_id,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at

    from sightings
    group by org_id, distinct_id

)

select * from final
