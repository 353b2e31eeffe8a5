"""int_identity_replay, a dbt Python model, run in-process on rows each test chooses.

The first seven tests are the unit tests the model had as SQL (dbt runs unit tests for SQL
models only), with the same inputs and expectations. The others cover what replaced the SQL's
per-id merge lists: the union-find's representatives and the merge tree's ranks, checked against
the list precedence the SQL model gave dim_persons on random link histories.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import combinations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.dbt_project.utils.python_model import load_model, run_model

MODEL = load_model("intermediate/identity/int_identity_replay.py")
DAY = datetime(2026, 1, 18)
ORG = "o"


def at(hhmm: str) -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return DAY + timedelta(hours=hours, minutes=minutes)


def replayed_rows(
    components: dict[str, str],
    first_seen: dict[str, datetime],
    links: list[tuple[str, str, str, str, datetime]],
) -> dict[str, dict]:
    """The model's rows by distinct_id, for one org's components (all in scope), first
    sightings and links (uuid, kind, into, other, linked_at)."""
    with duckdb.connect() as con:
        con.execute("create table int_identity_scope (org_id varchar, component_key varchar)")
        con.execute(
            "create table int_identity_components"
            " (org_id varchar, distinct_id varchar, component_key varchar)"
        )
        con.execute(
            "create table int_distinct_ids"
            " (org_id varchar, distinct_id varchar, first_seen_at timestamp)"
        )
        con.execute(
            "create table int_identity_links (org_id varchar, uuid varchar, link_kind varchar,"
            " into_id varchar, other_id varchar, linked_at timestamp)"
        )
        con.executemany(
            "insert into int_identity_scope values (?, ?)",
            [(ORG, key) for key in sorted(set(components.values()))],
        )
        con.executemany(
            "insert into int_identity_components values (?, ?, ?)",
            [(ORG, distinct_id, key) for distinct_id, key in components.items()],
        )
        con.executemany(
            "insert into int_distinct_ids values (?, ?, ?)",
            [(ORG, distinct_id, seen) for distinct_id, seen in first_seen.items()],
        )
        con.executemany(
            "insert into int_identity_links values (?, ?, ?, ?, ?, ?)",
            [(ORG, *link) for link in links],
        )
        return {row["distinct_id"]: row for row in run_model(MODEL, con)}


def persons(
    components: dict[str, str],
    first_seen: dict[str, str],
    links: list[tuple[str, str, str, str, str]],
) -> dict[str, tuple[str, bool]]:
    rows = replayed_rows(
        components,
        {distinct_id: at(seen) for distinct_id, seen in first_seen.items()},
        [(*link[:4], at(link[4])) for link in links],
    )
    return {
        distinct_id: (row["founder_distinct_id"], row["is_identified"])
        for distinct_id, row in rows.items()
    }


def test_identity_merges_into_the_event_distinct_id_person() -> None:
    """Rule 6 — both ids exist, the event's distinct_id's person absorbs the other."""
    assert persons(
        components={"a": "a", "u": "a"},
        first_seen={"a": "10:00", "u": "09:00"},
        links=[("l1", "identify", "u", "a", "11:00")],
    ) == {"a": ("u", True), "u": ("u", True)}


def test_identity_new_id_joins_the_existing_person() -> None:
    """Rule 4 — only the anonymous id existed, so the user id joins its person."""
    assert persons(
        components={"a": "a", "u": "a"},
        first_seen={"a": "10:00", "u": "12:00"},
        links=[("l1", "identify", "u", "a", "12:00")],
    ) == {"a": ("a", True), "u": ("a", True)}


def test_identity_link_between_unseen_ids_creates_a_person() -> None:
    """Rule 3 — neither id existed; the new person is founded by the event's distinct_id."""
    assert persons(
        components={"a": "a", "u": "a"},
        first_seen={"a": "12:00", "u": "12:00"},
        links=[("l1", "alias", "u", "a", "12:00")],
    ) == {"a": ("u", True), "u": ("u", True)}


def test_identity_refuses_to_merge_an_identified_person() -> None:
    """Rule 6 — a's person is identified (as u), so x may not take it; x still becomes
    identified."""
    assert persons(
        components={"a": "a", "u": "a", "x": "a"},
        first_seen={"a": "09:00", "u": "09:30", "x": "09:45"},
        links=[
            ("l1", "identify", "u", "a", "09:30"),
            ("l2", "identify", "x", "a", "10:00"),
        ],
    ) == {"a": ("a", True), "u": ("a", True), "x": ("x", True)}


def test_identity_merge_dangerously_merges_an_identified_person() -> None:
    """Rule 6 — $merge_dangerously is not refused."""
    assert persons(
        components={"a": "a", "u": "a", "x": "a"},
        first_seen={"a": "09:00", "u": "09:30", "x": "09:45"},
        links=[
            ("l1", "identify", "u", "a", "09:30"),
            ("l2", "merge_dangerously", "x", "a", "10:00"),
        ],
    ) == {"a": ("x", True), "u": ("x", True), "x": ("x", True)}


def test_identity_applies_links_in_event_time_order() -> None:
    """Shared device s: u identified on it at 10:00 (a link that arrived last), v tried at 11:00.
    Applied in event time, v's link is refused; in arrival order v would have taken s and u."""
    assert persons(
        components={"s": "s", "u": "s", "v": "s"},
        first_seen={"s": "10:00", "u": "10:00", "v": "09:00"},
        links=[
            ("arrived-first", "identify", "v", "s", "11:00"),
            ("arrived-last", "identify", "u", "s", "10:00"),
        ],
    ) == {"s": ("u", True), "u": ("u", True), "v": ("v", True)}


def test_identity_chains_and_cycles_resolve_to_one_person() -> None:
    """Rule 8 — a chain of aliases and a cycle of aliases each become one person."""
    founders = persons(
        components={"a": "a", "b": "a", "c": "a", "d": "a", "x": "x", "y": "x", "z": "x"},
        first_seen=dict(
            a="10:00", b="10:00", c="10:10", d="10:20", x="10:00", y="10:00", z="10:05"
        ),
        links=[
            ("l1", "alias", "b", "a", "10:00"),
            ("l2", "alias", "c", "b", "10:10"),
            ("l3", "alias", "d", "c", "10:20"),
            ("l4", "alias", "y", "x", "10:00"),
            ("l5", "alias", "z", "y", "10:05"),
            ("l6", "alias", "x", "z", "10:10"),
        ],
    )
    assert {distinct_id: founder for distinct_id, (founder, _) in founders.items()} == dict(
        a="b", b="b", c="b", d="b", x="y", y="y", z="y"
    )


def test_a_merge_gives_each_side_its_place_in_the_merge_tree() -> None:
    # u absorbs a at 11:00: the rows dim_persons.yml's unit test starts from. The tree's walk
    # enters the merge (0), then u's person before it (1, left at 2), then a's (3, 4), and leaves
    # the merge (5); a's person stands for itself until the merge, u's after it.
    rows = replayed_rows(
        components={"a": "a", "u": "a"},
        first_seen={"a": at("10:10"), "u": at("09:10")},
        links=[("l1", "identify", "u", "a", at("11:00"))],
    )
    assert rows["a"]["representatives"] == [{"since": at("11:00"), "distinct_id": "u"}]
    assert rows["a"]["person_positions"] == [{"since": None, "set_rank": 3, "set_once_rank": 4}]
    assert rows["u"]["representatives"] == []
    assert rows["u"]["person_positions"] == [
        {"since": None, "set_rank": 1, "set_once_rank": 2},
        {"since": at("11:00"), "set_rank": 0, "set_once_rank": 5},
    ]


def test_the_larger_set_stands_for_a_person_its_founder_did_not_found() -> None:
    # x (one id) dangerously absorbs the person of a, u and v: x founds the result, but the
    # union-find keeps the three ids' set as the representative, so none of them moves.
    rows = replayed_rows(
        components={"a": "a", "u": "a", "v": "a", "x": "a"},
        first_seen={"a": at("09:00"), "u": at("09:30"), "v": at("09:40"), "x": at("09:45")},
        links=[
            ("l1", "identify", "u", "a", at("09:30")),
            ("l2", "identify", "v", "a", at("09:40")),
            ("l3", "merge_dangerously", "x", "v", at("10:00")),
        ],
    )
    assert {row["founder_distinct_id"] for row in rows.values()} == {"x"}
    assert rows["x"]["representatives"] == [{"since": at("10:00"), "distinct_id": "a"}]
    assert [row["representatives"] for row in (rows["u"], rows["v"])] == [
        [{"since": at("09:30"), "distinct_id": "a"}],
        [{"since": at("09:40"), "distinct_id": "a"}],
    ]
    assert [position["since"] for position in rows["a"]["person_positions"]] == [None, at("10:00")]


def test_of_merges_at_one_time_a_write_then_ranks_after_the_last() -> None:
    # u absorbs a, then b, both at 11:00: a write at 11:00 follows both merges
    rows = replayed_rows(
        components={"a": "a", "b": "a", "u": "a"},
        first_seen={"a": at("10:00"), "b": at("10:00"), "u": at("09:00")},
        links=[
            ("l1", "identify", "u", "a", at("11:00")),
            ("l2", "identify", "u", "b", at("11:00")),
        ],
    )
    assert [
        (position["since"], position["set_rank"]) for position in rows["u"]["person_positions"]
    ] == [(None, 2), (at("11:00"), 0)]


# -- the ranks against the SQL model's list precedence, on random histories ------------------


def sql_model_replay(
    links: list[tuple[str, str, str, datetime]], first_seen: dict[str, datetime]
) -> tuple[dict[str, str], list[str], dict[str, list[tuple[datetime, int, int]]]]:
    """The replay as the recursive SQL model did it, state copied step by step: each id's
    founder, the identified founders, and each id's merges (merged_at, step, side)."""
    assigned: dict[str, str] = {}
    identified: list[str] = []
    history: dict[str, list[tuple[datetime, int, int]]] = {}
    for step, (kind, into, other, linked_at) in enumerate(links, start=1):
        into_founder = assigned.get(into) or (into if first_seen[into] < linked_at else None)
        other_founder = assigned.get(other) or (other if first_seen[other] < linked_at else None)
        registered = dict(assigned)
        for distinct_id, founder in ((into, into_founder), (other, other_founder)):
            if founder == distinct_id:
                registered.setdefault(distinct_id, distinct_id)
        if into_founder is None and other_founder is None:
            decision, survivor = "created", into
            registered |= {into: into, other: into}
        elif into_founder is None:
            decision, survivor = "joined", other_founder
            registered[into] = other_founder
        elif other_founder is None:
            decision, survivor = "joined", into_founder
            registered[other] = into_founder
        elif into_founder == other_founder or (
            other_founder in identified and kind != "merge_dangerously"
        ):
            decision, survivor = "unchanged", into_founder
        else:
            decision, survivor = "merged", into_founder
            for distinct_id, founder in registered.items():
                if founder in (into_founder, other_founder):
                    side = 1 if founder == into_founder else 2
                    history.setdefault(distinct_id, []).append((linked_at, step, side))
            registered = {
                distinct_id: into_founder if founder == other_founder else founder
                for distinct_id, founder in registered.items()
            }
        identified = [
            founder
            for founder in identified
            if (decision != "merged" or founder != other_founder) and founder != survivor
        ] + [survivor]
        assigned = registered
    return assigned, identified, history


def sql_model_precedence(
    history: list[tuple[datetime, int, int]], operation: str, written_at: datetime
) -> list[int]:
    micros = int(written_at.timestamp() * 1_000_000)
    sides = [
        side for merged_at, _step, side in sorted(history, reverse=True) if merged_at > written_at
    ]
    return sides + ([0, -micros] if operation == "set" else [3, micros])


def ranked_precedence(rows: dict[str, dict], writer: str, operation: str, written_at: datetime):
    """dim_persons' lookup: the writer's representative then, and where its person stood."""
    representative = writer
    for step in rows[writer]["representatives"]:
        if step["since"] <= written_at:
            representative = step["distinct_id"]
    position = [
        p for p in rows[representative]["person_positions"]
        if p["since"] is None or p["since"] <= written_at
    ][-1]  # fmt: skip
    micros = int(written_at.timestamp() * 1_000_000)
    if operation == "set":
        return (position["set_rank"], -micros)
    return (position["set_once_rank"], micros)


def sign(a, b) -> int:
    return (a > b) - (a < b)


IDS = "abcdef"
minutes = st.integers(min_value=0, max_value=3)  # few distinct times: ties are the hard part
link_strategy = st.tuples(
    st.sampled_from(["identify", "identify", "alias", "merge_dangerously"]),
    st.sampled_from(IDS),
    st.sampled_from(IDS),
    minutes,
).filter(lambda link: link[1] != link[2])


@settings(max_examples=200, deadline=None)
@given(
    links=st.lists(link_strategy, min_size=1, max_size=9),
    sightings=st.dictionaries(st.sampled_from(IDS), minutes),
    writes=st.lists(
        st.tuples(st.sampled_from(IDS), minutes, st.sampled_from(["set", "set_once"])),
        max_size=12,
    ),
)
def test_founders_and_write_precedence_match_the_sql_model(links, sightings, writes) -> None:
    def moment(minute: int) -> datetime:
        return at("10:00") + timedelta(minutes=minute)

    linked = {distinct_id for link in links for distinct_id in link[1:3]}
    first_seen = {
        distinct_id: moment(
            min(
                [sightings.get(distinct_id, 99)]
                + [m for _, i, o, m in links if distinct_id in (i, o)]
            )
        )
        for distinct_id in linked
    }
    uuids = [
        (f"l{n:02d}", kind, into, other, moment(minute))
        for n, (kind, into, other, minute) in enumerate(links)
    ]
    rows = replayed_rows(dict.fromkeys(linked, "c"), first_seen, uuids)

    ordered = sorted(uuids, key=lambda link: (link[4], link[0]))
    founders, identified, history = sql_model_replay([link[1:] for link in ordered], first_seen)
    assert {d: row["founder_distinct_id"] for d, row in rows.items()} == founders
    assert {d: row["is_identified"] for d, row in rows.items()} == {
        d: founder in identified for d, founder in founders.items()
    }

    # every write is a sighting: an id writes no earlier than it was first seen
    made = [
        (writer, operation, max(moment(minute), first_seen[writer]))
        for writer, minute, operation in writes
        if writer in linked
    ]
    for (w1, op1, t1), (w2, op2, t2) in combinations(made, 2):
        if founders[w1] != founders[w2]:
            continue
        assert sign(
            sql_model_precedence(history.get(w1, []), op1, t1),
            sql_model_precedence(history.get(w2, []), op2, t2),
        ) == sign(ranked_precedence(rows, w1, op1, t1), ranked_precedence(rows, w2, op2, t2)), (
            w1,
            op1,
            t1,
            w2,
            op2,
            t2,
        )
