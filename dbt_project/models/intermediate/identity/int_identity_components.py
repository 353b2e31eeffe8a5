"""Connected components of the identity link graph (every applied or refused link is an edge):
each linked distinct_id with its component_key, the smallest distinct_id of its component.

Components only ever grow, so a run only relabels the components its window's links touch: the
old components of the touched ids are contracted to single nodes (their keys), the window's links
connect those nodes, and a union-find over that small graph gives each group of nodes its
smallest key, in near-linear time whatever the graph's shape. (Label propagation in SQL took one
round per hop across the graph: a chain of 4,000 aliases in one hour took a minute.)
"""

from __future__ import annotations

import pyarrow as pa

TOUCHED_NODES = """
-- each id of the window's links, as the node its stored component contracts to (its key), or
-- as a node of its own when it is new
with touched as (
    select org_id, into_id as distinct_id from components_window_links
    union
    select org_id, other_id as distinct_id from components_window_links
)
select
    touched.org_id,
    touched.distinct_id,
    coalesce(previous.component_key, touched.distinct_id) as node
from touched
left join components_previous as previous
    on previous.org_id = touched.org_id and previous.distinct_id = touched.distinct_id
"""

MEMBERS = """
with members as (
    -- every member of a touched old component, and the touched ids themselves
    select previous.org_id, previous.distinct_id, previous.component_key as node
    from components_previous as previous
    semi join components_labels as labels
        on labels.org_id = previous.org_id and labels.node = previous.component_key
    union
    select org_id, distinct_id, node from components_touched
)
select members.org_id, members.distinct_id, labels.label as component_key
from members
inner join components_labels as labels
    on labels.org_id = members.org_id and labels.node = members.node
"""


# typed, so that a run without links still writes varchar columns
LABELS = pa.schema([("org_id", pa.string()), ("node", pa.string()), ("label", pa.string())])


class Forest:
    """A union-find over one run's nodes, each group knowing its smallest node."""

    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}
        self.size: dict[tuple[str, str], int] = {}
        self.smallest: dict[tuple[str, str], str] = {}

    def add(self, node: tuple[str, str]) -> None:
        if node not in self.parent:
            self.parent[node], self.size[node], self.smallest[node] = node, 1, node[1]

    def root(self, node: tuple[str, str]) -> tuple[str, str]:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]  # halve the path on the way up
            node = self.parent[node]
        return node

    def union(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        a, b = self.root(a), self.root(b)
        if a != b:
            if self.size[a] < self.size[b]:
                a, b = b, a
            self.parent[b] = a
            self.size[a] += self.size[b]
            self.smallest[a] = min(self.smallest[a], self.smallest[b])

    def labels(self) -> pa.Table:
        orgs, nodes, labels = [], [], []
        for node in self.parent:
            orgs.append(node[0])
            nodes.append(node[1])
            labels.append(self.smallest[self.root(node)])
        return pa.table({"org_id": orgs, "node": nodes, "label": labels}, schema=LABELS)


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="merge",
        unique_key=["org_id", "distinct_id"],
    )
    dbt.ref("int_window_links").create_view("components_window_links", replace=True)
    previous = (
        session.query(f"select org_id, distinct_id, component_key from {dbt.this}")
        if dbt.is_incremental
        else session.query(
            "select null::varchar as org_id, null::varchar as distinct_id,"
            " null::varchar as component_key where false"
        )
    )
    previous.create_view("components_previous", replace=True)
    touched = session.sql(TOUCHED_NODES).to_arrow_table()
    node_of = {(org_id, distinct_id): (org_id, node) for org_id, distinct_id, node in rows(touched)}
    forest = Forest()
    for node in node_of.values():
        forest.add(node)
    links = dbt.ref("int_window_links").select("org_id, into_id, other_id").to_arrow_table()
    for org_id, into_id, other_id in rows(links):
        forest.union(node_of[(org_id, into_id)], node_of[(org_id, other_id)])
    session.register("components_touched", touched)
    session.register("components_labels", forest.labels())
    return session.sql(MEMBERS)


def rows(table: pa.Table) -> zip:
    return zip(*(column.to_pylist() for column in table.columns), strict=True)
