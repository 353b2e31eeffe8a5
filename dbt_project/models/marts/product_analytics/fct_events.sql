{#- Of several copies of an event the earliest received is kept; any match updates person_id. A
    warehouse built before a column was added gets it (null in the rows stored before). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['org_id', 'uuid'],
        on_schema_change='append_new_columns',
        merge_update_set_expressions=earliest_copy_wins(
            ['project_id', 'environment', 'event', 'event_display_name', 'distinct_id',
             'properties', 'timestamp', 'received_at', 'session_id', 'device_id'],
            always=['person_id'],
        ),
    )
}}

-- depends_on: {{ ref('int_identity_replay') }}, {{ ref('int_window_sightings') }}

-- One row per event (uuid), attributed to its person. A run merges the window's events and
-- re-attributes the stored events of every distinct_id it re-stitched. Of several copies of a
-- uuid the earliest received is kept (the merge replaces a stored copy only by an earlier one), so
-- the result does not depend on the order windows run in; a matched copy otherwise only updates
-- person_id. Identity operations are events too, as PostHog lists them ($identify, ...): they
-- land in the identities stream only, so each is one row here. A person-less event
-- ($process_person_profile false) makes no person: it gets the person its distinct_id has, else
-- none until the id gets one (then the run that sights the id attributes it).

with

window_events as (

    select
        uuid,
        org_id,
        project_id,
        environment,
        event,
        event_display_name,
        distinct_id,
        properties,
        "timestamp",
        received_at,
        session_id,
        device_id,
        processes_person,
        landing_file

    from {{ ref('stg_events') }}
    where {{ in_window('received_at', 'received_hour') }}

),

window_identity_events as (

    -- Named as PostHog's SDKs send them, whichever endpoint they came through, with the linked id
    -- and person properties where PostHog's event carries them: a native call (`identify`,
    -- `alias`, `set`) stores them in columns, with properties {}. What was sent in properties
    -- wins; null members are left out (a merge patch into {} drops them).
    select
        uuid,
        org_id,
        project_id,
        environment,
        case kind
            when 'identify' then '$identify'
            when 'alias' then '$create_alias'
            when 'merge_dangerously' then '$merge_dangerously'
            else if(event = '$set_once', '$set_once', '$set')
        end as event,
        null::varchar as event_display_name,
        distinct_id,
        json_merge_patch(
            json_merge_patch('{}', json_object(
                if(kind = 'identify', '$anon_distinct_id', 'alias'), other_id,
                '$set', set_properties,
                '$set_once', set_once_properties
            )),
            properties
        ) as properties,
        occurred_at as "timestamp",
        received_at,
        null::varchar as session_id,
        null::varchar as device_id,
        processes_person,
        landing_file

    from {{ ref('stg_identities') }}
    where {{ in_window('received_at', 'received_hour') }}

),

{% if is_incremental() %}
{#- Stored rows: the merge takes only their new person_id (earliest_copy_wins keeps the stored
    columns of a copy received no earlier), so event_display_name is a placeholder here, read as
    null so that a warehouse built before that column existed merges too. A stored event without
    a person is looked up again, as a person-less one. -#}
{%- set stored_event %}
        uuid,
        org_id,
        project_id,
        environment,
        event,
        null::varchar as event_display_name,
        distinct_id,
        properties,
        "timestamp",
        received_at,
        session_id,
        device_id,
        person_id is not null as processes_person,
        null::varchar as landing_file
{%- endset %}
restitched_events as (

    -- Two semi-joins, not one filter with `or`: each probes only the key columns of the stored
    -- events, where an `or` of two exists read every stored row whole. A row in both is listed
    -- twice; earliest_copies keeps one.
    select {{ stored_event }}
    from {{ this }} as stored
    where exists (
        select 1 from {{ ref('int_identity_replay') }} as restitched
        where restitched.org_id = stored.org_id and restitched.distinct_id = stored.distinct_id
    )

    union all

    select {{ stored_event }}
    from {{ this }} as stored
    where stored.person_id is null
        and exists (
            select 1 from {{ ref('int_window_sightings') }} as sighted
            where sighted.org_id = stored.org_id and sighted.distinct_id = stored.distinct_id
        )

),
{% endif %}

candidates as (

    select * from window_events
    union all
    select * from window_identity_events
    {% if is_incremental() %}
    union all
    select * from restitched_events
    {% endif %}

),

earliest_copies as (

    -- the window's copies are not deduplicated before (stg_events keeps every landed copy)
    select * from candidates
    qualify row_number() over (partition by org_id, uuid order by received_at, landing_file) = 1

),

actors as (

    select org_id, distinct_id, bool_or(processes_person) as processes_person
    from earliest_copies
    group by org_id, distinct_id

),

actors_with_person as (

    select org_id, distinct_id from actors where processes_person
    union all
    -- an actor of person-less events only has the person some other record of its id made;
    -- most runs have none, and then the join reads nothing of int_distinct_ids
    select actors.org_id, actors.distinct_id
    from actors
    inner join {{ ref('int_distinct_ids') }} as known
        on known.org_id = actors.org_id and known.distinct_id = actors.distinct_id
    where not actors.processes_person

),

persons as (

    -- Per actor, not per event: an hour of a million events has some fifty thousand actors, and
    -- person_uuid (a SHA-1) costs more than the join.
    select
        actors.org_id,
        actors.distinct_id,
        coalesce(
            identities.person_id,
            {{ person_uuid('actors.org_id', 'actors.distinct_id') }}
        ) as person_id

    from actors_with_person as actors
    left join {{ ref('int_identity_map') }} as identities
        on identities.org_id = actors.org_id
        and identities.distinct_id = actors.distinct_id

),

final as (

    select
        earliest_copies.uuid,
        earliest_copies.org_id,
        earliest_copies.project_id,
        earliest_copies.environment,
        earliest_copies.event,
        earliest_copies.event_display_name,
        earliest_copies.distinct_id,
        persons.person_id,
        earliest_copies.properties,
        earliest_copies."timestamp",
        earliest_copies.received_at,
        earliest_copies.session_id,
        earliest_copies.device_id

    from earliest_copies
    left join persons
        on persons.org_id = earliest_copies.org_id
        and persons.distinct_id = earliest_copies.distinct_id

)

select * from final
