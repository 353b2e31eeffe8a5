"""Apps instrumented with the real sentry-sdk (``sentry_sdk.init(dsn=…, release=…)`` and nothing
else) report to the running API; the real hourly job loads and builds it; release_health and the
read API show the exact counts. Release shop@1.1.0 also receives sessions through the native
endpoints: the two paths add up.

What is sent (all in environment production, all received in the current hour or two):

shop@1.0.0, Sentry only
  application mode, one process each: user-clean exits cleanly, user-handled captures an error
  (errored), user-crash dies of an unhandled exception (crashed) — 3 sessions, 3 users;
  request mode, a WSGI app serving / four times, /handled and /crash — aggregates of 6
  sessions (4 exited, 1 errored, 1 crashed) without a distinct id, so no user.
  → 3 + 6 = 9 sessions, 2 crashed: 7 / 9 = 77.78 % crash-free; 2 errored: 2 / 9 = 22.22 %;
    3 users, 1 crashed: 2 / 3 = 66.67 %.
shop@1.1.0, mixed
  native: user-a exits, user-b crashes (crash_count 1) — 2 sessions, 1 crashed;
  Sentry application mode: user-a exits again, user-c captures an error — 2 sessions;
  Sentry request mode: / three times — 3 exited sessions.
  → 2 + 2 + 3 = 7 sessions, 1 crashed: 6 / 7 = 85.71 %; 1 errored: 1 / 7 = 14.29 %; users
    a, b, c = 3 (user-a once, whichever path), 1 crashed: 2 / 3 = 66.67 %.
Adoption in production: 9 + 7 = 16 sessions: 9 / 16 = 56.25 % (adopted), 7 / 16 = 43.75 %
(growing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import uvicorn

from dagster_project.runner import HourRun
from ingest_api.main import create_app
from ingest_api.server import uvicorn_config
from tests.dagster_project.utils.pipeline import PipelineWarehouse
from tests.ingest_api.ingest.utils.sentry_app import dsn, run_script, run_wsgi
from tests.ingest_api.ingest.utils.server import wait_healthy
from tests.utils.network import free_port
from warehouse.layout import STREAMS
from warehouse.registry import Registry
from warehouse.settings import Settings

pytestmark = pytest.mark.slow

HEALTH_COLUMNS = (
    "total_sessions",
    "crashed_sessions",
    "total_users",
    "crashed_users",
    "crash_free_session_rate",
    "crash_free_user_rate",
    "error_rate",
    "adoption_rate",
    "adoption_stage",
)
SENTRY_ONLY = (9, 2, 3, 1, 77.78, 66.67, 22.22, 56.25, "adopted")
MIXED = (7, 1, 3, 1, 85.71, 66.67, 14.29, 43.75, "growing")


@dataclass(frozen=True)
class Reported:
    warehouse: PipelineWarehouse
    client: httpx.Client  # the running API, with an rw key
    project_id: int
    runs: list[HourRun]


def _drifted_envelope(client: httpx.Client, key: str, project_id: int) -> None:
    """Another org's app whose clock is three hours slow: its envelope's sent_at says so."""
    slow = datetime.now(UTC) - timedelta(hours=3)
    session = {
        "sid": "0b9e5c3e-0000-4000-8000-00000000d21f",
        "did": "user-drift",
        "started": (slow - timedelta(minutes=5)).isoformat(),
        "timestamp": slow.isoformat(),
        "status": "exited",
        "attrs": {"release": "clock@1.0.0"},
    }
    lines = [{"sent_at": slow.isoformat()}, {"type": "session"}, session]
    response = client.post(
        f"/api/{project_id}/envelope/",
        content=b"\n".join(orjson.dumps(line) for line in lines),
        headers={"X-Sentry-Auth": f"Sentry sentry_key={key}"},
    )
    assert response.status_code == 200, response.text


def _native_session(client: httpx.Client, session_id: str, user: str, status: str) -> None:
    now = datetime.now(UTC).isoformat()
    start = {
        "session_id": session_id,
        "distinct_id": user,
        "release": "shop@1.1.0",
        "platform": "python",
        "started_at": now,
    }
    end = {"session_id": session_id, "status": status, "crash_count": int(status == "crashed")}
    for path, body in (("start", start), ("end", end)):
        assert client.post(f"/api/sessions/{path}", json=body).status_code == 200


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reported]:
    warehouse = PipelineWarehouse.create(tmp_path_factory.mktemp("sentry") / "data")
    settings = Settings(data_dir=warehouse.layout.data_dir, port=free_port())
    server = uvicorn.Server(uvicorn_config(settings, app=create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://{settings.host}:{settings.port}"
    wait_healthy(base_url)
    with Registry.open(warehouse.layout) as registry:
        write_key = registry.create_key("acme", "shop", "write")
        read_key = registry.create_key("acme", "shop", "rw")
        drift_key = registry.create_key("drift", "clock", "write")
    project_id = write_key.record.project_id
    sdk_dsn = dsn(base_url, write_key.key, project_id)
    headers = {"Authorization": f"Bearer {read_key.key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for user, ending in (("user-clean", "clean"), ("user-handled", "handled")):
            run_script(sdk_dsn, "shop@1.0.0", user, ending)
        run_script(sdk_dsn, "shop@1.0.0", "user-crash", "crash")
        run_wsgi(sdk_dsn, "shop@1.0.0", ["/", "/", "/handled", "/", "/crash", "/"])

        _native_session(client, "native-1", "user-a", "exited")
        _native_session(client, "native-2", "user-b", "crashed")
        run_script(sdk_dsn, "shop@1.1.0", "user-a", "clean")
        run_script(sdk_dsn, "shop@1.1.0", "user-c", "handled")
        run_wsgi(sdk_dsn, "shop@1.1.0", ["/", "/", "/"])
        _drifted_envelope(client, drift_key.key, drift_key.record.project_id)

        hours = set().union(*(warehouse.layout.landed_hours(stream) for stream in STREAMS))
        runs = warehouse.run(*sorted(hours))
        yield Reported(warehouse, client, project_id, runs)
    server.should_exit = True
    thread.join(timeout=10)


def _health(reported: Reported, release: str) -> tuple:
    (row,) = reported.warehouse.rows(
        f"select {', '.join(HEALTH_COLUMNS)} from analytics.release_health where release = ?",
        [release],
    )
    return tuple(row.values())


def test_an_app_with_only_a_dsn_shows_up_in_release_health(reported: Reported) -> None:
    assert _health(reported, "shop@1.0.0") == SENTRY_ONLY
    # Its application-mode sessions are individual sessions with the SDK's status.
    statuses = reported.warehouse.query(
        "select distinct_id, status, platform, sample_rate from analytics.fct_sessions"
        " where release = 'shop@1.0.0' order by distinct_id"
    )
    assert statuses == [
        ("user-clean", "exited", "python", 1.0),
        ("user-crash", "crashed", "python", 1.0),
        ("user-handled", "errored", "python", 1.0),
    ]
    (buckets,) = reported.warehouse.query(
        "select sum(exited), sum(errored), sum(abnormal), sum(crashed), count(distinct_id)"
        " from analytics.fct_session_aggregates where release = 'shop@1.0.0'"
    )
    assert buckets == (4, 1, 0, 1, 0)


def test_native_and_sentry_sessions_of_one_release_add_up(reported: Reported) -> None:
    assert _health(reported, "shop@1.1.0") == MIXED
    # 2 native + 2 Sentry individual sessions, and 3 aggregated ones: 7 in the hourly aggregate.
    by_source = reported.warehouse.query(
        "select count(*) filter (where session_id like 'native-%'), count(*)"
        " from analytics.fct_sessions where release = 'shop@1.1.0'"
    )
    assert by_source == [(2, 4)]
    (hourly,) = reported.warehouse.query(
        "select sum(stored_sessions), sum(adjusted_sessions), sum(crashed_sessions),"
        " sum(errored_sessions), sum(exited_sessions)"
        " from analytics.agg_release_health_hourly where release = 'shop@1.1.0'"
    )
    assert hourly == (7, 7.0, 1, 1.0, 5.0)


def test_the_read_api_shows_the_same_numbers(reported: Reported) -> None:
    # The API follows new publishes within about a second: until then it has none to answer from.
    url, deadline = f"/api/projects/{reported.project_id}/releases", time.monotonic() + 30
    response = reported.client.get(url)
    while response.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
        response = reported.client.get(url)

    assert response.status_code == 200, response.text
    shown = {
        release["release"]: tuple(release[column] for column in HEALTH_COLUMNS if column in release)
        for release in response.json()["releases"]
    }
    # The list shape has no crashed_users: the others, as in release_health.
    listed = [c for c in HEALTH_COLUMNS if c != "crashed_users"]

    def expected(numbers: tuple) -> tuple:
        return tuple(v for c, v in zip(HEALTH_COLUMNS, numbers, strict=True) if c in listed)

    assert shown == {"shop@1.0.0": expected(SENTRY_ONLY), "shop@1.1.0": expected(MIXED)}
    detail = reported.client.get(f"/api/projects/{reported.project_id}/releases/shop@1.0.0")
    assert (detail.json()["crashed_users"], detail.json()["total_users"]) == (1, 3)


def test_a_slow_sdk_clock_is_corrected_and_shown_as_ingestion_warnings(reported: Reported) -> None:
    """Relay's correction: the session lands three hours on, in the hour it really happened;
    both of its records were corrected, which analysts see in ingestion_warnings and the
    Dagster UI as the warning check of that asset."""
    [(started_at, received_at)] = reported.warehouse.query(
        "select started_at, start_received_at from analytics.fct_sessions"
        " where release = 'clock@1.0.0'"
    )
    assert received_at - started_at < timedelta(minutes=6)
    assert reported.warehouse.query(
        "select kind, example_record_stream, sum(warnings) from analytics.ingestion_warnings"
        " group by all"
    ) == [("clock_drift", "sessions", 2)]
    assert sum(run.checks_warned for run in reported.runs) >= 1
    assert all(run.checks_failed == 0 for run in reported.runs)
