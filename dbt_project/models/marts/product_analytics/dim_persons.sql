{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'person_id'],
        pre_hook="{{ delete_restitched_rows('distinct_ids', is_list=true) }}",
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
        identities.merge_history

    from identities
    semi join affected_persons using (org_id, person_id)

    union all

    -- ... and the ids never linked, each a person of its own
    select
        affected_ids.org_id,
        {{ person_uuid('affected_ids.org_id', 'affected_ids.distinct_id') }} as person_id,
        affected_ids.distinct_id,
        false as is_identified,
        []::struct(merged_at timestamp, step bigint, side integer)[] as merge_history

    from affected_ids
    anti join identities using (org_id, distinct_id)

),

writes as (

    select
        members.org_id,
        members.person_id,
        writes.property,
        writes.value,
        writes.source_uuid,
        -- precedence (smallest wins): the sides of the merges that happened after the write,
        -- newest merge first (1 = the person merged into, 2 = the person merged away), then
        -- $set before $set_once, the latest $set and the earliest $set_once first
        list_transform(
            list_filter(members.merge_history, lambda m: m.merged_at > writes.written_at),
            lambda m: m.side::bigint
        ) || if(
            writes.operation = 'set',
            [0, -epoch_us(writes.written_at)],
            [3, epoch_us(writes.written_at)]
        ) as precedence

    from {{ ref('int_person_property_writes') }} as writes
    inner join members using (org_id, distinct_id)

),

winning_writes as (

    select org_id, person_id, property, value
    from writes
    qualify row_number() over (
        partition by org_id, person_id, property
        order by precedence, source_uuid
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
