-- PostHog's invariant: every distinct_id belongs to exactly one person.
select org_id, distinct_id, count(*) as persons
from (select org_id, unnest(distinct_ids) as distinct_id from {{ ref('dim_persons') }})
group by org_id, distinct_id
having count(*) > 1
