-- Every event is attributed to the current person of its distinct_id (re-stitching left none behind).
select events.org_id, events.uuid, events.person_id, persons.person_id as expected_person_id
from {{ ref('fct_events') }} as events
left join (
    select org_id, unnest(distinct_ids) as distinct_id, person_id from {{ ref('dim_persons') }}
) as persons
    on persons.org_id = events.org_id and persons.distinct_id = events.distinct_id
where events.distinct_id is not null
  and events.person_id is distinct from persons.person_id
