{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'source_stream', 'source_uuid'],
    )
}}

-- One row per person property written: `$set` / `$set_once` inside event properties, and the
-- set / set_once of identity operations, but for person-less events' ($process_person_profile
-- false), which PostHog ignores. Keyed by the record that wrote it, so a rerun or a retried copy
-- replaces its own rows.

with

events as (

    select
        org_id,
        'events' as source_stream,
        uuid as source_uuid,
        distinct_id,
        "timestamp" as written_at,
        properties -> '$."$set"' as set_properties,
        properties -> '$."$set_once"' as set_once_properties

    from {{ ref('stg_events') }}
    where {{ in_window('received_at', 'received_hour') }}
      and distinct_id is not null
      and processes_person
    {{ first_copy_in_window() }}

),

identities as (

    select
        org_id,
        'identities' as source_stream,
        uuid as source_uuid,
        distinct_id,
        occurred_at as written_at,
        set_properties,
        set_once_properties

    from {{ ref('stg_identities') }}
    where {{ in_window('received_at', 'received_hour') }}
      and distinct_id is not null
      and processes_person
    {{ first_copy_in_window() }}

),

writers as (

    select * from events
    union all
    select * from identities

),

unpacked as (

    {% for operation in ['set', 'set_once'] %}
    select
        org_id,
        source_stream,
        source_uuid,
        distinct_id,
        written_at,
        '{{ operation }}' as operation,
        unnest(map_entries(json_transform({{ operation }}_properties, '"MAP(VARCHAR, JSON)"'))) as entry
    from writers
    where json_type({{ operation }}_properties) = 'OBJECT'
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

final as (

    select
        org_id,
        source_stream,
        source_uuid,
        distinct_id,
        written_at,
        operation,
        entry.key as property,
        entry.value as value

    from unpacked

)

select * from final
