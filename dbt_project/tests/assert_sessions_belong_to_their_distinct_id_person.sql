-- Every session is attributed to the current person of its distinct_id.
select sessions.org_id, sessions.session_id, sessions.person_id, persons.person_id as expected_person_id
from {{ ref('fct_sessions') }} as sessions
left join (
    select org_id, unnest(distinct_ids) as distinct_id, person_id from {{ ref('dim_persons') }}
) as persons
    on persons.org_id = sessions.org_id and persons.distinct_id = sessions.distinct_id
where sessions.distinct_id is not null
  and sessions.person_id is distinct from persons.person_id
