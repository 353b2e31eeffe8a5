{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'person_id'],
        pre_hook="{{ delete_restitched_rows('distinct_ids', is_list=true) }}",
        post_hook={"sql": "{{ lookup_layout(['org_id', 'person_id']) }}", "transaction": false},
    )
}}

-- depends_on: {{ ref('int_window_sightings') }}, {{ ref('int_identity_replay') }}

-- One row per person. A run recomputes every person with an id seen in its window or re-stitched
-- by it, from all of that person's ids and property writes; the pre-hook first deletes the rows
-- of persons that were merged away.

with

identities as (

    select * from {{ ref('int_identity_map') }}

),

affected_ids as (

    {% if is_windowed() %}
    select org_id, distinct_id from {{ ref('int_window_sightings') }}
    union
    select org_id, distinct_id from {{ ref('int_identity_replay') }}
    {% else %}
    -- unwindowed: every id there is
    select org_id, distinct_id from {{ ref('int_distinct_ids') }}
    {% endif %}

),

affected_persons as (

    select distinct
        affected_ids.org_id,
        coalesce(identities.person_id, {{ person_uuid('affected_ids.org_id', 'affected_ids.distinct_id') }})
            as person_id

    from affected_ids
    left join identities using (org_id, distinct_id)

),

members as (

    -- the linked ids of the affected persons ...
    select
        identities.org_id,
        identities.person_id,
        identities.distinct_id,
        identities.is_identified,
        identities.representatives,
        identities.person_positions

    from identities
    semi join affected_persons using (org_id, person_id)

    union all

    -- ... and the ids never linked, each a person of its own that never merged
    select
        affected_ids.org_id,
        {{ person_uuid('affected_ids.org_id', 'affected_ids.distinct_id') }} as person_id,
        affected_ids.distinct_id,
        false as is_identified,
        []::struct(since timestamp, distinct_id varchar)[] as representatives,
        [{'since': null::timestamp, 'set_rank': 0::bigint, 'set_once_rank': 1::bigint}]
            as person_positions

    from affected_ids
    anti join identities using (org_id, distinct_id)

),

positions as (

    -- where each representative's person stood in its merge tree, and from when
    select
        members.org_id,
        members.distinct_id as representative,
        coalesce(position.since, '-infinity'::timestamp) as since,
        position.set_rank,
        position.set_once_rank

    from members, unnest(members.person_positions) as t(position)

),

writes as (

    select
        members.org_id,
        members.person_id,
        writes.property,
        writes.value,
        writes.source_uuid,
        writes.operation,
        writes.written_at,
        -- the id that stood for the writer's person when it wrote
        coalesce(
            list_filter(members.representatives, lambda r: r.since <= writes.written_at)[-1].distinct_id,
            members.distinct_id
        ) as representative

    from {{ ref('int_person_property_writes') }} as writes
    inner join members using (org_id, distinct_id)

),

ranked_writes as (

    select
        writes.org_id,
        writes.person_id,
        writes.property,
        writes.value,
        writes.source_uuid,
        -- precedence (smallest wins): the writer's person's place in its merge tree when it
        -- wrote, $set ranking on the way down and $set_once on the way up, then the latest
        -- $set and the earliest $set_once
        if(writes.operation = 'set', positions.set_rank, positions.set_once_rank) as tree_rank,
        if(writes.operation = 'set', -epoch_us(writes.written_at), epoch_us(writes.written_at))
            as time_rank

    from writes
    asof left join positions
        on positions.org_id = writes.org_id
        and positions.representative = writes.representative
        and writes.written_at >= positions.since

),

winning_writes as (

    select org_id, person_id, property, value
    from ranked_writes
    qualify row_number() over (
        partition by org_id, person_id, property
        order by tree_rank, time_rank, source_uuid
    ) = 1

),

properties as (

    select
        org_id,
        person_id,
        to_json(map_from_entries(list({'key': property, 'value': value} order by property)))
            as properties

    from winning_writes
    group by all

),

persons as (

    select
        members.person_id,
        members.org_id,
        list(members.distinct_id order by members.distinct_id) as distinct_ids,
        bool_or(members.is_identified) as is_identified,
        min(known.first_seen_at) as created_at,
        max(known.last_seen_at) as last_seen_at

    from members
    inner join {{ ref('int_distinct_ids') }} as known using (org_id, distinct_id)
    group by all

),

final as (

    select
        persons.person_id,
        persons.org_id,
        persons.distinct_ids,
        persons.is_identified,
        coalesce(properties.properties, '{}'::json) as properties,
        persons.created_at,
        persons.last_seen_at

    from persons
    left join properties using (org_id, person_id)

)

select * from final
