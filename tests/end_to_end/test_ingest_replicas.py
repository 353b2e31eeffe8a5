"""Two ingest API replicas behind a real nginx, sharing one landing path and a PostgreSQL catalog
(keys there too), each with a data directory of its own, as two hosts would run them
(docs/deploy.md). A mixed load goes through nginx: the real posthog SDK, native session start/end
pairs and Sentry envelopes built by the real sentry-sdk; one replica is killed (SIGKILL) halfway
and nginx sends what it was serving, and all that follows, to the other. Then one pipeline run:
every acknowledged record is landed, loaded into ``raw.*`` and counted in the marts, exactly once
each (a retry lands again under the same uuid, and the models count it once)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import duckdb
import httpx
import orjson
import pytest
from posthog import Posthog
from sentry_sdk.envelope import Envelope
from sentry_sdk.session import Session

from tests.ingest_api.ingest.utils.server import LOOM, ServerProcess
from tests.utils.network import free_port
from tests.utils.nginx import MISSING, nginx_binary, start_nginx
from tests.utils.postgres import PostgresServer, remove, start_postgres
from warehouse.layout import PART_GLOB, Layout
from warehouse.published import PublishedMarts
from warehouse.registry import Registry

pytestmark = pytest.mark.slow

KILL_AFTER_S = 1.5  # the load runs this long on both replicas, then as long again on one
ATTEMPTS = 20  # a client sends a refused request again, with the same body, up to this often
RELEASE = "2.0.0"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    remove(server)


class Client:
    """One kind of traffic in a thread: each request is sent until it is acknowledged (200:
    ``sync``, on disk), and only then are its records counted as acknowledged."""

    def __init__(self, send: Callable[[], list[str]], stop: threading.Event) -> None:
        self.send, self.stop = send, stop
        self.acknowledged: list[str] = []
        self.error: BaseException | None = None  # what ended the thread early, for the test
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.acknowledged.extend(self.send())
        except BaseException as error:
            self.error = error


def until_acknowledged(attempt: Callable[[], bool]) -> None:
    for _ in range(ATTEMPTS):
        if attempt():
            return
        time.sleep(0.05)
    raise AssertionError(f"not acknowledged after {ATTEMPTS} attempts")


def test_a_replica_killed_behind_nginx_loses_no_acknowledged_record(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    if nginx_binary() is None:
        pytest.skip(MISSING)
    catalog = f"postgres:{postgres.create_database('replicas')}"
    shared = {
        "LOOM_LAKE_CATALOG": catalog,
        "LOOM_LAKE_DATA_PATH": f"{tmp_path / 'lake-files'}/",
        "LOOM_LANDING_PATH": str(tmp_path / "shared-landing"),
    }
    pipeline = Layout(
        tmp_path / "pipeline", catalog, shared["LOOM_LAKE_DATA_PATH"], tmp_path / "shared-landing"
    )
    with Registry.open(pipeline) as registry:  # in PostgreSQL: every replica knows the key
        created = registry.create_key("acme", "web", "rw")
    key, project = created.key, created.record.project_id

    replicas = [
        ServerProcess(tmp_path / f"api-{n}", free_port(), tmp_path / f"api-{n}.log", None, shared)
        for n in (1, 2)
    ]
    for replica in replicas:
        replica.start()
    nginx = start_nginx(tmp_path / "nginx", free_port(), [replica.port for replica in replicas])
    stop = threading.Event()
    http = httpx.Client(
        base_url=nginx.base_url,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        timeout=30,
    )
    posthog = Posthog(key, host=nginx.base_url, sync_mode=True, max_retries=0)

    def posthog_event() -> list[str]:
        uuid = str(uuid4())
        until_acknowledged(
            lambda: (
                posthog.capture("tick", distinct_id="u1", properties={"n": 1}, uuid=uuid) == uuid
            ),
        )
        return [uuid]

    def posted(path: str, body: bytes, **headers: str) -> Callable[[], bool]:
        def attempt() -> bool:
            try:
                response = http.post(path, content=body, headers=headers)
            except httpx.TransportError:  # e.g. the answer cut short by the kill: send it again
                return False
            assert response.status_code < 400 or response.status_code >= 500, response.text
            return response.status_code == 200

        return attempt

    def native_session() -> list[str]:
        session_id, now = str(uuid4()), datetime.now(UTC)
        start = {"session_id": session_id, "distinct_id": "u1", "release": RELEASE,
                 "platform": "python", "started_at": now.isoformat()}  # fmt: skip
        end = {"session_id": session_id, "status": "exited", "duration_ms": 1000,
               "ended_at": (now + timedelta(seconds=1)).isoformat()}  # fmt: skip
        for kind, body in (("start", start), ("end", end)):
            path = f"/api/sessions/{kind}?sync=true"
            until_acknowledged(posted(path, orjson.dumps(body)))
        return [session_id]

    def sentry_session() -> list[str]:
        session = Session(release=RELEASE, environment="production", user={"id": "u2"})
        session.close(status="exited")
        envelope = Envelope(headers={})
        envelope.add_session(session)
        path = f"/api/{project}/envelope/?sync=true"
        auth = f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.75.0"
        until_acknowledged(posted(path, envelope.serialize(), **{"X-Sentry-Auth": auth}))
        return [str(session.sid)]

    events, sessions, sentry = (
        Client(send, stop) for send in (posthog_event, native_session, sentry_session)
    )
    try:
        for client in (events, sessions, sentry):
            client.thread.start()
        time.sleep(KILL_AFTER_S)
        replicas[0].kill()  # SIGKILL with requests in flight
        killed_at = {"events": len(events.acknowledged), "sessions": len(sessions.acknowledged),
                     "sentry": len(sentry.acknowledged)}  # fmt: skip
        time.sleep(KILL_AFTER_S)
        stop.set()
        for client in (events, sessions, sentry):
            client.thread.join(timeout=60)
    finally:
        stop.set()
        posthog.shutdown()
        http.close()
        nginx.stop()
        for replica in replicas:
            replica.stop()

    # Each kind of traffic was acknowledged before the kill and after it; both replicas served,
    # and nginx sent requests the killed one failed to the other (its log lists both then).
    clients = {"events": events, "sessions": sessions, "sentry": sentry}
    assert [client.error for client in clients.values()] == [None] * 3
    after = {name: len(client.acknowledged) for name, client in clients.items()}
    assert all(after[name] > killed_at[name] > 0 for name in clients), (killed_at, after)
    upstreams = Counter(nginx.upstreams())
    first, second = (f"127.0.0.1:{replica.port}" for replica in replicas)
    assert upstreams[first] > 0 and upstreams[second] > 0, upstreams
    assert upstreams[f"{first}, {second}"] > 0, upstreams
    for replica in replicas:
        assert "Traceback" not in replica.logs

    # Landed: every acknowledged record, in files of both hosts; nothing else.
    landed = landed_by_stream(pipeline)
    names = [path.name for path in pipeline.landing_dir.rglob(PART_GLOB)]
    for replica in replicas:
        host_id = Layout(replica.data_dir).host_id
        assert any(f"-{host_id}-" in name for name in names), (host_id, names[:5])
    assert set(landed["events"]) == set(events.acknowledged)
    native, sentry_sids = set(sessions.acknowledged), set(sentry.acknowledged)
    assert set(landed["sessions"]) == native | sentry_sids

    hours = sorted(pipeline.landed_hours("events") | pipeline.landed_hours("sessions"))
    env = {**os.environ, **shared, "LOOM_DATA_DIR": str(pipeline.data_dir)}
    span = ["--from", f"{hours[0]:%Y-%m-%dT%H:00}", "--to", f"{hours[-1]:%Y-%m-%dT%H:00}"]
    run = subprocess.run(
        [*LOOM, "run", *span], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr

    marts = PublishedMarts(pipeline)
    try:
        with marts.cursor() as cur:
            raw_events = ids(cur, "select uuid from warehouse.raw.events")
            raw_sessions = ids(
                cur, "select session_id from warehouse.raw.sessions where kind = 'start'"
            )
            fct_events = ids(cur, "select uuid from warehouse.analytics.fct_events")
            fct_sessions = ids(cur, "select session_id from warehouse.analytics.fct_sessions")
            (total,) = cur.execute(
                "select sum(total_sessions) from warehouse.analytics.release_health"
                " where release = ?",
                [RELEASE],
            ).fetchone()
    finally:
        marts.close()
    # raw.* holds what landed, retries included; the marts count each record once.
    assert Counter(raw_events) == Counter(landed["events"])
    assert Counter(raw_sessions) == Counter(landed["sessions"])
    assert sorted(fct_events) == sorted(set(events.acknowledged))
    assert sorted(fct_sessions) == sorted(native | sentry_sids)
    assert total == len(native | sentry_sids)


def landed_by_stream(layout: Layout) -> dict[str, list[str]]:
    """The ids of every landed record: an event's uuid, a session start's session_id."""
    found: dict[str, list[str]] = {"events": [], "sessions": []}
    for stream, ids_of in found.items():
        for path in sorted(layout.stream_dir(stream).rglob(PART_GLOB)):
            for record in map(orjson.loads, path.read_bytes().splitlines()):
                if stream == "events":
                    ids_of.append(record["uuid"])
                elif record["kind"] == "start":
                    ids_of.append(record["session_id"])
    return found


def ids(cur: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    return [str(value) for (value,) in cur.execute(query).fetchall()]
