"""The live stream end to end: a real HTTP client reads Server-Sent Events from uvicorn while
session records are ingested through the same API; a key revoked by `loom keys revoke` in another
process loses its open stream; plus the hub's bounded buffer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from ingest_api.read.health_watch import health_changes
from ingest_api.read.releases import ReleaseKey
from ingest_api.read.routes import stream as stream_router
from ingest_api.stream_hub import StreamEvent, StreamHub, hub
from tests.ingest_api.read.utils.sse import SseReader
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from warehouse.layout import Layout
from warehouse.published import Publish
from warehouse.registry import Registry

START = {
    "session_id": "live-1",
    "distinct_id": "user_7",
    "release": "1.2.4",
    "environment": "production",
    "platform": "rust",
    "started_at": "2026-11-23T10:00:00Z",
    "sample_rate": 0.5,
}
CRASHED_END = {
    "session_id": "live-1",
    "status": "crashed",
    "error_count": 1,
    "crash_count": 2,
    "ended_at": "2026-11-23T10:05:00Z",
    "duration_ms": 300_000,
}


def _wait_for_subscribers(count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while hub.subscriber_count() != count:
        assert time.monotonic() < deadline, f"{hub.subscriber_count()} subscribers, not {count}"
        time.sleep(0.02)


@pytest.mark.slow
def test_session_events_reach_the_projects_stream_and_only_it(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_router, "PING_SECONDS", 0.3)
    api = api_on(copy_of_built)
    tenants = built.tenants
    base = f"{api.base_url}/api/projects"
    reader_a = SseReader(
        f"{base}/{tenants.project_a}/sessions/stream", Tenants.headers(tenants.key_a)
    )
    reader_b = SseReader(
        f"{base}/{tenants.project_b}/sessions/stream", Tenants.headers(tenants.key_b)
    )
    reader_a.start()
    reader_b.start()
    assert (reader_a.status, reader_b.status) == (200, 200)
    # The stream opens with a comment once the subscription is in place: nothing after it is lost.
    assert reader_a.next(skip_comments=False).comment == "subscribed"
    assert reader_b.next(skip_comments=False).comment == "subscribed"

    with httpx.Client(
        base_url=api.base_url, headers=Tenants.headers(tenants.write_key_a)
    ) as ingest:
        assert ingest.post("/api/sessions/start", json=START).status_code == 200
        assert ingest.post("/api/sessions/end", json=CRASHED_END).status_code == 200

    started, ended, crashed = reader_a.next(), reader_a.next(), reader_a.next()
    assert (started.event, started.data) == ("session.started", START)
    assert (ended.event, ended.data) == ("session.ended", CRASHED_END)
    assert (crashed.event, crashed.data) == ("session.crashed", CRASHED_END)
    # Keep-alive pings arrive while nothing happens; org B's stream saw none of org A's sessions.
    pings = reader_b.until(lambda m: m.comment and m.comment.startswith("ping"), timeout=5)
    assert all(message.event is None for message in pings)

    reader_a.close()
    reader_b.close()
    _wait_for_subscribers(0)  # a client that goes away leaves no subscription behind


@pytest.mark.slow
def test_the_stream_needs_a_read_key_of_the_projects_org(api: RunningApi, built: Built) -> None:
    url = f"{api.base_url}/api/projects/{built.tenants.project_a}/sessions/stream"
    assert httpx.get(url, headers=Tenants.headers(built.tenants.write_key_a)).status_code == 403
    assert httpx.get(url, headers=Tenants.headers(built.tenants.key_b)).status_code == 404


@pytest.mark.slow
def test_revoking_a_key_in_another_process_ends_its_open_stream_within_seconds(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream_router, "PING_SECONDS", 0.3)  # lets close() end the other reader
    with Registry.open(copy_of_built) as registry:
        doomed = registry.create_key(built.tenants.org_a, "web", "rw")
    api = api_on(copy_of_built)
    url = f"{api.base_url}/api/projects/{doomed.record.project_id}/sessions/stream"
    revoked_reader = SseReader(url, Tenants.headers(doomed.key)).start()
    other_reader = SseReader(url, Tenants.headers(built.tenants.key_a)).start()
    assert revoked_reader.next(skip_comments=False).comment == "subscribed"
    assert other_reader.next(skip_comments=False).comment == "subscribed"

    revoked_at = time.monotonic()
    subprocess.run(
        [str(Path(sys.executable).parent / "loom"), "keys", "revoke", doomed.record.key_id],
        env={**os.environ, "LOOM_DATA_DIR": str(copy_of_built.data_dir)},
        check=True,
        capture_output=True,
    )

    ended = revoked_reader.next(timeout=10)
    assert ended.event == "stream.ended"
    assert f"API key {doomed.record.key_id} was revoked" in ended.data["reason"]
    assert revoked_reader.finished(timeout=5), "the server kept the revoked key's stream open"
    assert time.monotonic() - revoked_at < 5
    # The key cannot open a new one; another key's stream of the same project goes on.
    assert httpx.get(url, headers=Tenants.headers(doomed.key)).status_code == 401
    with httpx.Client(
        base_url=api.base_url, headers=Tenants.headers(built.tenants.write_key_a)
    ) as ingest:
        assert ingest.post("/api/sessions/start", json=START).status_code == 200
    assert other_reader.next().event == "session.started"
    other_reader.close()


def test_a_slow_reader_loses_the_oldest_events_and_is_told_how_many() -> None:
    async def scenario() -> list:
        small = StreamHub(capacity=3)
        async with small.subscribe("org", 1, "key_1") as subscription:
            for n in range(10):
                small.publish(StreamEvent("org", 1, "session.started", {"n": n}))
            small.publish(StreamEvent("org", 2, "session.started", {"n": "other project"}))
            return [await subscription.get() for _ in range(4)]

    dropped, *kept = asyncio.run(scenario())
    assert dropped == 7
    assert [event.data["n"] for event in kept] == [7, 8, 9]


def test_health_changes_carry_the_new_numbers_of_changed_releases_only() -> None:
    publish = Publish(7, datetime(2026, 11, 20, 13, 1), datetime(2026, 11, 20, 12, 59, 30))
    snapshot = {
        "id": 7,
        "published_at": datetime(2026, 11, 20, 13, 1),
        "data_as_of": datetime(2026, 11, 20, 12, 59, 30),
    }
    same = ReleaseKey("org", 1, "1.0", "production")
    changed = ReleaseKey("org", 1, "1.1", "production")
    new = ReleaseKey("org", 2, "2.0", "staging")
    before = {same: {"total_sessions": 5}, changed: {"total_sessions": 7}}
    after = {
        same: {"total_sessions": 5},
        changed: {"total_sessions": 9},
        new: {"total_sessions": 1},
    }

    events = health_changes(before, after, publish)

    assert [(e.org_id, e.project_id, e.name, e.data) for e in events] == [
        ("org", 1, "release.health_changed", {"total_sessions": 9, "snapshot": snapshot}),
        ("org", 2, "release.health_changed", {"total_sessions": 1, "snapshot": snapshot}),
    ]
