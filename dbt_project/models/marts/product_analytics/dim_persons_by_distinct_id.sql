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

-- Each distinct_id with its person, so the person behind any id is one lookup here and one in
-- dim_persons. Not the person's whole row: its list of ids, repeated under each of them, would
-- make a person of n ids n² values. A run rewrites the ids of the persons dim_persons rewrote:
-- those with an id seen in the window or re-stitched by it. An id only ever moves to the person
-- that absorbed its old one, which is rewritten too, so no row goes stale.

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
        persons.person_id

    from persons
    {% if is_windowed() and is_incremental() %}
    semi join affected_persons using (org_id, person_id)
    {% endif %}

)

select * from final
