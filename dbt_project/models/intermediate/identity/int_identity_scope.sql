{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='sync_all_columns') }}
-- Rebuilt whole every run, its rows replaced in place (macros/lake_workarounds/replace_all.sql).
-- The identity components this run must replay: those its window's links touch, and those with
-- an id whose first sighting this window holds (an id that now "existed" earlier can change
-- which merges happen). Unwindowed, that is every component.

{% if not is_windowed() %}

-- depends_on: {{ ref('int_window_links') }}, {{ ref('int_window_sightings') }}, {{ ref('int_distinct_ids') }}
select distinct org_id, component_key from {{ ref('int_identity_components') }}

{% else %}

with

window_link_ids as (

    select org_id, into_id as distinct_id from {{ ref('int_window_links') }}
    union
    select org_id, other_id as distinct_id from {{ ref('int_window_links') }}

),

first_sighted_ids as (

    select sightings.org_id, sightings.distinct_id
    from {{ ref('int_window_sightings') }} as sightings
    inner join {{ ref('int_distinct_ids') }} as known
        on known.org_id = sightings.org_id and known.distinct_id = sightings.distinct_id
    where sightings.first_seen_at = known.first_seen_at

),

candidates as (

    select * from window_link_ids
    union
    select * from first_sighted_ids

),

final as (

    select distinct components.org_id, components.component_key
    from {{ ref('int_identity_components') }} as components
    semi join candidates
        on candidates.org_id = components.org_id and candidates.distinct_id = components.distinct_id

)

select * from final

{% endif %}
