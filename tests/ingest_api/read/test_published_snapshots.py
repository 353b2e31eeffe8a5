"""Published snapshots on a real lake: readers see exactly the published state, switch to a new
publish without dropping a request, keep old cursors whole, and answer 503 (never 500) before the
first publish or when the catalog cannot be reached."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb
import httpx
import pytest

from tests.ingest_api.read.utils.warehouse import RunningApi, Tenants
from warehouse import published
from warehouse.duck import connect_pipeline, connect_reader
from warehouse.layout import Layout
from warehouse.published import (
    NoSnapshotError,
    Publish,
    PublishedMarts,
    Publishes,
    TimeNotKept,
    kept_publishes_of,
    publish,
)
from warehouse.registry import Registry

COUNT = "SELECT count(*) FROM warehouse.analytics.fct_events"


@pytest.fixture
def lake(layout: Layout) -> Layout:
    # A stand-in analytics schema, as dbt would leave it.
    with connect_pipeline(layout) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute(
            """
            CREATE TABLE analytics.fct_events AS
            SELECT 'e' || i AS uuid, TIMESTAMP '2026-01-01' + INTERVAL (i) HOUR AS timestamp
            FROM range(72) AS r(i)
            """
        )
    return layout


def test_a_reader_sees_the_published_snapshot_not_later_writes(lake: Layout) -> None:
    marts = PublishedMarts(lake)  # not started: only requests look
    with pytest.raises(NoSnapshotError):
        marts.snapshot_id()
    with connect_pipeline(lake) as con:
        first = publish(con)
        # A run in progress: written, not published.
        con.execute("DELETE FROM analytics.fct_events WHERE timestamp >= '2026-01-03'")

    # The next request answers from the publish: it looks again because the catalog changed (it
    # used to answer "nothing published" until a poll a second later).
    assert marts.snapshot_id() == first
    with marts.cursor() as cursor:
        assert cursor.execute(COUNT).fetchall() == [(72,)]
    assert marts.refresh() is False  # nothing newer was published
    marts.close()


def test_a_new_publish_is_switched_to_and_old_cursors_finish_on_theirs(lake: Layout) -> None:
    marts = PublishedMarts(lake)
    with connect_pipeline(lake) as con:
        first = publish(con)
    with marts.cursor() as old:
        assert old.execute(COUNT).fetchall() == [(72,)]
        with connect_pipeline(lake) as con:
            con.execute("DELETE FROM analytics.fct_events WHERE timestamp >= '2026-01-03'")
            second = publish(con)
        assert marts.refresh() is True
        with marts.cursor() as new:
            assert new.execute(COUNT).fetchall() == [(48,)]
        # The request that started on the old snapshot finishes on it, whole.
        assert old.execute(COUNT).fetchall() == [(72,)]
    assert marts.snapshot_id() == second > first
    marts.close()


def test_a_read_while_the_first_publish_is_being_opened_waits_for_it(lake: Layout) -> None:
    # Opening a big lake's snapshot takes up to a second; the follower thread's first look and a
    # request's used to race, and the request answered "nothing published yet" meanwhile.
    opening = threading.Event()

    def slow_connect(layout: Layout, snapshot: int | None) -> duckdb.DuckDBPyConnection:
        if snapshot is not None:
            opening.set()
            time.sleep(0.5)
        return connect_reader(layout, snapshot)

    with connect_pipeline(lake) as con:
        published = publish(con)
    marts = PublishedMarts(lake, connect=slow_connect)
    follower = threading.Thread(target=marts.refresh)
    follower.start()
    assert opening.wait(timeout=30)
    with marts.cursor() as cursor:
        assert cursor.execute(COUNT).fetchall() == [(72,)]
    assert marts.snapshot_id() == published
    follower.join()
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
        assert "nothing published yet" in response.json()["detail"]


def test_an_unreachable_catalog_is_a_503_naming_it(
    lake: Layout, api_on: Callable[[Layout], RunningApi]
) -> None:
    with connect_pipeline(lake) as con:
        publish(con)
    with Registry.open(lake) as registry:
        key = registry.create_key("acme", "web", "rw")
    catalog = lake.data_dir / "lake" / "catalog.sqlite"
    catalog.write_bytes(b"not a database any more")  # as if its disk had failed
    api = api_on(lake)

    response = httpx.get(
        f"{api.base_url}/api/analytics/persons", headers=Tenants.headers(key.key), timeout=30
    )

    assert response.status_code == 503
    assert "lake catalog" in response.json()["detail"]


def test_a_time_is_answered_by_the_newest_publish_made_at_or_before_it() -> None:
    at = datetime(2026, 11, 20, 10)
    minute = timedelta(minutes=1)
    publishes = Publishes(tuple(Publish(n, at + n * minute, None) for n in range(3)))

    assert publishes.at(at).snapshot_id == 0
    assert publishes.at(at + minute / 2).snapshot_id == 0
    assert publishes.at(at + minute).snapshot_id == 1
    assert publishes.at(at + 365 * 24 * 60 * minute).snapshot_id == 2  # the future: the newest
    with pytest.raises(TimeNotKept, match="the oldest publish kept is from 2026-11-20T10:00:00Z"):
        publishes.at(at - minute)
    with pytest.raises(NoSnapshotError):
        Publishes().at(at)


def test_a_read_on_an_older_publish_finishes_there_when_others_push_it_out(
    lake: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(published, "OLDER_SNAPSHOTS", 1)  # one older publish attached at a time
    counts = {}
    with connect_pipeline(lake) as con:
        for hours in (72, 48, 24, 0):
            con.execute(
                "DELETE FROM analytics.fct_events WHERE timestamp >= TIMESTAMP '2026-01-01'"
                f" + INTERVAL ({hours}) HOUR"
            )
            counts[publish(con)] = hours
    kept = {p.snapshot_id: p for p in kept_publishes_of(lake).kept}
    oldest, second, third, _ = sorted(kept)
    marts = PublishedMarts(lake)

    with marts.reading(kept[oldest].published_at) as (answered, old):
        assert answered.snapshot_id == oldest
        for snapshot in (second, third):  # each pushes the one before out
            with marts.cursor(kept[snapshot].published_at) as cursor:
                assert cursor.execute(COUNT).fetchall() == [(counts[snapshot],)]
        # The read that started on the oldest finishes there, whole.
        assert old.execute(COUNT).fetchall() == [(72,)]
    # And it can be asked for again.
    with marts.cursor(kept[oldest].published_at) as cursor:
        assert cursor.execute(COUNT).fetchall() == [(72,)]
    marts.close()
