"""Exact values of the marts after one ``dbt build`` of the scenario (models, data, unit tests)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.dbt_project.utils import scenario
from tests.dbt_project.utils.warehouse import query, query_dicts
from warehouse import dbt
from warehouse.dbt import person_uuid
from warehouse.layout import Layout

pytestmark = pytest.mark.slow

ORG = scenario.ORG


def persons(layout: Layout, org: str = ORG) -> dict[tuple[str, ...], tuple]:
    rows = query(
        layout,
        "select distinct_ids, person_id, is_identified, properties, created_at, last_seen_at"
        " from analytics.dim_persons where org_id = ?",
        [org],
    )
    return {
        tuple(ids): (person_id, identified, json.loads(props), created, seen)
        for ids, person_id, identified, props, created, seen in rows
    }


def person_of(layout: Layout, distinct_id: str, org: str = ORG) -> tuple[tuple[str, ...], tuple]:
    for ids, person in persons(layout, org).items():
        if distinct_id in ids:
            return ids, person
    raise AssertionError(f"{distinct_id} has no person")


def test_late_identify_attributes_the_anonymous_events_to_the_known_user(built: Layout) -> None:
    ids, (person_id, identified, properties, created, seen) = person_of(built, "a1")
    assert ids == ("a1", "u1")
    # u1 existed (seen at 09:00) when it identified a1 at 12:30: u1's person absorbed a1's
    assert person_id == person_uuid(ORG, "u1")
    assert identified is True
    assert properties == {"email": "u1@example.com"}
    assert (created, seen) == (datetime(2026, 1, 18, 9, 0), datetime(2026, 1, 18, 13, 0))
    events = query(
        built,
        "select distinct person_id from analytics.fct_events"
        " where org_id = ? and distinct_id in ('a1', 'u1')",
        [ORG],
    )
    assert events == [(person_id,)]


def test_identify_of_a_new_id_joins_the_anonymous_person(built: Layout) -> None:
    ids, (person_id, identified, *_rest) = person_of(built, "u1b")
    assert ids == ("a1b", "u1b")
    assert person_id == person_uuid(ORG, "a1b")
    assert identified is True


def test_merge_into_person_wins_property_conflicts(built: Layout) -> None:
    ids, (person_id, _identified, properties, *_rest) = person_of(built, "a2")
    assert ids == ("a2", "u2")
    assert person_id == person_uuid(ORG, "u2")
    # plan: u2's 'pro' (09:10) beats a2's later 'free' (10:10) because u2's person was merged into;
    # theme: a2's $set after the merge (11:30) wins; referrer: the merged-into $set_once wins
    assert properties == {"plan": "pro", "theme": "light", "referrer": "seo"}


def test_merge_of_an_identified_person_is_refused_unless_dangerous(built: Layout) -> None:
    everyone = persons(built)
    assert everyone[("a3", "u3")][:2] == (person_uuid(ORG, "a3"), True)
    assert everyone[("u3x",)][:2] == (person_uuid(ORG, "u3x"), True)
    assert everyone[("a4", "u4", "u4x")][:2] == (person_uuid(ORG, "u4x"), True)


def test_illegal_ids_are_never_merged(built: Layout) -> None:
    everyone = persons(built)
    assert ("NULL", "u5") in everyone  # 'NULL' is legal: only 'null' is, case-sensitively, not
    for illegal in ("anonymous", "None", "guest"):
        assert (illegal,) in everyone
    linked = {distinct_id for ids in everyone for distinct_id in ids if len(ids) > 1}
    assert linked.isdisjoint({"anonymous", "None", "0", "Anonymous", '"guest"', " ", "guest", "a5"})


def test_alias_chains_and_cycles_resolve_to_one_person(built: Layout) -> None:
    everyone = persons(built)
    assert everyone[("a6", "b6", "c6", "d6")][0] == person_uuid(ORG, "b6")
    assert everyone[("x7", "y7", "z7")][0] == person_uuid(ORG, "y7")


def test_links_apply_in_event_time_not_arrival_order(built: Layout) -> None:
    # u9's identify on the shared device s9 happened first but arrived last: v9's is refused
    everyone = persons(built)
    assert everyone[("s9", "u9")][0] == person_uuid(ORG, "u9")
    assert ("v9",) in everyone


def test_set_and_set_once_precedence(built: Layout) -> None:
    _ids, (_person_id, identified, properties, *_rest) = person_of(built, "u10")
    assert identified is False
    assert properties == {
        "source": "organic",  # $set after $set_once within one event
        "first_page": "/b",  # the earliest $set_once, although it arrived later
        "color": "red",  # the latest $set, although it arrived earlier
        "tier": "gold",  # an identity `set` call: $set over $set_once
    }


def test_orgs_never_share_persons(built: Layout) -> None:
    other = persons(built, scenario.OTHER_ORG)
    assert set(other) == {("a1",), ("u1",)}
    assert other[("u1",)][0] == person_uuid(scenario.OTHER_ORG, "u1") != person_uuid(ORG, "u1")


def test_the_person_lookup_table_is_sorted_by_its_key_in_small_row_groups(built: Layout) -> None:
    # The read API's persons/{distinct_id} reads one row group instead of the table (lookup_layout).
    table = "analytics.dim_persons_by_distinct_id"
    assert query(
        built,
        "select value from warehouse.options()"
        " where option_name = 'parquet_row_group_size' and scope_entry = ?",
        [table],
    ) == [("8192",)]
    assert query(
        built,
        "select expression from __ducklake_metadata_warehouse.ducklake_sort_expression"
        " join __ducklake_metadata_warehouse.ducklake_table using (table_id)"
        " where table_name = 'dim_persons_by_distinct_id' and end_snapshot is null"
        " order by sort_key_index",
    ) == [("org_id",), ("distinct_id",)]


def test_duplicate_uuid_counts_once_with_its_earliest_copy(built: Layout) -> None:
    rows = query(built, "select received_at from analytics.fct_events where uuid = 'dup-1'")
    assert rows == [(datetime(2026, 1, 18, 12, 40, 1),)]


def test_person_less_events_are_stored_but_make_and_change_no_person(built: Layout) -> None:
    events = dict(
        query(
            built,
            "select distinct_id, person_id from analytics.fct_events"
            " where org_id = ? and distinct_id like '%pl%' and event = '$pageview'",
            [ORG],
        )
    )
    # pl1's own later event made its person, which its person-less event then belongs to; its
    # $set counted for nothing, and the person dates from the event that made it
    ids, (person_id, _identified, properties, created, _seen) = person_of(built, "pl1")
    assert (ids, events["pl1"], properties) == (("pl1",), person_id, {})
    assert created == datetime(2026, 1, 18, 14, 0)
    # pl2 never got a person: its events have none
    assert events["pl2"] is None
    assert all("pl2" not in ids for ids in persons(built))
    # pl3 was identified by u_pl3: its person-less event belongs to that person now
    ids, (person_id, identified, properties, *_rest) = person_of(built, "pl3")
    assert (ids, events["pl3"], identified, properties) == (("pl3", "u_pl3"), person_id, True, {})
    # a person-less identify links nothing and makes no person
    assert all(not {"u_pl4", "a_pl4"} & set(ids) for ids in persons(built))


def test_ingestion_warnings_count_each_warning_once_per_hour_and_kind(built: Layout) -> None:
    rows = query_dicts(
        built,
        "select hour, kind, warnings, example_details ->> 'value' as example"
        " from analytics.ingestion_warnings where org_id = ? order by hour, kind",
        [ORG],
    )
    assert rows == [
        {"hour": datetime(2026, 1, 18, 10), "kind": "event_timestamp_in_future", "warnings": 2,
         "example": "w1"},
        {"hour": datetime(2026, 1, 19, 11), "kind": "ignored_invalid_timestamp", "warnings": 1,
         "example": "w3"},
    ]  # fmt: skip


def test_seed_analyst_query_runs_as_written(built: Layout) -> None:
    rows = query(
        built,
        "SELECT event, properties->>'currency' AS currency, COUNT(*) AS total"
        " FROM warehouse.analytics.events GROUP BY ALL ORDER BY total DESC",
    )
    totals = {(event, currency): total for event, currency, total in rows}
    assert totals[("checkout_started", "USD")] == 1
    assert totals[("checkout_completed", "USD")] == 1
    # the retried copy counts once; every identity operation is an event, under PostHog's name
    assert sum(totals.values()) == len(scenario.events()) - 1 + len(scenario.identities())
    kinds = [record["kind"] for record in scenario.identities()]
    assert (totals[("$identify", None)], totals[("$create_alias", None)]) == (
        kinds.count("identify"),
        kinds.count("alias"),
    )


def test_feature_flag_first_exposures(built: Layout) -> None:
    rows = query(
        built,
        "select distinct_id, variant, first_exposed_at from analytics.fct_feature_flag_exposures"
        " where feature_flag = 'new-checkout' order by distinct_id, first_exposed_at",
    )
    assert rows == [
        ("f1", "test", datetime(2026, 1, 18, 9, 0)),
        ("f2", "control", datetime(2026, 1, 18, 9, 0)),
        ("f3", "control", datetime(2026, 1, 18, 9, 0)),
        ("f3", "test", datetime(2026, 1, 18, 9, 1)),
        ("f4", "test", datetime(2026, 1, 18, 9, 0)),
    ]


def test_session_statuses(built: Layout) -> None:
    rows = dict(
        query(
            built,
            "select session_id, status from analytics.fct_sessions where session_id like 's-%'",
        )
    )
    assert rows == {
        "s-a": "exited",
        "s-b": "errored",
        "s-c": "crashed",
        "s-d": "abnormal",  # no end, and the clock is past its 24 h deadline
        "s-e": "abnormal",  # reported so
        "s-f": "exited",
        "s-g": "active",  # no end yet, deadline still ahead
        "s-h": "errored",  # its end arrived after the deadline, and counts
        "s-i": "exited",
        "s-j": "exited",
        "s-k": "exited",
        "s-late": "exited",
        "s-other-org": "exited",  # org_b's
    }
    (person,) = query(
        built,
        "select distinct person_id from analytics.fct_sessions where session_id in ('s-j', 's-k')",
    )
    assert person == (person_uuid(ORG, "u1"),)


def release_health(layout: Layout, start: str, end: str) -> dict[tuple[str, str], dict]:
    rows = query_dicts(
        layout,
        "select * from analytics.release_health_between(?::timestamp, ?::timestamp)"
        " where org_id = ?",
        [start, end, ORG],
    )
    return {(row["release"], row["environment"]): row for row in rows}


def test_seed_sampling_example_in_release_health(built: Layout) -> None:
    health = release_health(built, "2026-01-18 10:00", "2026-01-18 11:00")[("2.0.0", "production")]
    assert health["stored_sessions"] == 1000
    assert health["total_sessions"] == 9550
    assert health["crashed_sessions"] == 50
    assert health["crash_free_session_rate"] == 99.48
    assert (health["total_users"], health["crashed_users"], health["crash_free_user_rate"]) == (
        9550,
        50,
        99.48,
    )


def test_release_health_of_day_one(built: Layout) -> None:
    health = release_health(built, "2026-01-18 00:00", "2026-01-19 00:00")
    stable = health[("1.9.0", "production")]
    # s-a, s-b, s-c, s-d, s-e, s-h, s-j, s-k; users pu1-5, pu7 and a1/u1 as one person
    assert (
        stable["total_sessions"],
        stable["crashed_sessions"],
        stable["crash_free_session_rate"],
    ) == (8, 1, 87.5)
    assert (stable["total_users"], stable["crashed_users"], stable["crash_free_user_rate"]) == (
        7,
        1,
        85.71,
    )
    assert stable["error_rate"] == 25.0  # s-b and s-h (its end arrived late)
    assert (stable["adoption_rate"], stable["adoption_stage"]) == (0.08, "new")  # 8 of 9,567
    beta = health[("3.0.0-beta", "production")]
    # rates differ within the release: 1 crashed + 3 at 1/0.5 + 2 at 1/1.0
    assert (beta["total_sessions"], beta["total_users"], beta["crashed_sessions"]) == (9, 9, 1)
    assert health[("2.0.0", "production")]["adoption_stage"] == "adopted"
    assert health[("1.9.0", "staging")]["adoption_rate"] == 100.0


def test_release_health_of_day_two_replaced_and_trend(built: Layout) -> None:
    health = release_health(built, "2026-01-19 00:00", "2026-01-20 00:00")
    old = health[("2.0.0", "production")]
    assert (old["total_sessions"], old["adoption_rate"], old["adoption_stage"]) == (
        1,
        3.03,
        "replaced",
    )
    stable = health[("1.9.0", "production")]
    assert (stable["total_sessions"], stable["adoption_rate"], stable["adoption_stage"]) == (
        32,
        96.97,
        "adopted",
    )
    assert stable["crash_free_rate_trend"] == 12.5  # 100 % today against 87.5 % yesterday
    assert stable["first_seen"] == datetime(2026, 1, 18, 10, 5)
    assert stable["last_seen"] == datetime(2026, 1, 19, 11, 30)


def test_distinct_users_over_two_days_are_not_a_sum_of_days(built: Layout) -> None:
    day_1 = release_health(built, "2026-01-18", "2026-01-19")[("1.9.0", "production")][
        "total_users"
    ]
    day_2 = release_health(built, "2026-01-19", "2026-01-20")[("1.9.0", "production")][
        "total_users"
    ]
    both = release_health(built, "2026-01-18", "2026-01-20")[("1.9.0", "production")]["total_users"]
    assert (day_1, day_2, both) == (7, 32, 38)  # pu1 used the release on both days
    trend = dict(
        query(
            built,
            "select bucket_start, total_users from analytics.release_health_trend"
            " where org_id = ? and grain in ('day', 'hour') and bucket_start in (?, ?, ?)",
            [ORG, datetime(2026, 1, 18), datetime(2026, 1, 19), datetime(2026, 1, 18, 10)],
        )
    )
    assert trend == {
        # 2.0.0's 1,000 seed users (9,550 adjusted), 1.9.0's 7 persons (pu1 also on staging: one
        # person), the 6 beta users (9 adjusted)
        datetime(2026, 1, 18): 9550 + 7 + 9,
        datetime(2026, 1, 19): 32 + 1,
        datetime(2026, 1, 18, 10): 9550 + 7,
    }


def test_release_health_view_covers_each_release_lifetime(built: Layout) -> None:
    rows = query(
        built,
        "select release, environment, total_sessions, window_start, window_end"
        " from analytics.release_health where org_id = ? order by all",
        [ORG],
    )
    assert rows == [
        ("1.9.0", "production", 40, datetime(2026, 1, 18, 10), datetime(2026, 1, 19, 12)),
        ("1.9.0", "staging", 1, datetime(2026, 1, 18, 10), datetime(2026, 1, 19, 12)),
        ("2.0.0", "production", 9551, datetime(2026, 1, 18, 10), datetime(2026, 1, 19, 12)),
        ("3.0.0-beta", "production", 9, datetime(2026, 1, 18, 10), datetime(2026, 1, 19, 12)),
    ]


def test_whole_history_stage_follows_the_last_24_hours(built: Layout) -> None:
    rows = query(
        built,
        "select release, environment, adoption_rate, current_adoption_rate, peak_adoption_rate,"
        " adoption_stage, error_rate, avg_duration_ms"
        " from analytics.release_health where org_id = ? order by all",
        [ORG],
    )
    # Production's latest session is in hour 2026-01-19 11:00: its current adoption is over
    # [01-18 12:00, 01-19 12:00), 43 sessions: 1.9.0's s-k and 32 of day 2, 2.0.0's s-late, the
    # beta's 9. 2.0.0 had 9,550 of the 9,557 sessions before (99.93 %), and 99.49 % of the whole
    # history, but 1 of 43 now: replaced. 1.9.0: errored s-b and s-h, 2 of 40 = 5 %; 127 minutes
    # over its 38 sessions with a duration = 200,526 ms.
    assert rows == [
        ("1.9.0", "production", 0.42, 76.74, 0.07, "adopted", 5.0, 200526),
        ("1.9.0", "staging", 100.0, 100.0, None, "adopted", 0.0, 600000),
        ("2.0.0", "production", 99.49, 2.33, 99.93, "replaced", 0.0, 300031),
        ("3.0.0-beta", "production", 0.09, 20.93, None, "growing", 0.0, 60000),
    ]


def show(layout: Layout, target, sql: str) -> list[tuple]:
    result = dbt.run_dbt(
        ["show", "--inline", sql, "--limit", "-1"], layout=layout, target_path=target
    )
    table = result.result.results[0].agate_table
    return [tuple(row) for row in table.rows]


def test_funnel_macro_counts_persons_per_step(built: Layout, dbt_target) -> None:
    steps = "['viewed_pricing', 'started_trial', 'subscribed']"
    rows = show(
        built, dbt_target, f"{{{{ funnel({steps}, conversion_window='1 hour', org_id='{ORG}') }}}}"
    )
    # f1 converts; f2 stops at the trial; f3 subscribes too late; f4 trials before viewing pricing
    assert [(step, event, persons, float(rate)) for step, event, persons, rate, _ in rows] == [
        (1, "viewed_pricing", 4, 100.0),
        (2, "started_trial", 3, 75.0),
        (3, "subscribed", 1, 25.0),
    ]
    rows = show(
        built,
        dbt_target,
        f"{{{{ funnel({steps}, conversion_window='3 hours', breakdown_flag='new-checkout') }}}}",
    )
    # persons split by their first exposure: f2, f3 saw control first; f1, f4 test
    assert [(variant, step, persons) for variant, step, _event, persons, *_ in rows] == [
        ("control", 1, 2),
        ("control", 2, 2),
        ("control", 3, 1),
        ("test", 1, 2),
        ("test", 2, 1),
        ("test", 3, 1),
    ]
