"""int_identity_components, a dbt Python model, run in-process on rows each test chooses.

The first two tests are the unit tests the model had as SQL (dbt runs unit tests for SQL models
only), with the same inputs and expectations; the third applies random link graphs window by
window, as the incremental runs do, against the components computed from all links at once.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.dbt_project.utils.python_model import ModelContext, load_model, run_model

MODEL = load_model("intermediate/identity/int_identity_components.py")


def components(
    links: list[tuple[str, str, str]], stored: list[tuple[str, str, str]] | None = None
) -> list[tuple[str, str, str]]:
    """The rows one run writes for its window's links (org_id, into_id, other_id), over the
    stored rows (org_id, distinct_id, component_key) of an incremental run, or none."""
    with duckdb.connect() as con:
        con.execute(
            "create table int_window_links (org_id varchar, into_id varchar, other_id varchar)"
        )
        con.executemany("insert into int_window_links values (?, ?, ?)", links)
        if stored is not None:
            con.execute(
                "create table int_identity_components"
                " (org_id varchar, distinct_id varchar, component_key varchar)"
            )
            if stored:
                con.executemany("insert into int_identity_components values (?, ?, ?)", stored)
        rows = run_model(MODEL, con, this="int_identity_components" if stored is not None else None)
    return sorted((row["org_id"], row["distinct_id"], row["component_key"]) for row in rows)


def test_int_identity_components_resolves_chains_and_cycles() -> None:
    """A chain of aliases and a cycle each become one component keyed by its smallest id."""
    assert components(
        [
            ("o", "b", "a"),
            ("o", "c", "b"),
            ("o", "d", "c"),
            ("o", "y", "x"),
            ("o", "z", "y"),
            ("o", "x", "z"),
            ("p", "b", "a"),
        ]
    ) == [
        ("o", "a", "a"),
        ("o", "b", "a"),
        ("o", "c", "a"),
        ("o", "d", "a"),
        ("o", "x", "x"),
        ("o", "y", "x"),
        ("o", "z", "x"),
        ("p", "a", "a"),
        ("p", "b", "a"),
    ]


def test_int_identity_components_joins_existing_components_incrementally() -> None:
    """A new link between members of two stored components rewrites every member of both with
    the smaller key, and leaves untouched components out of the batch."""
    assert components(
        [("o", "q", "n"), ("o", "new-user", "q")],
        stored=[
            ("o", "m", "m"),
            ("o", "n", "m"),
            ("o", "k", "k"),
            ("o", "q", "k"),
            ("o", "untouched", "untouched"),
        ],
    ) == [
        ("o", "k", "k"),
        ("o", "m", "k"),
        ("o", "n", "k"),
        ("o", "new-user", "k"),
        ("o", "q", "k"),
    ]


def test_a_window_without_links_writes_varchar_columns() -> None:
    # the first run of a warehouse may have no links; the table it creates must still take ids
    with duckdb.connect() as con:
        con.execute(
            "create table int_window_links (org_id varchar, into_id varchar, other_id varchar)"
        )
        written = MODEL.model(ModelContext(con), con)
        assert [str(column_type) for column_type in written.types] == ["VARCHAR"] * 3


def smallest_of_each_component(links: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    neighbours: defaultdict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for org_id, into_id, other_id in links:
        neighbours[(org_id, into_id)].add((org_id, other_id))
        neighbours[(org_id, other_id)].add((org_id, into_id))
    keys: dict[tuple[str, str], str] = {}
    for start in neighbours:
        if start in keys:
            continue
        seen, frontier = {start}, [start]
        while frontier:
            frontier = [n for node in frontier for n in neighbours[node] - seen]
            seen.update(frontier)
        smallest = min(distinct_id for _org, distinct_id in seen)
        keys.update(dict.fromkeys(seen, smallest))
    return keys


@settings(max_examples=100, deadline=None)
@given(
    links=st.lists(
        st.tuples(st.sampled_from("op"), st.sampled_from("abcdefgh"), st.sampled_from("abcdefgh")),
        min_size=1,
        max_size=14,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=14), max_size=4),
)
def test_windows_applied_one_by_one_give_the_components_of_all_links(links, cuts) -> None:
    stored: dict[tuple[str, str], str] = {}
    bounds = sorted({0, len(links), *(cut for cut in cuts if cut < len(links))})
    for start, end in pairwise(bounds):
        window = links[start:end]
        rows = [(org, distinct_id, key) for (org, distinct_id), key in stored.items()]
        for org_id, distinct_id, key in components(window, stored=rows):
            stored[(org_id, distinct_id)] = key  # the model's merge on (org_id, distinct_id)
    assert stored == smallest_of_each_component(links)
