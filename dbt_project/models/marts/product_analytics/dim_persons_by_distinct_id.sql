{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['org_id', 'distinct_id'],
        on_schema_change='sync_all_columns',
        post_hook={"sql": "{{ lookup_layout(['org_id', 'distinct_id']) }}", "transaction": false},
    )
}}

-- depends_on: {{ ref('int_window_sightings') }}, {{ ref('int_identity_replay') }}

-- Each person under each of its distinct_ids, so the person behind any id is one lookup. A person
-- of more than 100 ids keeps only its key here (the reader looks its row up in dim_persons): its
-- row, list of ids included, repeated under each of n ids would be n² values. A run rewrites the
-- ids of the persons dim_persons rewrote: those with an id seen in the window or re-stitched by
-- it. An id only ever moves to the person that absorbed its old one, which is rewritten too, so
-- no row goes stale.

with

persons as (

    select * from {{ ref('dim_persons') }}

),

{% if is_windowed() and is_incremental() %}
affected_ids as (

    select org_id, distinct_id from {{ ref('int_window_sightings') }}
    union
    select org_id, distinct_id from {{ ref('int_identity_replay') }}

),

affected_persons as (

    select distinct org_id, person_id
    from (select org_id, person_id, unnest(distinct_ids) as distinct_id from persons)
    semi join affected_ids using (org_id, distinct_id)

),
{% endif %}

final as (

    select
        persons.org_id,
        unnest(persons.distinct_ids) as distinct_id,
        persons.person_id,
        if(persons.is_copied, persons.distinct_ids, null) as distinct_ids,
        if(persons.is_copied, persons.properties, null) as properties,
        if(persons.is_copied, persons.is_identified, null) as is_identified,
        if(persons.is_copied, persons.created_at, null) as created_at,
        if(persons.is_copied, persons.last_seen_at, null) as last_seen_at

    from (select *, len(distinct_ids) <= 100 as is_copied from persons) as persons
    {% if is_windowed() and is_incremental() %}
    semi join affected_persons using (org_id, person_id)
    {% endif %}

)

select * from final
