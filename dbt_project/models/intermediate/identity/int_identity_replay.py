"""PostHog's identity rules replayed over every link of the components in int_identity_scope.

Rebuilt whole every run, its rows replaced in place (macros/lake_workarounds/replace_all.sql). The
links of a component are applied one at a time in event-time order (linked_at, then uuid) with
the rules of int_identity_replay.yml. A person is named by its founder; underneath, persons are
the sets of a union-find (union by size, no path compression), so that a link costs O(log n)
whatever the shape of the graph, and the union-find's pointers, kept with the time they were
set, answer "which person was this id in at time t" for dim_persons' property precedence.

Each merge is a node of a binary tree whose children are the two persons' previous tops (their
latest merge, or the person before any merge). A property write belongs where the writer's
person stood when it was written; its precedence is that node's place in a depth-first walk
(the person merged into before the person merged away, $set on the way down and $set_once on
the way up), which is what PostHog's sequence of person updates, replayed in event time, keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import groupby
from operator import itemgetter

import pyarrow as pa

Link = tuple[str, str, str, datetime, bool, bool]  # link_kind, into, other, linked_at, seen before

OUTPUT = pa.schema(
    [
        ("org_id", pa.string()),
        ("distinct_id", pa.string()),
        ("component_key", pa.string()),
        ("founder_distinct_id", pa.string()),
        ("is_identified", pa.bool_()),
        (
            "representatives",
            pa.list_(pa.struct([("since", pa.timestamp("us")), ("distinct_id", pa.string())])),
        ),
        (
            "person_positions",
            pa.list_(
                pa.struct(
                    [
                        ("since", pa.timestamp("us")),
                        ("set_rank", pa.int64()),
                        ("set_once_rank", pa.int64()),
                    ]
                )
            ),
        ),
    ]
)

LINKS = """
with

members as (

    select components.org_id, components.component_key, components.distinct_id, known.first_seen_at
    from replay_components as components
    semi join replay_scope as scope
        on scope.org_id = components.org_id and scope.component_key = components.component_key
    left join replay_distinct_ids as known
        on known.org_id = components.org_id and known.distinct_id = components.distinct_id

)

select
    into_member.org_id,
    into_member.component_key,
    links.link_kind,
    links.into_id,
    links.other_id,
    links.linked_at,
    -- an id seen strictly before the link exists then, as a person of its own if never linked
    coalesce(into_member.first_seen_at < links.linked_at, false) as into_seen_before,
    coalesce(other_member.first_seen_at < links.linked_at, false) as other_seen_before

from replay_links as links
inner join members as into_member
    on into_member.org_id = links.org_id and into_member.distinct_id = links.into_id
inner join members as other_member
    on other_member.org_id = links.org_id and other_member.distinct_id = links.other_id
order by into_member.org_id, into_member.component_key, links.linked_at, links.uuid
"""


class Component:
    """The persons of one component while its links are applied in order. (A plain class: dbt
    runs this file as a module it does not register, where a dataclass cannot resolve itself.)"""

    def __init__(self) -> None:
        self.parent: dict[str, tuple[str, datetime]] = {}  # id -> the set it joined, and when
        self.size: dict[str, int] = {}  # union-find root -> ids in its set
        self.founder: dict[str, str] = {}  # root -> founder of its person
        self.identified: set[str] = set()  # roots of identified persons
        # root -> its person's tree node from each time on: its base (None), then each merge
        self.positions: dict[str, list[tuple[datetime | None, int]]] = {}
        self.children: list[tuple[int, int] | None] = []  # tree node -> (into, other) or a base

    def root(self, distinct_id: str) -> str:
        while distinct_id in self.parent:
            distinct_id = self.parent[distinct_id][0]
        return distinct_id

    def registered(self, distinct_id: str) -> bool:
        return distinct_id in self.parent or distinct_id in self.size

    def person(self, distinct_id: str) -> str:
        """The root of the id's person, founding a person of its own for an id seen before."""
        if not self.registered(distinct_id):
            self.size[distinct_id] = 1
            self.founder[distinct_id] = distinct_id
            self.positions[distinct_id] = [(None, self.new_node(None))]
        return self.root(distinct_id)

    def new_node(self, children: tuple[int, int] | None) -> int:
        self.children.append(children)
        return len(self.children) - 1

    def join(self, distinct_id: str, root: str, at: datetime) -> None:
        self.parent[distinct_id] = (root, at)
        self.size[root] += 1

    def merge(self, into: str, other: str, at: datetime) -> str:
        node = self.new_node((self.positions[into][-1][1], self.positions[other][-1][1]))
        kept, absorbed = (into, other) if self.size[into] >= self.size[other] else (other, into)
        self.parent[absorbed] = (kept, at)
        self.size[kept] += self.size.pop(absorbed)
        founder = self.founder[into]  # the person merged into survives, under its own name
        del self.founder[absorbed]
        self.founder[kept] = founder
        self.identified.discard(absorbed)
        self.positions[kept].append((at, node))
        return kept

    def apply(
        self, kind: str, into: str, other: str, at: datetime, into_seen: bool, other_seen: bool
    ) -> None:
        into_exists = into_seen or self.registered(into)
        other_exists = other_seen or self.registered(other)
        if not into_exists and not other_exists:
            survivor = self.person(into)
            self.join(other, survivor, at)
        elif not into_exists:
            survivor = self.person(other)
            self.join(into, survivor, at)
        elif not other_exists:
            survivor = self.person(into)
            self.join(other, survivor, at)
        else:
            into_root, other_root = self.person(into), self.person(other)
            if into_root != other_root and (
                kind == "merge_dangerously" or other_root not in self.identified
            ):
                survivor = self.merge(into_root, other_root, at)
            else:
                survivor = into_root  # already one person, or the merge is refused
        self.identified.add(survivor)

    def ranks(self) -> tuple[list[int], list[int]]:
        """Each tree node's place in a depth-first walk of its person's tree: entered (where its
        $set writes rank), then the person merged into, the person merged away, then left (where
        its $set_once writes rank)."""
        entered, left = [0] * len(self.children), [0] * len(self.children)
        counter = 0
        for root in self.size:
            stack = [(self.positions[root][-1][1], False)]
            while stack:
                node, done = stack.pop()
                if done:
                    left[node] = counter
                else:
                    entered[node] = counter
                    stack.append((node, True))
                    children = self.children[node]
                    if children is not None:
                        stack += [(children[1], False), (children[0], False)]
                counter += 1
        return entered, left

    def write(self, org_id: str, component_key: str, output: Output) -> None:
        """One row per id of the component."""
        entered, left = self.ranks()
        for distinct_id in [*self.size, *self.parent]:
            root = distinct_id
            while root in self.parent:
                root, since = self.parent[root]
                output.representatives.append(since, root)
            output.representatives.close_list()
            last_since: object = ()  # matches no time
            for since, tree_node in self.positions.get(distinct_id, []):
                if since == last_since:
                    output.positions.pop()  # merges at one time: a write then follows the last
                output.positions.append(since, entered[tree_node], left[tree_node])
                last_since = since
            output.positions.close_list()
            output.append(
                org_id, distinct_id, component_key, self.founder[root], root in self.identified
            )


class ListColumn:
    """A column of lists of structs, built field by field (Arrow makes it without a dict per
    element)."""

    def __init__(self, fields: pa.StructType) -> None:
        self.type = fields
        self.values: list[list] = [[] for _ in range(fields.num_fields)]
        self.offsets = [0]

    def append(self, *element: object) -> None:
        for values, value in zip(self.values, element, strict=True):
            values.append(value)

    def pop(self) -> None:
        for values in self.values:
            values.pop()

    def close_list(self) -> None:
        self.offsets.append(len(self.values[0]))

    def array(self) -> pa.ListArray:
        fields = [
            pa.array(values, type=self.type.field(n).type) for n, values in enumerate(self.values)
        ]
        return pa.ListArray.from_arrays(
            pa.array(self.offsets, type=pa.int32()),
            pa.StructArray.from_arrays(fields, fields=list(self.type)),
        )


class Output:
    """The model's rows, column by column."""

    def __init__(self) -> None:
        self.scalars: list[list] = [[] for _ in range(5)]
        self.representatives = ListColumn(OUTPUT.field("representatives").type.value_type)
        self.positions = ListColumn(OUTPUT.field("person_positions").type.value_type)

    def append(self, *row: object) -> None:
        for values, value in zip(self.scalars, row, strict=True):
            values.append(value)

    def table(self) -> pa.Table:
        columns = [
            pa.array(values, type=OUTPUT.field(n).type) for n, values in enumerate(self.scalars)
        ]
        return pa.Table.from_arrays(
            [*columns, self.representatives.array(), self.positions.array()], schema=OUTPUT
        )


def replay(links: list[Link]) -> Component:
    """One component's links, in event-time order, applied by PostHog's rules."""
    component = Component()
    for link in links:
        component.apply(*link)
    return component


def ordered_links(reader: pa.RecordBatchReader) -> Iterator[tuple]:
    """The rows of LINKS as tuples, a batch at a time."""
    for batch in reader:
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="replace_all",
        on_schema_change="sync_all_columns",
    )
    dbt.ref("int_identity_scope").create_view("replay_scope", replace=True)
    dbt.ref("int_identity_components").create_view("replay_components", replace=True)
    dbt.ref("int_distinct_ids").create_view("replay_distinct_ids", replace=True)
    dbt.ref("int_identity_links").create_view("replay_links", replace=True)
    ordered = ordered_links(session.sql(LINKS).to_arrow_reader())
    output = Output()
    for (org_id, component_key), component_links in groupby(ordered, key=itemgetter(0, 1)):
        replay([link[2:] for link in component_links]).write(org_id, component_key, output)
    return output.table()
