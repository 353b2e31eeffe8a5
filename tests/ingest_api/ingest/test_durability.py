"""Crash safety and log hygiene, against ``loom serve`` in a subprocess."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from uuid import uuid4

import httpx
import orjson
import pytest

from tests.ingest_api.ingest.utils.server import ServerProcess, landed
from warehouse.layout import Layout
from warehouse.registry import Registry
from warehouse.settings import get_settings

TRAFFIC_SECONDS = 1.5
WORKERS = 4
# How long a flush may take to write and fsync its files, on top of the flush interval.
WRITE_ALLOWANCE_SECONDS = 0.1
# uvicorn shuts down gracefully on SIGTERM, then re-raises it: -15 is a clean exit.
CLEAN_EXIT = (0, -signal.SIGTERM)


def all_landed_lines(layout: Layout) -> list[bytes]:
    lines = []
    for path in sorted(layout.landing_dir.rglob("part-*.ndjson")):
        content = path.read_bytes()
        assert content.endswith(b"\n"), f"{path} ends mid-record"
        lines.extend(content.splitlines())
    return lines


@pytest.mark.slow
def test_sigkill_mid_stream_keeps_every_acknowledged_record_exactly_once(
    server_process: ServerProcess, layout: Layout
) -> None:
    with Registry.open(layout) as registry:
        key = registry.create_key("acme", "web", "write").key
    server = server_process.start()
    acknowledged: list[str] = []
    refused: list[int] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(
            base_url=server.base_url, timeout=5, headers={"X-API-Key": key}
        ) as client:
            while not stop.is_set():
                batch = [
                    {
                        "event": "tick",
                        "distinct_id": f"w{worker}",
                        "uuid": str(uuid4()),
                        "properties": {"pad": "x" * 300},
                    }
                    for _ in range(20)
                ]
                try:
                    response = client.post("/api/analytics/batch?sync=true", json={"batch": batch})
                except httpx.TransportError:
                    return  # the server died with this request unanswered: not acknowledged
                if response.status_code == 200:
                    acknowledged.extend(event["uuid"] for event in batch)
                else:
                    refused.append(response.status_code)

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(WORKERS)]
    for thread in threads:
        thread.start()
    time.sleep(TRAFFIC_SECONDS)
    server.kill()  # SIGKILL while requests are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    assert refused == []
    assert len(acknowledged) > 200
    records = [
        orjson.loads(line) for line in all_landed_lines(layout)
    ]  # no partial record is readable
    counts = Counter(record["uuid"] for record in records)
    assert all(counts[uuid] == 1 for uuid in acknowledged)
    assert max(counts.values()) == 1

    server.start()  # starts cleanly on the crashed data dir
    assert list(layout.landing_dir.rglob(".part-*")) == []
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": key}) as client:
        after = client.post(
            "/api/analytics/capture", json={"event": "after", "distinct_id": "u", "properties": {}}
        )
    assert after.status_code == 200
    assert server.stop() in CLEAN_EXIT
    assert "Application shutdown complete" in server.logs and "Traceback" not in server.logs


@pytest.mark.slow
def test_sigkill_under_mixed_sync_and_async_load_loses_only_the_async_flush_window(
    server_process: ServerProcess, layout: Layout
) -> None:
    """Sync answers mean on disk: none lost, none doubled. A 202 means on disk within the flush
    interval: only records acknowledged within that window (plus the write in progress) before
    the kill may be missing, and nothing lands twice."""
    with Registry.open(layout) as registry:
        key = registry.create_key("acme", "web", "write").key
    server = server_process.start()
    flush_interval = get_settings().async_flush_interval_seconds
    sync_acknowledged: list[str] = []
    async_acknowledged: list[tuple[float, list[str]]] = []  # (when the 202 arrived, uuids)
    stop = threading.Event()

    def events(count: int) -> list[dict]:
        return [
            {"environment": "production", "event": "tick", "distinct_id": "u", "uuid": str(uuid4())}
            | {"properties": {"pad": "x" * 200}}
            for _ in range(count)
        ]

    def send_sync() -> None:
        with httpx.Client(
            base_url=server.base_url, timeout=5, headers={"X-API-Key": key}
        ) as client:
            while not stop.is_set():
                batch = events(20)
                try:
                    response = client.post("/api/analytics/batch", json={"batch": batch})
                except httpx.TransportError:
                    return
                assert response.status_code == 200
                sync_acknowledged.extend(event["uuid"] for event in batch)

    def send_async() -> None:
        with httpx.Client(
            base_url=server.base_url, timeout=5, headers={"X-API-Key": key}
        ) as client:
            while not stop.is_set():
                batch = events(10)
                try:
                    response = client.post("/track", json=batch)
                except httpx.TransportError:
                    return
                assert response.status_code == 202
                async_acknowledged.append((time.monotonic(), [e["uuid"] for e in batch]))

    threads = [threading.Thread(target=send_sync) for _ in range(2)]
    threads += [threading.Thread(target=send_async) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(TRAFFIC_SECONDS)
    killed_at = time.monotonic()
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    counts = Counter(orjson.loads(line)["uuid"] for line in all_landed_lines(layout))
    async_count = sum(len(uuids) for _, uuids in async_acknowledged)
    assert len(sync_acknowledged) > 500 and async_count > 500
    assert max(counts.values()) == 1  # nothing doubled, sync or async
    assert [uuid for uuid in sync_acknowledged if counts[uuid] != 1] == []
    lost_ages = [
        killed_at - acknowledged_at
        for acknowledged_at, uuids in async_acknowledged
        if any(counts[uuid] == 0 for uuid in uuids)
    ]
    assert max(lost_ages, default=0) < flush_interval + WRITE_ALLOWANCE_SECONDS, lost_ages


@pytest.mark.slow
def test_client_ip_is_stored_with_the_record_but_never_logged(
    server_process: ServerProcess, layout: Layout
) -> None:
    with Registry.open(layout) as registry:
        created = registry.create_key("acme", "web", "write")
    server = server_process.start()
    ip = "203.0.113.77"  # uvicorn trusts X-Forwarded-For from loopback, as behind a local proxy
    headers = {"X-API-Key": created.key, "X-Forwarded-For": ip}
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        ok = client.post(
            "/track?sync=true",
            json={"environment": "production", "event": "Signed Up", "properties": {}},
        )
        bad = client.post("/api/analytics/capture", json={"event": "Bad Name", "distinct_id": "u"})
        unauthorized = client.post("/track", json={}, headers={"X-API-Key": "nope"})
        posthog = client.post(
            "/batch/", json={"api_key": created.key, "batch": [{"event": "e", "distinct_id": "u"}]}
        )
    assert (ok.status_code, bad.status_code, unauthorized.status_code, posthog.status_code) == (
        200,
        400,
        401,
        200,
    )
    assert server.stop() in CLEAN_EXIT

    records = landed(layout, "events", created.record.org_id)
    assert [record["ip"] for record in records] == [ip, ip]
    logs = server.logs
    assert '"POST /track?sync=true HTTP/1.1" 200' in logs  # the access log is on, and scrubbed
    assert '"POST /api/analytics/capture HTTP/1.1" 400' in logs
    assert ip not in logs


@pytest.mark.slow
def test_keys_never_reach_the_logs(server_process: ServerProcess, layout: Layout) -> None:
    """Sentry's browser SDKs send the key as ?sentry_key=, clients put keys (valid or not)
    wherever they think one goes: the access log shows the request with every key redacted."""
    with Registry.open(layout) as registry:
        created = registry.create_key("acme", "web", "write")
        revoked = registry.create_key("acme", "web", "write")
        registry.revoke(revoked.record.key_id)
    key, project = created.key, created.record.project_id
    unknown = "loom_analytics_write_" + "0" * 32
    bogus = "not-a-key-but-secret-7f3a"
    server = server_process.start()
    session = b'{"sid":"s","started":"2026-01-18T12:00:00Z","attrs":{"release":"r@1"}}'
    envelope = b'{}\n{"type":"session"}\n' + session + b"\n"
    with httpx.Client(base_url=server.base_url) as client:
        answers = [
            client.post(
                f"/api/{project}/envelope/?sentry_key={key}&sentry_version=7", content=envelope
            ),
            client.post(f"/api/{project}/envelope/?sentry%5Fkey={revoked.key}", content=envelope),
            client.post(f"/api/{project}/envelope/?sentry_key={unknown}", content=envelope),
            client.post(
                f"/batch/?api_key={bogus}", json={"batch": [{"event": "e", "distinct_id": "u"}]}
            ),
            client.post(f"/track?token={key}", json={}, headers={"X-API-Key": key}),
            client.get("/api/keys/me", headers={"Authorization": f"Bearer {unknown}"}),
            client.post(f"/api/{key}/envelope/", content=envelope),
        ]
    assert [answer.status_code for answer in answers] == [200, 401, 401, 401, 400, 401, 400]
    assert server.stop() in CLEAN_EXIT

    logs = server.logs
    assert '"POST /api/' + f"{project}/envelope/?sentry_key=[redacted]&sentry_version=7" in logs
    assert '"POST /batch/?api_key=[redacted] HTTP/1.1" 401' in logs
    for secret in (key, revoked.key, unknown, bogus):
        assert secret not in logs
