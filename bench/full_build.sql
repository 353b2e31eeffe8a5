-- The warehouse's full build written by hand as one DuckDB script: the same marts as an
-- unwindowed `dbt run` (dedup, the PostHog identity replay, person properties, events, sessions,
-- the per-day user masks, the hourly aggregate, the trend and release health over the whole
-- history), without dbt, incrementality or tests. bench/bench_dbt.py runs it against the same raw
-- tables as dbt, in the same run, to measure what dbt and the incremental machinery cost on a
-- full build, and fails unless both give the same numbers.
-- Reads raw.*; writes schema baseline.

create schema if not exists baseline;

create or replace table baseline.events_raw as
select
    uuid, org_id, project_id,
    coalesce(nullif(trim(environment), ''), 'production') as environment,
    event,
    coalesce(nullif(distinct_id, ''), nullif(anonymous_id, ''), nullif(device_id, '')) as distinct_id,
    nullif(session_id, '') as session_id,
    nullif(device_id, '') as device_id,
    coalesce(properties, '{}'::json) as properties,
    "timestamp", received_at
from raw.events
qualify row_number() over (partition by org_id, uuid order by received_at, _file) = 1;

create or replace table baseline.identities as
select
    uuid, org_id, distinct_id,
    coalesce(lower(nullif(kind, '')), case event when '$identify' then 'identify'
        when '$create_alias' then 'alias' when '$merge_dangerously' then 'merge_dangerously'
        when '$set' then 'set' end) as kind,
    coalesce(other_id, case when event = '$identify' then properties ->> '$."$anon_distinct_id"'
        when event in ('$create_alias', '$merge_dangerously') then properties ->> 'alias' end) as other_id,
    coalesce("set", properties -> '$."$set"') as set_properties,
    coalesce(set_once, properties -> '$."$set_once"') as set_once_properties,
    "timestamp" as occurred_at,
    project_id, coalesce(nullif(trim(environment), ''), 'production') as environment, event,
    coalesce(properties, '{}'::json) as properties, received_at
from raw.identities
qualify row_number() over (partition by org_id, uuid order by received_at, _file) = 1;

-- PostHog's illegal ids (isDistinctIdIllegal), never linked
create or replace macro baseline.mergeable(id) as
    id is not null and trim(id) <> ''
    and lower(id) not in (
        select unnest(list_concat(ids, list_transform(ids, lambda i: '''' || i || ''''),
                                  list_transform(ids, lambda i: '"' || i || '"')))
        from (select ['anonymous', 'guest', 'distinctid', 'distinct_id', 'id', 'not_authenticated',
                      'email', 'undefined', 'true', 'false'] as ids))
    and id not in (
        select unnest(list_concat(ids, list_transform(ids, lambda i: '''' || i || ''''),
                                  list_transform(ids, lambda i: '"' || i || '"')))
        from (select ['[object Object]', 'NaN', 'None', 'none', 'null', '0', 'undefined'] as ids));

create or replace macro baseline.person_uuid(org, id) as list_transform(
    [sha1(unhex('d0c017c8e238539a8891518496f1c1c2') || encode(org || ':' || id))],
    lambda h: substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-5' || substr(h, 14, 3) || '-'
        || substr('89ab', ((strpos('0123456789abcdef', substr(h, 17, 1)) - 1) & 3) + 1, 1)
        || substr(h, 18, 3) || '-' || substr(h, 21, 12))[1];

create or replace table baseline.links as
select org_id, uuid, kind as link_kind, distinct_id as into_id, other_id, occurred_at as linked_at
from baseline.identities
where kind in ('identify', 'alias', 'merge_dangerously') and other_id is not null
  and other_id <> distinct_id and baseline.mergeable(distinct_id) and baseline.mergeable(other_id);

create or replace table baseline.sessions_raw as
select
    org_id, project_id, lower(kind) as kind, session_id, nullif(distinct_id, '') as distinct_id,
    nullif(release, '') as release, nullif(trim(environment), '') as environment, lower(platform) as platform,
    started_at, sample_rate, lower(status) as reported_status, error_count, crash_count, ended_at,
    duration_ms as reported_duration_ms, received_at, uuid
from raw.sessions
where session_id is not null
qualify row_number() over (partition by org_id, uuid order by received_at, _file) = 1;

create or replace table baseline.distinct_ids as
select org_id, distinct_id, min(seen_at) as first_seen_at, max(seen_at) as last_seen_at
from (
    select org_id, distinct_id, "timestamp" as seen_at from baseline.events_raw where distinct_id is not null
    union all select org_id, distinct_id, occurred_at from baseline.identities where distinct_id is not null
    union all select org_id, other_id, linked_at from baseline.links
    union all select org_id, distinct_id, started_at from baseline.sessions_raw
        where kind = 'start' and distinct_id is not null and started_at is not null
)
group by all;

-- connected components of the link graph by label propagation
create or replace table baseline.components as
with recursive propagation(org_id, node, label) using key (org_id, node) as (
    select org_id, node, node from (
        select org_id, into_id as node from baseline.links union select org_id, other_id from baseline.links)
    union
    select changed.org_id, edge.target_node, min(changed.label)
    from propagation as changed
    inner join (
        select org_id, into_id as source_node, other_id as target_node from baseline.links
        union select org_id, other_id, into_id from baseline.links
    ) as edge on edge.org_id = changed.org_id and edge.source_node = changed.node
    inner join recurring.propagation as neighbour
        on neighbour.org_id = changed.org_id and neighbour.node = edge.target_node
    group by changed.org_id, edge.target_node
    having min(changed.label) < min(neighbour.label)
)
select org_id, node as distinct_id, label as component_key from propagation;

-- the PostHog merge rules, replayed per component in event-time order
create or replace table baseline.identity_map as
with recursive
members as (
    select c.org_id, c.component_key, c.distinct_id, d.first_seen_at
    from baseline.components c
    left join baseline.distinct_ids d using (org_id, distinct_id)
),
ops as (
    select i.org_id, i.component_key, l.link_kind, l.into_id, l.other_id, l.linked_at,
        i.first_seen_at as into_first_seen_at, o.first_seen_at as other_first_seen_at,
        row_number() over (partition by i.org_id, i.component_key order by l.linked_at, l.uuid) as step
    from baseline.links l
    join members i on i.org_id = l.org_id and i.distinct_id = l.into_id
    join members o on o.org_id = l.org_id and o.distinct_id = l.other_id
),
replay(org_id, component_key, step, assigned, identified, merges) using key (org_id, component_key) as (
    select distinct org_id, component_key, 0::bigint,
        []::struct(distinct_id varchar, founder varchar)[], []::varchar[],
        []::struct(distinct_id varchar, merged_at timestamp, step bigint, side integer)[]
    from members
    union
    select org_id, component_key, step,
        case decision
            when 'created' then registered || [{'distinct_id': into_id, 'founder': into_id}, {'distinct_id': other_id, 'founder': into_id}]
            when 'joined_other' then registered || [{'distinct_id': into_id, 'founder': other_founder}]
            when 'joined_into' then registered || [{'distinct_id': other_id, 'founder': into_founder}]
            when 'merged' then list_transform(registered, lambda a: {'distinct_id': a.distinct_id,
                'founder': if(a.founder = other_founder, into_founder, a.founder)})
            else registered
        end,
        list_distinct(list_filter(identified, lambda f: decision <> 'merged' or f <> other_founder)
            || [case decision when 'created' then into_id when 'joined_other' then other_founder else into_founder end]),
        if(decision = 'merged', merges || list_transform(
            list_filter(registered, lambda a: a.founder in (into_founder, other_founder)),
            lambda a: {'distinct_id': a.distinct_id, 'merged_at': linked_at, 'step': step,
                       'side': if(a.founder = into_founder, 1, 2)}), merges)
    from (
        select *,
            assigned
            || if(into_founder = into_id and not list_contains(assigned_ids, into_id), [{'distinct_id': into_id, 'founder': into_id}], [])
            || if(other_founder = other_id and not list_contains(assigned_ids, other_id), [{'distinct_id': other_id, 'founder': other_id}], [])
            as registered,
            case
                when into_founder is null and other_founder is null then 'created'
                when into_founder is null then 'joined_other'
                when other_founder is null then 'joined_into'
                when into_founder = other_founder then 'already_merged'
                when list_contains(identified, other_founder) and link_kind <> 'merge_dangerously' then 'refused'
                else 'merged'
            end as decision
        from (
            select s.org_id, s.component_key, o.step, s.assigned, s.identified, s.merges,
                o.link_kind, o.into_id, o.other_id, o.linked_at,
                list_transform(s.assigned, lambda a: a.distinct_id) as assigned_ids,
                coalesce(list_filter(s.assigned, lambda a: a.distinct_id = o.into_id)[1].founder,
                    if(o.into_first_seen_at < o.linked_at, o.into_id, null)) as into_founder,
                coalesce(list_filter(s.assigned, lambda a: a.distinct_id = o.other_id)[1].founder,
                    if(o.other_first_seen_at < o.linked_at, o.other_id, null)) as other_founder
            from replay s
            join ops o on o.org_id = s.org_id and o.component_key = s.component_key and o.step = s.step + 1
        )
    )
)
select r.org_id, a.distinct_id, baseline.person_uuid(r.org_id, a.founder) as person_id,
    list_contains(r.identified, a.founder) as is_identified,
    list_transform(list_reverse_sort(list_filter(r.merges, lambda m: m.distinct_id = a.distinct_id)),
        lambda m: {'merged_at': m.merged_at, 'step': m.step, 'side': m.side}) as merge_history
from replay r, unnest(r.assigned) as t(a);

create or replace table baseline.property_writes as
with writers as (
    select org_id, uuid, distinct_id, "timestamp" as written_at,
        properties -> '$."$set"' as set_properties, properties -> '$."$set_once"' as set_once_properties
    from baseline.events_raw where distinct_id is not null
    union all
    select org_id, uuid, distinct_id, occurred_at, set_properties, set_once_properties
    from baseline.identities where distinct_id is not null
)
select org_id, uuid as source_uuid, distinct_id, written_at, 'set' as operation,
    unnest(map_entries(json_transform(set_properties, '"MAP(VARCHAR, JSON)"'))) as entry
from writers where json_type(set_properties) = 'OBJECT'
union all
select org_id, uuid, distinct_id, written_at, 'set_once',
    unnest(map_entries(json_transform(set_once_properties, '"MAP(VARCHAR, JSON)"')))
from writers where json_type(set_once_properties) = 'OBJECT';

create or replace table baseline.persons as
with members as (
    select d.org_id, d.distinct_id, coalesce(m.person_id, baseline.person_uuid(d.org_id, d.distinct_id)) as person_id,
        coalesce(m.is_identified, false) as is_identified,
        coalesce(m.merge_history, []) as merge_history, d.first_seen_at, d.last_seen_at
    from baseline.distinct_ids d left join baseline.identity_map m using (org_id, distinct_id)
),
ranked as (
    select m.org_id, m.person_id, w.entry.key as property, w.entry.value as value
    from baseline.property_writes w join members m using (org_id, distinct_id)
    qualify row_number() over (
        partition by m.org_id, m.person_id, w.entry.key
        order by list_transform(list_filter(m.merge_history, lambda h: h.merged_at > w.written_at), lambda h: h.side::bigint)
            || if(w.operation = 'set', [0, -epoch_us(w.written_at)], [3, epoch_us(w.written_at)]),
            w.source_uuid) = 1
),
properties as (
    select org_id, person_id, to_json(map_from_entries(list({'key': property, 'value': value} order by property))) as properties
    from ranked group by all
)
select p.person_id, p.org_id, p.distinct_ids, p.is_identified, coalesce(pr.properties, '{}'::json) as properties,
    p.created_at, p.last_seen_at
from (
    select person_id, org_id, list(distinct_id order by distinct_id) as distinct_ids, bool_or(is_identified) as is_identified,
        min(first_seen_at) as created_at, max(last_seen_at) as last_seen_at
    from members group by all
) p
left join properties pr using (org_id, person_id);

-- identity operations are events too, named as PostHog's SDKs send them
create or replace table baseline.fct_events as
with all_events as (
    select uuid, org_id, project_id, environment, event, distinct_id, properties, "timestamp",
        received_at, session_id, device_id
    from baseline.events_raw
    union all
    select uuid, org_id, project_id, environment,
        case kind when 'identify' then '$identify' when 'alias' then '$create_alias'
            when 'merge_dangerously' then '$merge_dangerously'
            else if(event = '$set_once', '$set_once', '$set') end,
        distinct_id,
        json_merge_patch(json_merge_patch('{}', json_object(
            if(kind = 'identify', '$anon_distinct_id', 'alias'), other_id,
            '$set', set_properties, '$set_once', set_once_properties)), properties),
        occurred_at, received_at, null, null
    from baseline.identities
)
select e.uuid, e.org_id, e.project_id, e.environment, e.event, e.distinct_id,
    coalesce(m.person_id, baseline.person_uuid(e.org_id, e.distinct_id)) as person_id,
    e.properties, e."timestamp", e.received_at, e.session_id, e.device_id
from all_events e
left join baseline.identity_map m using (org_id, distinct_id);

create or replace table baseline.feature_flag_exposures as
select org_id, project_id, person_id, properties ->> '$."$feature_flag"' as feature_flag,
    coalesce(properties ->> '$."$feature_flag_response"', 'null') as variant,
    "timestamp" as first_exposed_at, uuid as first_event_uuid, distinct_id, environment
from baseline.fct_events
where event = '$feature_flag_called' and (properties ->> '$."$feature_flag"') is not null
qualify row_number() over (partition by org_id, project_id, person_id, feature_flag, variant order by "timestamp", uuid) = 1;

create or replace table baseline.fct_sessions as
with
clock as (select date_trunc('hour', max(received_at)) + interval 1 hour as as_of from (
    select max(received_at) as received_at from raw.events union all select max(received_at) from raw.identities
    union all select max(received_at) from raw.sessions)),
starts as (select * from baseline.sessions_raw where kind = 'start'
    qualify row_number() over (partition by org_id, session_id order by received_at, uuid) = 1),
ends as (select * from baseline.sessions_raw where kind = 'end'
    qualify row_number() over (partition by org_id, session_id order by received_at, uuid) = 1),
merged as (
    select coalesce(s.org_id, e.org_id) as org_id, coalesce(s.session_id, e.session_id) as session_id,
        coalesce(s.project_id, e.project_id) as project_id, s.distinct_id, s.release,
        coalesce(s.environment, 'production') as environment, s.platform, s.started_at,
        coalesce(s.sample_rate, 1.0) as sample_rate, e.reported_status, coalesce(e.error_count, 0) as error_count,
        coalesce(e.crash_count, 0) as crash_count, e.ended_at, e.reported_duration_ms,
        s.received_at as start_received_at, e.received_at as end_received_at,
        s.started_at + interval 24 hour as end_deadline_at
    from starts s full join ends e using (org_id, session_id)
),
statused as (
    select merged.*, case
        when crash_count > 0 or reported_status = 'crashed' then 'crashed'
        when reported_status = 'abnormal' then 'abnormal'
        when end_received_at is not null and (error_count > 0 or reported_status = 'errored') then 'errored'
        when end_received_at is not null then 'exited'
        when end_deadline_at <= (select as_of from clock) then 'abnormal'
        else 'active' end as status
    from merged
)
select s.*, coalesce(m.person_id, baseline.person_uuid(s.org_id, s.distinct_id)) as person_id,
    coalesce(s.reported_duration_ms, datediff('millisecond', s.started_at, s.ended_at)) as duration_ms,
    if(s.status = 'crashed', 1.0, 1.0 / s.sample_rate) as sample_weight
from statused s left join baseline.identity_map m using (org_id, distinct_id);

create or replace table baseline.release_users_daily as
select org_id, project_id, coalesce(release, 'unknown') as release, environment, started_at::date as day,
    distinct_id, sample_rate, any_value(person_id) as person_id,
    bit_or(1::bigint << hour(started_at)) as session_hours,
    coalesce(bit_or(1::bigint << hour(started_at)) filter (where status = 'crashed'), 0) as crashed_hours
from baseline.fct_sessions
where started_at is not null and distinct_id is not null
group by all;

create or replace table baseline.release_health_hourly as
with
counts as (
    select org_id, project_id, coalesce(release, 'unknown') as release, environment,
        date_trunc('hour', started_at) as hour, count(*) as stored_sessions, sum(sample_weight) as adjusted_sessions,
        count(*) filter (where status = 'crashed') as crashed_sessions,
        coalesce(sum(sample_weight) filter (where status = 'errored'), 0) as errored_sessions,
        coalesce(sum(sample_weight) filter (where status = 'abnormal'), 0) as abnormal_sessions,
        coalesce(sum(sample_weight) filter (where status = 'exited'), 0) as exited_sessions,
        coalesce(sum(sample_weight) filter (where status = 'active'), 0) as active_sessions,
        coalesce(sum(sample_weight * duration_ms) filter (where duration_ms is not null), 0) as weighted_duration_ms,
        coalesce(sum(sample_weight) filter (where duration_ms is not null), 0) as weighted_sessions_with_duration,
        min(started_at) as first_started_at, max(started_at) as last_started_at
    from baseline.fct_sessions where started_at is not null group by all
),
persons as (
    select org_id, project_id, release, environment, day::timestamp + to_hours(bit) as hour, person_id,
        bool_or((crashed_hours >> bit) & 1 = 1) as has_crashed, max(sample_rate) as highest_sample_rate
    from baseline.release_users_daily, range(24) as bits(bit)
    where (session_hours >> bit) & 1 = 1
    group by all
),
users as (
    select org_id, project_id, release, environment, hour, count(*) as stored_users,
        sum(if(has_crashed, 1.0, 1.0 / highest_sample_rate)) as adjusted_users,
        count(*) filter (where has_crashed) as crashed_users
    from persons group by all
)
select c.*, coalesce(u.stored_users, 0) as stored_users, coalesce(u.adjusted_users, 0) as adjusted_users,
    coalesce(u.crashed_users, 0) as crashed_users
from counts c left join users u using (org_id, project_id, release, environment, hour);

create or replace table baseline.release_health_trend as
with
grains as (select unnest(['hour', 'day', 'week']) as grain),
sessions as (
    select org_id, project_id, grain, date_trunc(grain, hour) as bucket_start,
        sum(stored_sessions) as stored_sessions, sum(adjusted_sessions) as adjusted_sessions,
        sum(crashed_sessions) as crashed_sessions
    from baseline.release_health_hourly, grains group by all
),
persons as (
    select org_id, project_id, grain, date_trunc(grain, day::timestamp + to_hours(bit)) as bucket_start, person_id,
        bool_or((crashed_hours >> bit) & 1 = 1) as has_crashed, max(sample_rate) as highest_sample_rate
    from baseline.release_users_daily, range(24) as bits(bit), grains
    where (session_hours >> bit) & 1 = 1
    group by all
),
users as (
    select org_id, project_id, grain, bucket_start, sum(if(has_crashed, 1.0, 1.0 / highest_sample_rate)) as adjusted_users,
        count(*) filter (where has_crashed) as crashed_users
    from persons group by all
)
select s.*, coalesce(u.adjusted_users, 0) as adjusted_users, coalesce(u.crashed_users, 0) as crashed_users
from sessions s left join users u using (org_id, project_id, grain, bucket_start);

create or replace table baseline.release_health as
with
sessions as (
    select org_id, project_id, release, environment, sum(adjusted_sessions) as adjusted_sessions,
        sum(crashed_sessions) as crashed_sessions
    from baseline.release_health_hourly group by all
),
persons as (
    select org_id, project_id, release, environment, person_id,
        bool_or(crashed_hours <> 0) as has_crashed, max(sample_rate) as highest_sample_rate
    from baseline.release_users_daily group by all
),
users as (
    select org_id, project_id, release, environment,
        sum(if(has_crashed, 1.0, 1.0 / highest_sample_rate)) as adjusted_users,
        count(*) filter (where has_crashed) as crashed_users
    from persons group by all
)
select s.*, coalesce(u.adjusted_users, 0) as adjusted_users, coalesce(u.crashed_users, 0) as crashed_users,
    100.0 * (s.adjusted_sessions - s.crashed_sessions) / nullif(s.adjusted_sessions, 0) as crash_free_session_rate,
    100.0 * (u.adjusted_users - u.crashed_users) / nullif(u.adjusted_users, 0) as crash_free_user_rate
from sessions s left join users u using (org_id, project_id, release, environment);
