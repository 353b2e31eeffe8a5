"""The serving layer on real DuckDB files: publish copies only what changed, swaps atomically,
and a reader follows the pointer without ever seeing a half-published snapshot."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

import duckdb
import httpx
import pytest

from tests.read_api.conftest import RunningApi, Tenants
from warehouse import serving
from warehouse.duck import connect_warehouse
from warehouse.layout import Layout
from warehouse.registry import Registry
from warehouse.serving import (
    NoSnapshotError,
    Served,
    ServedMarts,
    current_snapshot,
    publish_snapshot,
)


@pytest.fixture
def warehouse(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> Layout:
    # A stand-in analytics schema: one small mart and the events, as dbt would leave them.
    monkeypatch.setattr(serving, "SERVED_MARTS", {"dim_persons": Served("org_id, person_id")})
    monkeypatch.setattr(serving, "SERVED_MACROS", ())
    with connect_warehouse(layout) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute(
            """
            CREATE TABLE analytics.dim_persons AS
            SELECT * FROM (VALUES ('org_a', 'p1', ['u1', 'anon1']), ('org_a', 'p2', ['u2']))
                AS t(org_id, person_id, distinct_ids)
            """
        )
        con.execute(
            """
            CREATE TABLE analytics.fct_events AS
            SELECT 'e' || i AS uuid, 'org_a' AS org_id, 'p1' AS person_id,
                   TIMESTAMP '2026-01-01' + INTERVAL (i) HOUR AS timestamp
            FROM range(72) AS r(i)
            """
        )
    return layout


def _served(path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_first_publish_copies_every_served_table_and_points_current_at_it(
    warehouse: Layout,
) -> None:
    result = publish_snapshot(warehouse)

    assert result.version == 1
    assert current_snapshot(warehouse) == result.path
    assert result.path == warehouse.serving_dir / "v00000001" / "warehouse.duckdb"
    assert (result.event_days_rewritten, result.event_days_total) == (3, 3)
    assert _served(result.path, "SELECT count(*) FROM analytics.fct_events") == [(72,)]
    lookup = "SELECT distinct_id, person_id, distinct_ids FROM serving.persons_by_distinct_id"
    assert _served(result.path, lookup) == [
        ("anon1", "p1", ["u1", "anon1"]),
        ("u1", "p1", ["u1", "anon1"]),
        ("u2", "p2", ["u2"]),
    ]
    assert not os.path.exists(f"{result.path}.wal")
    visible = sorted(p.name for p in warehouse.serving_dir.iterdir() if not p.name.startswith("."))
    assert visible == ["current", "v00000001"]


def test_republish_rewrites_only_the_event_days_that_changed(warehouse: Layout) -> None:
    publish_snapshot(warehouse)
    with connect_warehouse(warehouse) as con:
        # A late event for day 2 and a re-stitched person on day 3; day 1 untouched.
        con.execute(
            "INSERT INTO analytics.fct_events VALUES ('late', 'org_a', 'p1', '2026-01-02 05:30')"
        )
        con.execute("UPDATE analytics.fct_events SET person_id = 'p2' WHERE uuid = 'e60'")

    second = publish_snapshot(warehouse)
    unchanged = publish_snapshot(warehouse)

    assert (second.version, second.event_days_rewritten, second.event_days_total) == (2, 2, 3)
    assert (unchanged.version, unchanged.event_days_rewritten) == (3, 0)
    rows = "SELECT uuid, person_id, timestamp FROM analytics.fct_events ORDER BY uuid"
    with connect_warehouse(warehouse, read_only=True) as con:
        expected = con.execute(rows).fetchall()
    assert _served(unchanged.path, rows) == expected
    assert ("late", "p1", datetime(2026, 1, 2, 5, 30)) in expected


def test_old_versions_are_collected_and_deleted_days_disappear(warehouse: Layout) -> None:
    for _ in range(5):
        last = publish_snapshot(warehouse)
    with connect_warehouse(warehouse) as con:
        con.execute("DELETE FROM analytics.fct_events WHERE timestamp < '2026-01-02'")
    last = publish_snapshot(warehouse)

    versions = sorted(p.name for p in warehouse.serving_dir.glob("v*"))
    assert versions == ["v00000004", "v00000005", "v00000006"]
    assert _served(last.path, "SELECT count(*), min(timestamp) FROM analytics.fct_events") == [
        (48, datetime(2026, 1, 2))
    ]


def test_publish_refuses_when_a_mart_is_missing(layout: Layout) -> None:
    with connect_warehouse(layout) as con:
        con.execute("CREATE SCHEMA analytics")
    with pytest.raises(RuntimeError, match="not built yet"):
        publish_snapshot(layout)
    assert current_snapshot(layout) is None


def test_reader_follows_the_pointer_and_keeps_old_cursors_valid(warehouse: Layout) -> None:
    marts = ServedMarts(warehouse)
    with pytest.raises(NoSnapshotError):
        marts.current_path()
    first = publish_snapshot(warehouse)
    with marts.cursor() as old:
        assert old.execute("SELECT count(*) FROM analytics.fct_events").fetchone() == (72,)
        with connect_warehouse(warehouse) as con:
            con.execute("DELETE FROM analytics.fct_events WHERE timestamp >= '2026-01-03'")
        second = publish_snapshot(warehouse)
        with marts.cursor() as new:
            assert new.execute("SELECT count(*) FROM analytics.fct_events").fetchone() == (48,)
        # The request that started on the old snapshot finishes on it, whole.
        assert old.execute("SELECT count(*) FROM analytics.fct_events").fetchone() == (72,)
    assert marts.current_path() == second.path != first.path
    marts.close()


def test_reads_before_the_first_publish_are_503_not_500(
    layout: Layout, api_on: Callable[[Layout], RunningApi]
) -> None:
    with Registry.open(layout) as registry:
        key = registry.create_key("acme", "web", "rw")
    api = api_on(layout)
    headers = Tenants.headers(key.key)
    project = key.record.project_id
    for path in ("/api/analytics/persons", f"/api/projects/{project}/releases"):
        response = httpx.get(api.base_url + path, headers=headers)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "60"
        assert "no snapshot published yet" in response.json()["detail"]
