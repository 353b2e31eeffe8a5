{{ config(materialized='incremental', incremental_strategy='replace_all', on_schema_change='sync_all_columns') }}
-- Rebuilt whole every run, its rows replaced in place (macros/definitions.sql: replace_all).
-- Replays the links of every component in scope one at a time, in event-time order (linked_at,
-- then uuid), applying PostHog's merge rules (see _identity.yml). The state of a component is the
-- list of (distinct_id, founder) assignments, the founders of identified persons and the merges
-- so far; a person is named by its founder, the distinct_id whose person survived every merge.

with

scope as (

    select org_id, component_key from {{ ref('int_identity_scope') }}

),

members as (

    select
        components.org_id,
        components.component_key,
        components.distinct_id,
        known.first_seen_at

    from {{ ref('int_identity_components') }} as components
    inner join scope
        on scope.org_id = components.org_id and scope.component_key = components.component_key
    left join {{ ref('int_distinct_ids') }} as known
        on known.org_id = components.org_id and known.distinct_id = components.distinct_id

),

ops as (

    select
        into_member.org_id,
        into_member.component_key,
        links.uuid,
        links.link_kind,
        links.into_id,
        links.other_id,
        links.linked_at,
        into_member.first_seen_at as into_first_seen_at,
        other_member.first_seen_at as other_first_seen_at,
        row_number() over (
            partition by into_member.org_id, into_member.component_key
            order by links.linked_at, links.uuid
        ) as step

    from {{ ref('int_identity_links') }} as links
    inner join members as into_member
        on into_member.org_id = links.org_id and into_member.distinct_id = links.into_id
    inner join members as other_member
        on other_member.org_id = links.org_id and other_member.distinct_id = links.other_id

),

replayed as (

    select * from (
        with recursive replay(org_id, component_key, step, assigned, identified, merges)
        using key (org_id, component_key) as (

            select
                org_id,
                component_key,
                0::bigint,
                []::struct(distinct_id varchar, founder varchar)[],
                []::varchar[],
                []::struct(distinct_id varchar, merged_at timestamp, step bigint, side integer)[]
            from scope

            union

            select
                org_id,
                component_key,
                step,
                case decision
                    when 'created' then registered || [
                        {'distinct_id': into_id, 'founder': into_id},
                        {'distinct_id': other_id, 'founder': into_id}
                    ]
                    when 'joined_other' then registered || [{'distinct_id': into_id, 'founder': other_founder}]
                    when 'joined_into' then registered || [{'distinct_id': other_id, 'founder': into_founder}]
                    when 'merged' then list_transform(
                        registered,
                        lambda a: {
                            'distinct_id': a.distinct_id,
                            'founder': if(a.founder = other_founder, into_founder, a.founder)
                        }
                    )
                    else registered
                end,
                -- every applied link (created, joined, merged, refused, already merged) marks the
                -- surviving person identified, as PostHog's `updateIsIdentified` does
                list_distinct(
                    list_filter(identified, lambda f: decision <> 'merged' or f <> other_founder)
                    || [survivor]
                ),
                if(
                    decision = 'merged',
                    merges || list_transform(
                        list_filter(registered, lambda a: a.founder in (into_founder, other_founder)),
                        lambda a: {
                            'distinct_id': a.distinct_id,
                            'merged_at': linked_at,
                            'step': step,
                            'side': if(a.founder = into_founder, 1, 2)
                        }
                    ),
                    merges
                )

            from (
                select
                    *,
                    case decision
                        when 'created' then into_id
                        when 'joined_other' then other_founder
                        else into_founder
                    end as survivor
                from (
                    select
                        *,
                        -- ids that existed only through their own sightings join the state as
                        -- single-id persons they found themselves
                        assigned
                        || if(into_founder = into_id and not list_contains(assigned_ids, into_id),
                            [{'distinct_id': into_id, 'founder': into_id}], [])
                        || if(other_founder = other_id and not list_contains(assigned_ids, other_id),
                            [{'distinct_id': other_id, 'founder': other_id}], [])
                        as registered,
                        case
                            when into_founder is null and other_founder is null then 'created'
                            when into_founder is null then 'joined_other'
                            when other_founder is null then 'joined_into'
                            when into_founder = other_founder then 'already_merged'
                            when list_contains(identified, other_founder)
                                and link_kind <> 'merge_dangerously' then 'refused'
                            else 'merged'
                        end as decision
                    from (
                        select
                            state.org_id,
                            state.component_key,
                            op.step,
                            state.assigned,
                            state.identified,
                            state.merges,
                            op.link_kind,
                            op.into_id,
                            op.other_id,
                            op.linked_at,
                            list_transform(state.assigned, lambda a: a.distinct_id) as assigned_ids,
                            -- the person an id belongs to when the link happens: its assignment, or
                            -- its own single-id person if it was seen before, or none yet
                            coalesce(
                                list_filter(state.assigned, lambda a: a.distinct_id = op.into_id)[1].founder,
                                if(op.into_first_seen_at < op.linked_at, op.into_id, null)
                            ) as into_founder,
                            coalesce(
                                list_filter(state.assigned, lambda a: a.distinct_id = op.other_id)[1].founder,
                                if(op.other_first_seen_at < op.linked_at, op.other_id, null)
                            ) as other_founder
                        from replay as state
                        inner join ops as op
                            on op.org_id = state.org_id
                            and op.component_key = state.component_key
                            and op.step = state.step + 1
                    ) as resolved
                ) as decided
            ) as applied
        )
        select * from replay
    )

),

assignments as (

    select
        replayed.org_id,
        replayed.component_key,
        assignment.distinct_id,
        assignment.founder,
        replayed.identified,
        replayed.merges
    from replayed, unnest(replayed.assigned) as t(assignment)

),

final as (

    select
        members.org_id,
        members.distinct_id,
        members.component_key,
        coalesce(assignments.founder, members.distinct_id) as founder_distinct_id,
        coalesce(list_contains(assignments.identified, assignments.founder), false) as is_identified,
        -- the merges this id's person took part in, newest first, with the side it was on
        -- (1: the person merged into, 2: the person merged away); dim_persons ranks property
        -- writes with it
        coalesce(
            list_transform(
                list_reverse_sort(
                    list_filter(assignments.merges, lambda m: m.distinct_id = members.distinct_id)
                ),
                lambda m: {'merged_at': m.merged_at, 'step': m.step, 'side': m.side}
            ),
            []
        ) as merge_history

    from members
    left join assignments
        on assignments.org_id = members.org_id and assignments.distinct_id = members.distinct_id

)

select * from final
