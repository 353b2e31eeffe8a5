{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['org_id', 'distinct_id'],
    )
}}

-- Connected components of the link graph (every applied or refused link is an edge): each linked
-- distinct_id with its component_key, the smallest distinct_id of its component. Components only
-- ever grow, so a run only relabels the components its window's links touch: the old components
-- of the touched ids are contracted to single nodes (their keys), the window's links connect
-- those nodes, and label propagation over that small graph gives the merged keys.

with

window_links as (

    select * from {{ ref('int_window_links') }}

),

touched as (

    select org_id, into_id as distinct_id from window_links
    union
    select org_id, other_id as distinct_id from window_links

),

previous as (

    {% if is_incremental() %}
    select org_id, distinct_id, component_key from {{ this }}
    {% else %}
    select null::varchar as org_id, null::varchar as distinct_id, null::varchar as component_key
    where false
    {% endif %}

),

touched_nodes as (

    select
        touched.org_id,
        touched.distinct_id,
        coalesce(previous.component_key, touched.distinct_id) as node

    from touched
    left join previous using (org_id, distinct_id)

),

-- One join at a time: given both joins at once, DuckDB may join the two touched_nodes sides on
-- org_id alone first, a cross product of every touched id of the org (a 1M-event hour's 32k ids
-- took over 20 GB); the materialized half leaves it nothing to reorder.
edges_from_nodes as materialized (

    select window_links.org_id, into_node.node as source_node, window_links.other_id
    from window_links
    inner join touched_nodes as into_node
        on into_node.org_id = window_links.org_id and into_node.distinct_id = window_links.into_id

),

graph_edges as (

    select edges_from_nodes.org_id, edges_from_nodes.source_node, other_node.node as target_node
    from edges_from_nodes
    inner join touched_nodes as other_node
        on other_node.org_id = edges_from_nodes.org_id
        and other_node.distinct_id = edges_from_nodes.other_id

),

undirected_edges as (

    select org_id, source_node, target_node from graph_edges
    union
    select org_id, target_node, source_node from graph_edges

),

graph_nodes as (

    select distinct org_id, node from touched_nodes

),

labels as (

    select * from (
        with recursive propagation(org_id, node, label) using key (org_id, node) as (
            select org_id, node, node from graph_nodes
            union
            -- a node whose label dropped passes it on to neighbours holding a larger one
            select changed.org_id, edge.target_node, min(changed.label)
            from propagation as changed
            inner join undirected_edges as edge
                on edge.org_id = changed.org_id and edge.source_node = changed.node
            inner join recurring.propagation as neighbour
                on neighbour.org_id = changed.org_id and neighbour.node = edge.target_node
            group by changed.org_id, edge.target_node
            having min(changed.label) < min(neighbour.label)
        )
        select * from propagation
    )

),

members as (

    -- every member of a touched old component, and the touched ids themselves
    select previous.org_id, previous.distinct_id, previous.component_key as node
    from previous
    semi join graph_nodes
        on graph_nodes.org_id = previous.org_id and graph_nodes.node = previous.component_key
    union
    select org_id, distinct_id, node from touched_nodes

),

final as (

    select members.org_id, members.distinct_id, labels.label as component_key
    from members
    inner join labels using (org_id, node)

)

select * from final
