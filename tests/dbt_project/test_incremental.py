"""The incremental path: windowed runs, reruns, processing order, re-stitching and retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.generate import write_records
from tests.dbt_project.utils import scenario
from tests.dbt_project.utils.warehouse import marts, query, run_window
from warehouse import dbt
from warehouse.dbt import person_uuid
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.raw_load import load_landed

pytestmark = pytest.mark.slow

ORG = scenario.ORG
FIRST, SECOND, THIRD, FOURTH = scenario.WINDOWS
# s-h (started 2026-01-18 10:40) in its start hour's aggregate and in day 1's health
S_H = "select status from analytics.fct_sessions where session_id = 's-h'"
S_H_HOUR = (
    "select abnormal_sessions, errored_sessions from analytics.agg_release_health_hourly"
    " where org_id = 'org_a' and release = '1.9.0' and environment = 'production'"
    " and hour = timestamp '2026-01-18 10:00'"
)
DAY_1_ERROR_RATE = (
    "select error_rate from analytics.release_health_between("
    "timestamp '2026-01-18', timestamp '2026-01-19')"
    " where org_id = 'org_a' and release = '1.9.0' and environment = 'production'"
)


@pytest.fixture(scope="module")
def in_order(scenario_layout_factory, dbt_target: Path) -> Iterator[dict]:
    """The scenario run window by window in received order, with what each step left behind."""
    layout = scenario_layout_factory("in-order")
    seen: dict = {"layout": layout}
    run_window(layout, FIRST, dbt_target)
    seen["schema_version_after_first"] = schema_version(layout)
    seen["a1_before_identify"] = a1_events_person(layout)
    run_window(layout, SECOND, dbt_target)
    seen["a1_after_identify"] = a1_events_person(layout)
    seen["restitched_in_second"] = query(
        layout, "select distinct_id from intermediate.int_identity_replay order by 1"
    )
    run_window(layout, THIRD, dbt_target)
    seen["s_h_before_its_end"] = s_h_numbers(layout)
    run_window(layout, FOURTH, dbt_target)
    seen["s_h_after_its_end"] = s_h_numbers(layout)
    seen["marts"] = marts(layout)
    seen["schema_version_after_last"] = schema_version(layout)
    yield seen


def schema_version(layout: Layout) -> int:
    """The lake's schema version: every DDL commit (a view, macro or table created, replaced,
    renamed or dropped) bumps it, and makes later queries and every reader reload the catalog."""
    [(version,)] = query(layout, "select max(schema_version) from ducklake_snapshots('warehouse')")
    return version


def definitions(layout: Layout) -> list[tuple]:
    return query(
        layout,
        "select view_name, sql from duckdb_views() where database_name = 'warehouse'"
        " union all select function_name, macro_definition from duckdb_functions()"
        " where database_name = 'warehouse' and function_type = 'table_macro' order by all",
    )


def s_h_numbers(layout: Layout) -> list[tuple]:
    return [*query(layout, S_H), *query(layout, S_H_HOUR), *query(layout, DAY_1_ERROR_RATE)]


def a1_events_person(layout: Layout) -> set[str]:
    return {
        person
        for (person,) in query(
            layout,
            "select person_id from analytics.fct_events where org_id = ? and distinct_id = 'a1'",
            [ORG],
        )
    }


def test_late_identify_reattributes_earlier_events(in_order: dict) -> None:
    assert in_order["a1_before_identify"] == {person_uuid(ORG, "a1")}
    assert in_order["a1_after_identify"] == {person_uuid(ORG, "u1")}


def test_a_window_restitches_only_the_components_its_links_touch(in_order: dict) -> None:
    # the second window's links: u1-a1, u1b-a1b, u2-a2, v9-s9; nothing else is rewritten
    restitched = [distinct_id for (distinct_id,) in in_order["restitched_in_second"]]
    assert restitched == ["a1", "a1b", "a2", "s9", "u1", "u1b", "u2", "v9"]


def test_a_late_end_replaces_the_timeout_and_recomputes_its_hour(in_order: dict) -> None:
    # The third window's clock (2026-01-19 11:00) passed s-h's deadline (10:40) with no end:
    # abnormal, with s-d and s-e, in its hour; day 1's only errored session is s-b, 1 of 8.
    assert in_order["s_h_before_its_end"] == [("abnormal",), (3.0, 1.0), (12.5,)]
    # Its errored end, received at 11:10 in the fourth window, counts: the hour and day 1 are
    # recomputed.
    assert in_order["s_h_after_its_end"] == [("errored",), (2.0, 2.0), (25.0,)]


def test_windows_in_order_equal_one_unwindowed_build(in_order: dict, built: Layout) -> None:
    assert in_order["marts"] == marts(built)


def test_windows_in_reverse_order_give_the_same_marts(
    scenario_layout_factory, dbt_target: Path, in_order: dict
) -> None:
    layout = scenario_layout_factory("reversed")
    for window in reversed(scenario.WINDOWS):
        run_window(layout, window, dbt_target)
    assert marts(layout) == in_order["marts"]


def test_sub_hour_windows_give_the_same_marts(
    scenario_layout_factory, dbt_target: Path, built: Layout
) -> None:
    """Micro-batches cut hours anywhere: here at 10:30, between two copies of one warning and
    between person-less events and the identify of their id, and at 14:30."""
    layout = scenario_layout_factory("sub-hour")
    day = scenario.DAY_1
    cuts = [day, day + timedelta(hours=10, minutes=30), day + timedelta(hours=14, minutes=30)]
    for window in zip(cuts, [*cuts[1:], scenario.WINDOWS[-1][1]], strict=True):
        run_window(layout, window, dbt_target)
    assert marts(layout) == marts(built)


def test_rerunning_a_window_changes_nothing(in_order: dict, dbt_target: Path) -> None:
    layout = in_order["layout"]
    run_window(layout, SECOND, dbt_target)
    assert marts(layout) == in_order["marts"]


def test_later_windows_change_rows_not_definitions(in_order: dict) -> None:
    # Unchanged views and table macros are left alone, tables rebuilt whole are refilled in place.
    assert in_order["schema_version_after_last"] == in_order["schema_version_after_first"]


def test_a_changed_definition_is_replaced(in_order: dict, dbt_target: Path) -> None:
    layout = in_order["layout"]
    before = definitions(layout)
    with connect_pipeline(layout) as con:
        con.execute("create or replace view warehouse.staging.stg_events as select 1 as stale")
        con.execute("create or replace macro warehouse.analytics.funnel(a) as table select 1")
    assert definitions(layout) != before

    run_window(layout, SECOND, dbt_target)

    assert definitions(layout) == before
    assert marts(layout) == in_order["marts"]


def test_prune_keeps_aggregates_and_old_answers(in_order: dict, dbt_target: Path) -> None:
    layout = in_order["layout"]
    day_1 = (
        "select * from analytics.release_health_between("
        "timestamp '2026-01-18', timestamp '2026-01-19') order by all"
    )
    aggregates = ("agg_release_health_hourly", "agg_release_users_daily", "release_health_trend")
    before = {name: rows for name, rows in marts(layout).items() if name in aggregates}
    answer_before = query(layout, day_1)

    dbt.run_dbt(
        ["run-operation", "prune_sessions", "--args", '{days: 1, as_of: "2026-01-20 00:00:00"}'],
        layout=layout,
        target_path=dbt_target,
    )

    assert query(layout, "select min(started_at)::date, count(*) from analytics.fct_sessions") == [
        (datetime(2026, 1, 19).date(), 33)
    ]
    assert query(layout, "select cutoff, sessions_deleted from ops.session_prunes") == [
        # org_a's day-1 sessions (the seed's 1,000, the cast's 9 and 6 more) and org_b's one
        (datetime(2026, 1, 19), 1000 + 9 + 6 + 1)
    ]
    assert {name: rows for name, rows in marts(layout).items() if name in aggregates} == before
    assert query(layout, day_1) == answer_before

    # Rerunning the received hours that carried day 1's sessions does not bring them back.
    run_window(layout, FIRST, dbt_target)
    assert query(layout, "select min(started_at)::date, count(*) from analytics.fct_sessions") == [
        (datetime(2026, 1, 19).date(), 33)
    ]
    assert {name: rows for name, rows in marts(layout).items() if name in aggregates} == before

    # pu3 turns out to be pu2, learned after day 1 was pruned: day 1 keeps its session counts and
    # counts the two users as one; the window runs as `dbt build`, so the data tests check it too
    write_records(layout, "identities", scenario.late_identify_after_prune(), tag="late")
    load_landed(layout)
    dbt.run_dbt(
        ["build", "--exclude-resource-type", "unit_test"],
        layout=layout,
        vars=dbt.window_vars(*scenario.AFTER_PRUNE_WINDOW),
        target_path=dbt_target,
    )

    stable = query(
        layout,
        "select total_sessions, crashed_sessions, total_users, crashed_users"
        " from analytics.release_health_between(timestamp '2026-01-18', timestamp '2026-01-19')"
        f" where org_id = '{ORG}' and release = '1.9.0' and environment = 'production'",
    )
    assert stable == [(8, 1, 6, 1)]
    hour_10 = query(
        layout,
        "select stored_sessions, stored_users from analytics.agg_release_health_hourly"
        f" where org_id = '{ORG}' and release = '1.9.0' and environment = 'production'"
        " and hour = timestamp '2026-01-18 10:00'",
    )
    assert hour_10 == [(7, 6)]
