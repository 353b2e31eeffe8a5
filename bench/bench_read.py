"""Read latency through real uvicorn against the same SQL run directly on DuckDB.

A lake is generated with :mod:`bench.generate` (``LOOM_BENCH_READ_EVENTS`` events and
``LOOM_BENCH_READ_SESSIONS`` sessions over ``LOOM_BENCH_READ_DAYS`` days, one org), loaded with
:func:`warehouse.raw_load.load_landed`, built with ``dbt build``, compacted and published
(:mod:`warehouse.published`); it is kept under ``bench/.work/`` and reused by later runs of the
same scale. The target scale is 10,000,000 events and 1,000,000 sessions; the
default is smaller because generating and building that takes far longer than a benchmark run
should (see ``bench/results/read.md`` for the scale each result used).

For each endpoint — ``releases`` (whole history), ``releases`` over the last 7 days (dbt's
``project_release_health_between`` table function), ``health/trend`` by day over 90 days, and
``persons/{distinct_id}`` for random distinct_ids — requests go one at a time over a keep-alive
connection to the API (``uvicorn ingest_api.main:create_server_app`` in a subprocess, one worker),
and the *same query functions* the routes call run in this process on a read-only connection to the
same published snapshot of the lake: the direct baseline. Measurements are paired: each API request
is followed (or, every other time, preceded) by the direct call with the same arguments, so both
halves of a pair see the same machine state. On this shared 2-core machine a query run back to back
with itself is up to twice as fast as the same query after a few milliseconds of idling (warm
caches, awake threads), and the server's query never runs back to back; pairing keeps that effect
out of the ratio. The client is the standard library's ``http.client`` on one keep-alive connection:
its own cost per request (~0.1 ms) is a small part of what is measured, unlike a richer client's.
Targets: API p99 under 50 ms through the lake, and API p50 under 2x direct. Building the lake is
timed too, publishing included (one row, whatever the lake holds)."""

from __future__ import annotations

import http.client
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.generate import generate
from ingest_api.read.persons import person_by_distinct_id
from ingest_api.read.releases import health_trend, list_releases
from warehouse import dbt
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.maintenance import maintain_after_run
from warehouse.published import PublishedMarts, publish
from warehouse.raw_load import load_landed
from warehouse.registry import Registry

EVENTS = int(os.environ.get("LOOM_BENCH_READ_EVENTS", "200000"))
SESSIONS = int(os.environ.get("LOOM_BENCH_READ_SESSIONS", "20000"))
DAYS = int(os.environ.get("LOOM_BENCH_READ_DAYS", "90"))
REQUESTS = int(os.environ.get("LOOM_BENCH_READ_REQUESTS", "300"))
WARMUP = 20
SEED = 6
TARGET_RATIO = 2.0
TARGET_P99_MS = 50.0
TARGET_SCALE = (10_000_000, 1_000_000)
WORK = Path(__file__).parent / ".work"
RESULTS = Path(__file__).parent / "results" / "read.md"


@dataclass(frozen=True)
class Warehouse:
    layout: Layout
    org_id: str
    project_id: int
    key: str
    start: datetime
    end: datetime
    build_seconds: dict[str, float]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _register(layout: Layout, org_id: str, project_id: int) -> str:
    """An rw key for the generator's org and project (their ids are the generator's, so they are
    entered in the registry as they are, then a key is made the usual way)."""
    Registry.open(layout).close()  # creates the schema
    with sqlite3.connect(layout.registry_path) as con:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        con.execute("INSERT OR IGNORE INTO orgs VALUES (?, ?, ?)", [org_id, org_id, now])
        con.execute(
            "INSERT OR IGNORE INTO projects (project_id, org_id, name, created_at)"
            " VALUES (?, ?, 'bench', ?)",
            [project_id, org_id, now],
        )
    with Registry.open(layout) as registry:
        return registry.create_key(org_id, "bench", "rw").key


def _timed(seconds: dict[str, float], name: str, step: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = step()
    seconds[name] = time.perf_counter() - started
    print(f"  {name}: {seconds[name]:.1f} s", flush=True)
    return result


def build_warehouse() -> Warehouse:
    root = WORK / f"read-{EVENTS}-{SESSIONS}-{DAYS}d-seed{SEED}"
    layout = Layout(root / "data")
    marker = root / "built"
    seconds: dict[str, float] = {}
    start = datetime(2026, 11, 23) - timedelta(days=DAYS)
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"building a warehouse of {EVENTS:,} events and {SESSIONS:,} sessions", flush=True)
        _timed(seconds, "generate", lambda: generate(
            layout, events=EVENTS, sessions=SESSIONS, days=DAYS, seed=SEED, start=start,
            progress=False,
        ))  # fmt: skip

        def load() -> None:
            load_landed(layout)

        def maintain_and_publish() -> None:
            with connect_pipeline(layout) as con:
                maintain_after_run(con)
                publish(con)

        _timed(seconds, "raw load", load)
        _timed(seconds, "dbt build", lambda: dbt.build(
            layout, exclude="resource_type:test resource_type:unit_test",
            target_path=root / "dbt-target",
        ))  # fmt: skip
        _timed(seconds, "compact and publish", maintain_and_publish)
        marker.write_text("ok\n")
    with connect_pipeline(layout) as con:
        _timed(seconds, "publish (nothing changed)", lambda: publish(con))
        org_id, project_id = con.execute(
            "SELECT org_id, project_id FROM analytics.fct_sessions GROUP BY ALL"
            " ORDER BY count(*) DESC LIMIT 1"
        ).fetchall()[0]
    key = _register(layout, org_id, project_id)
    return Warehouse(layout, org_id, project_id, key, start, start + timedelta(days=DAYS), seconds)


def _start_api(layout: Layout, port: int) -> subprocess.Popen:
    argv = [
        sys.executable, "-m", "uvicorn", "ingest_api.main:create_server_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(argv, env={**os.environ, "LOOM_DATA_DIR": str(layout.data_dir)})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the API did not start")


Direct = Callable[[object], object]  # the route's query function, given a cursor


@dataclass(frozen=True)
class Endpoint:
    name: str
    target: bool  # one of the endpoints with a latency target
    # one draw of the request: the API path and the direct call with the same arguments
    draw: Callable[[random.Random], tuple[str, Direct]]


def endpoints(warehouse: Warehouse, distinct_ids: list[str]) -> list[Endpoint]:
    org, project = warehouse.org_id, warehouse.project_id
    week_start = warehouse.end - timedelta(days=7)
    trend_start = warehouse.end - timedelta(days=90)
    base = f"/api/projects/{project}"
    return [
        Endpoint(
            "releases",
            True,
            lambda rng: (
                f"{base}/releases",
                lambda cur: list_releases(cur, org, project, None, None, None),
            ),
        ),
        Endpoint(
            "releases (last 7 days)",
            False,
            lambda rng: (
                f"{base}/releases?start_date={week_start:%Y-%m-%dT%H:%M:%S}"
                f"&end_date={warehouse.end:%Y-%m-%dT%H:%M:%S}",
                lambda cur: list_releases(cur, org, project, None, week_start, warehouse.end),
            ),
        ),
        Endpoint(
            "health/trend (day, 90 days)",
            True,
            lambda rng: (
                f"{base}/health/trend?interval=day&start_date={trend_start:%Y-%m-%d}"
                f"&end_date={warehouse.end:%Y-%m-%d}",
                lambda cur: health_trend(cur, org, project, "day", trend_start, warehouse.end),
            ),
        ),
        Endpoint("persons/{distinct_id}", True, lambda rng: _person(org, rng.choice(distinct_ids))),
    ]


def _person(org: str, distinct_id: str) -> tuple[str, Direct]:
    return (
        f"/api/analytics/persons/{quote(distinct_id, safe='')}",
        lambda cur: person_by_distinct_id(cur, org, distinct_id),
    )


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Row:
    endpoint: Endpoint
    api_ms: list[float]
    direct_ms: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.api_ms) / statistics.median(self.direct_ms)

    @property
    def met(self) -> bool:
        return self.ratio < TARGET_RATIO and _percentile(self.api_ms, 0.99) < TARGET_P99_MS


class Client:
    """``GET`` over one keep-alive connection (standard library: least client-side cost)."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._headers = headers

    def get(self, path: str) -> tuple[int, bytes]:
        self._connection.request("GET", path, headers=self._headers)
        response = self._connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._connection.close()


def http_floor(port: int) -> list[float]:
    """Round trips of ``GET /healthz`` (no key, no query): what any request costs here."""
    client = Client(port, {})
    try:
        for _ in range(WARMUP):
            client.get("/healthz")
        samples = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            client.get("/healthz")
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return samples


def measure(warehouse: Warehouse, port: int) -> list[Row]:
    marts = PublishedMarts(warehouse.layout)
    with marts.cursor() as cur:
        distinct_ids = [
            row[0]
            for row in cur.execute(
                "SELECT distinct_id FROM warehouse.analytics.dim_persons_by_distinct_id"
                " WHERE org_id = ? USING SAMPLE 2000 ROWS",
                [warehouse.org_id],
            ).fetchall()
        ]
    rng = random.Random(SEED)
    client = Client(port, {"Authorization": f"Bearer {warehouse.key}"})

    def api(path: str) -> float:
        started = time.perf_counter()
        status, body = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        assert status == 200, body
        return elapsed

    def direct(call: Direct) -> float:
        started = time.perf_counter()
        with marts.cursor() as cur:
            call(cur)
        return (time.perf_counter() - started) * 1000

    rows = []
    try:
        for endpoint in endpoints(warehouse, distinct_ids):
            for _ in range(WARMUP):
                path, call = endpoint.draw(rng)
                api(path)
                direct(call)
            api_ms: list[float] = []
            direct_ms: list[float] = []
            for index in range(REQUESTS):
                path, call = endpoint.draw(rng)
                if index % 2:
                    direct_ms.append(direct(call))
                    api_ms.append(api(path))
                else:
                    api_ms.append(api(path))
                    direct_ms.append(direct(call))
            rows.append(Row(endpoint, api_ms, direct_ms))
    finally:
        client.close()
        marts.close()
    return rows


def table(warehouse: Warehouse, rows: list[Row], floor: list[float], counts: dict[str, int]) -> str:
    scale = f"{counts['events']:,} events, {counts['sessions']:,} sessions"
    target_events, target_sessions = TARGET_SCALE
    lines = [
        "# Read benchmark",
        "",
        f"Scale used: **{scale}** ({counts['persons']:,} persons, {DAYS} days, one org) from"
        f" `bench/generate.py` (`seed={SEED}`); the target scale is {target_events:,} events and"
        f" {target_sessions:,} sessions (knobs: `LOOM_BENCH_READ_EVENTS`,"
        " `LOOM_BENCH_READ_SESSIONS`).",
        f"{REQUESTS} sequential requests per endpoint over one keep-alive `http.client`"
        f" connection to uvicorn (one worker, subprocess), after {WARMUP} warm-up requests. The"
        " direct baseline runs the route's own query function, with the same arguments, on a"
        " cursor of the same published snapshot in this process; each API request is paired with"
        " its direct call (alternating which goes first), so both see the same machine state.",
        f"Machine: {os.cpu_count()} CPU(s), {platform.system()} {platform.machine()}, Python"
        f" {platform.python_version()}. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| endpoint | API p50 ms | API p99 ms | direct p50 ms | direct p99 ms"
        " | API/direct p50 | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        verdict = ("met" if row.met else "**missed**") if row.endpoint.target else "(extra)"
        lines.append(
            f"| {row.endpoint.name} | {statistics.median(row.api_ms):.2f}"
            f" | {_percentile(row.api_ms, 0.99):.2f} | {statistics.median(row.direct_ms):.2f}"
            f" | {_percentile(row.direct_ms, 0.99):.2f} | {row.ratio:.2f}x | {verdict} |"
        )
    lines += [
        "",
        f"Targets: API p50 < {TARGET_RATIO:g}x direct and API p99 < {TARGET_P99_MS:g} ms for"
        " `releases`, `health/trend` and `persons/{distinct_id}`.",
        f"HTTP floor in the same run (`GET /healthz`: no key, no query): p50"
        f" {statistics.median(floor):.2f} ms, p99 {_percentile(floor, 0.99):.2f} ms — a query"
        " cheaper than this cannot stay under 2x through any HTTP server.",
        "",
        "Building the lake at this scale (publishing records one row):",
        "",
        "| step | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {value:.2f} |" for name, value in warehouse.build_seconds.items()]
    return "\n".join(lines) + "\n"


def _counts(layout: Layout) -> dict[str, int]:
    marts = PublishedMarts(layout)
    with marts.cursor() as cur:
        events, sessions, persons = cur.execute(
            "SELECT (SELECT count(*) FROM warehouse.analytics.fct_events),"
            " (SELECT count(*) FROM warehouse.analytics.fct_sessions),"
            " (SELECT count(*) FROM warehouse.analytics.dim_persons)"
        ).fetchall()[0]
    marts.close()
    return {"events": events, "sessions": sessions, "persons": persons}


def main() -> None:
    warehouse = build_warehouse()
    port = _free_port()
    api = _start_api(warehouse.layout, port)
    try:
        floor = http_floor(port)
        rows = measure(warehouse, port)
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=30)
    text = table(warehouse, rows, floor, _counts(warehouse.layout))
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
