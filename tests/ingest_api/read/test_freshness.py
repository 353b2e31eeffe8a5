"""A publish reaches readers at once: the API answers from a new publish within a second of it
(measured over several publishes), a request right after the first publish answers from it rather
than 503, and ``release.health_changed`` is sent as soon as the API switches. Each publish is a
real one (:func:`warehouse.published.publish` on a pipeline connection) on a copy of the read
suite's warehouse, read through uvicorn."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest

from ingest_api.read import health_watch
from ingest_api.read.routes import stream as stream_router
from tests.ingest_api.read.utils.sse import SseReader
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.published import publish

PUBLISHES = 8
# The target is a switch within 1 s (p95): bench/bench_publish.py measures it. Here, on 2
# cores shared with the rest of the suite, the typical switch must be within it and none slower
# than a poll a second plus an attach used to be.
FRESH_WITHIN_SECONDS = 1.0
SLOWEST_SECONDS = 2.5


def _snapshot_of(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return int(response.headers["Loom-Snapshot-Id"])


def test_the_api_answers_from_a_new_publish_within_a_second(
    built: Built, copy_of_built: Layout, api_on: Callable[[Layout], RunningApi]
) -> None:
    api = api_on(copy_of_built)
    path = f"/api/projects/{built.tenants.project_a}/releases"
    lags = []
    with (
        httpx.Client(base_url=api.base_url, headers=Tenants.headers(built.tenants.key_a)) as client,
        connect_pipeline(copy_of_built) as pipeline,
    ):
        _snapshot_of(client.get(path))  # opened
        for minute in range(PUBLISHES):
            # Micro-batches publish a minute apart, not back to back: the API has prepared the
            # connection its next snapshot attaches to.
            time.sleep(1.0)
            data_as_of = datetime(2026, 11, 20, 13, minute, 30)
            snapshot = publish(pipeline, data_as_of)
            published = time.monotonic()
            while _snapshot_of(response := client.get(path)) != snapshot:
                assert time.monotonic() - published < 30, "the API never switched"
                time.sleep(0.02)
            lags.append(time.monotonic() - published)
            # Every answer says which data it reflects.
            assert response.headers["Loom-Data-As-Of"] == f"{data_as_of:%Y-%m-%dT%H:%M:%S}Z"
            assert response.json()["snapshot"]["data_as_of"] == f"{data_as_of:%Y-%m-%dT%H:%M:%S}Z"

    measured = ", ".join(f"{lag * 1000:.0f}" for lag in lags)
    print(f"publish to answer, ms: {measured}")
    assert statistics.median(lags) <= FRESH_WITHIN_SECONDS, measured
    assert max(lags) <= SLOWEST_SECONDS, measured


def test_a_request_right_after_the_first_publish_answers_from_it(
    built: Built, copy_of_built: Layout, api_on: Callable[[Layout], RunningApi]
) -> None:
    with connect_pipeline(copy_of_built) as pipeline:
        pipeline.execute("DELETE FROM warehouse.ops.published_snapshots")  # as before a first run
    api = api_on(copy_of_built)
    path = f"/api/projects/{built.tenants.project_a}/releases"
    headers = Tenants.headers(built.tenants.key_a)
    with httpx.Client(base_url=api.base_url, headers=headers) as client:
        for _ in range(5):  # the API has just looked, and found nothing
            before = client.get(path)
            assert before.status_code == 503
            assert before.json()["detail"].startswith("nothing published yet")
        with connect_pipeline(copy_of_built) as pipeline:
            snapshot = publish(pipeline)
        # `loom run` has exited: the very next request answers from its publish. (It used to
        # answer "nothing published yet: no pipeline run has finished" for up to a second.)
        assert _snapshot_of(client.get(path)) == snapshot


def test_a_fresh_api_never_answers_503_for_an_existing_publish(
    built: Built, copy_of_built: Layout, api_on: Callable[[Layout], RunningApi]
) -> None:
    api = api_on(copy_of_built)
    path = f"/api/projects/{built.tenants.project_a}/releases"
    headers = Tenants.headers(built.tenants.key_a)
    # Several requests at once before anything is open: each waits for the one opening it.
    with ThreadPoolExecutor(3) as pool:
        responses = list(
            pool.map(lambda _: httpx.get(api.base_url + path, headers=headers), range(3))
        )
    assert [response.status_code for response in responses] == [200, 200, 200]


def test_health_changes_are_sent_when_the_api_switches_not_on_a_poll(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_router, "PING_SECONDS", 0.3)  # closing the reader waits for one
    # The watcher once polled for a new snapshot every second; now its idle check only asks
    # whether anyone still listens. Longer than the test: only the switch can wake it.
    monkeypatch.setattr(health_watch, "IDLE_CHECK_SECONDS", 120)
    api = api_on(copy_of_built)
    tenants = built.tenants
    stream = SseReader(
        f"{api.base_url}/api/projects/{tenants.project_a}/sessions/stream",
        Tenants.headers(tenants.key_a),
    ).start()
    # Once subscribed, the watcher has read the health it compares the next snapshot with.
    assert stream.next(skip_comments=False).comment == "subscribed"
    with connect_pipeline(copy_of_built) as pipeline:
        pipeline.execute(
            "UPDATE warehouse.analytics.release_health SET total_sessions = total_sessions + 1"
            " WHERE org_id = ? AND release = '1.2.2' AND environment = 'production'",
            [tenants.org_a],
        )
        snapshot = publish(pipeline, datetime(2026, 11, 20, 14))
    published = time.monotonic()

    message = stream.next(timeout=60)
    arrived = time.monotonic() - published
    stream.close()
    assert message.event == "release.health_changed"
    assert (message.data["release"], message.data["environment"]) == ("1.2.2", "production")
    assert message.data["total_sessions"] == 651
    assert message.data["snapshot"]["id"] == snapshot
    assert message.data["snapshot"]["data_as_of"] == "2026-11-20T14:00:00Z"
    print(f"publish to release.health_changed: {arrived * 1000:.0f} ms")
    assert arrived < 30
