"""Sustained mixed load against a real ``loom serve``, with an hourly pipeline run in the middle.

A ``loom serve`` subprocess runs on its own temporary data directory (default settings, its own
lake). After some initial traffic (a few persons, events and sessions) and a first ``loom run``
so that the read routes have a published snapshot, the run measures, with the same client
throughout:

1. the *baseline*: ``CONNECTIONS`` connections in a closed loop on ``GET /healthz`` for
   ``BASELINE_SECONDS``: what this client gets from this server on this machine right now, for a
   request that does nothing;
2. each read route alone and idle (sequential requests, an rw key): the reads' own baseline;
3. the *load*, ``SECONDS`` long: ``CONNECTIONS`` connections posting sync single events to
   ``/api/analytics/capture`` (each answered once it is fsynced), ``READERS`` connections reading
   the read routes with an rw key (a pause between requests), and, ``PIPELINE_AT`` into it,
   ``loom run --hour <the current hour>`` in a subprocess, which loads what has landed so far,
   builds the marts and publishes them while the API is serving.

Absolute numbers on a shared 2-core machine mean little, so the table gives ratios against the
baselines measured in the same run. The reference run, wrk with 64 connections of sync single
events, measured 1,733 events/s, p99 74 ms and 0 lost; this client is Python (the standard
library's ``http.client``, one thread and one keep-alive connection each), and its own CPU time
is reported.

Every event carries a client uuid. Once the API is stopped (SIGTERM, which flushes), every
acknowledged uuid must be in the landing files exactly once; after a final ``loom run`` over every
received hour, exactly once in ``raw.events`` of the lake too. Landed events that were never
acknowledged (a request that failed after landing) are counted, not hidden.

Bounds: ``SECONDS`` of load, at most ``MAX_EVENTS`` events, loopback only, every subprocess
with a timeout. Knobs: ``LOOM_BENCH_LOAD_SECONDS`` (default 60), ``LOOM_BENCH_LOAD_CONNECTIONS``
(default 64).
"""

from __future__ import annotations

import http.client
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench.bench_ingest import free_port
from warehouse.duck import connect_reader
from warehouse.layout import PART_GLOB, Layout, floor_hour
from warehouse.registry import Registry

SECONDS = float(os.environ.get("LOOM_BENCH_LOAD_SECONDS", "60"))
CONNECTIONS = int(os.environ.get("LOOM_BENCH_LOAD_CONNECTIONS", "64"))
READERS = 4
READ_PAUSE_SECONDS = 0.2  # per reader: a few dashboards refreshing, not a read flood
BASELINE_SECONDS = 10.0
IDLE_READS = 30  # per read route
PIPELINE_AT = 1 / 3  # of the load: the run starts 20 s into 60
MAX_EVENTS = 1_000_000
RUN_TIMEOUT_SECONDS = 900
PERSONS = 50
RELEASES = ("1.0.0", "1.1.0")
REFERENCE = "wrk, 64 connections of sync single events: 1,733 events/s, p99 74 ms, 0 lost"
RESULTS = Path(__file__).parent / "results" / "load.md"
LOOM = [sys.executable, "-m", "loom"]
CAPTURE = "/api/analytics/capture"
MID_RUN = "in the middle of the load"


# ---------------------------------------------------------------------------------------------
# The client


class Connection:
    """One keep-alive connection (the standard library's: the least client-side cost per
    request, which matters with 64 of them in one Python process)."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self._port, self._headers = port, headers
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None) -> int:
        """The answer's status; 0 when the request failed (the connection is then renewed)."""
        try:
            self._connection.request(method, path, body=body, headers=self._headers)
            response = self._connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self._connection.close()
            self._connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
            return 0

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True, slots=True)
class Sample:
    sent: float  # perf_counter when the request was sent
    ms: float
    status: int


def timed(connection: Connection, method: str, path: str, body: bytes | None = None) -> Sample:
    sent = time.perf_counter()
    status = connection.request(method, path, body)
    return Sample(sent, (time.perf_counter() - sent) * 1000, status)


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@dataclass(frozen=True)
class Stats:
    """Answers of one kind of request over ``seconds``: latency percentiles of the 200s."""

    count: int
    other: int  # answers other than 200, and requests that got none
    seconds: float
    p50: float
    p99: float

    @classmethod
    def of(cls, samples: list[Sample], seconds: float) -> Stats:
        ok = [s.ms for s in samples if s.status == 200]
        return cls(
            len(ok), len(samples) - len(ok), seconds, percentile(ok, 0.5), percentile(ok, 0.99)
        )

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("nan")


def closed_loop(
    connections: int, seconds: float, request: Callable[[int, Connection], Sample], port: int,
    headers: dict[str, str], stop: threading.Event | None = None,
) -> list[Sample]:  # fmt: skip
    """``connections`` threads, each sending ``request`` on its own connection, one at a time,
    until time is up (or ``stop`` is set)."""
    stop_at = time.perf_counter() + seconds
    stop = stop or threading.Event()
    per_thread: list[list[Sample]] = [[] for _ in range(connections)]

    def worker(n: int) -> None:
        connection = Connection(port, headers)
        try:
            while time.perf_counter() < stop_at and not stop.is_set():
                per_thread[n].append(request(n, connection))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [sample for samples in per_thread for sample in samples]


# ---------------------------------------------------------------------------------------------
# The server, the keys and the pipeline


def loom_env(layout: Layout, port: int | None = None) -> dict[str, str]:
    """Default settings on this run's own data directory (and lake): no LOOM_* of the caller."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOOM_")}
    env["LOOM_DATA_DIR"] = str(layout.data_dir)
    if port is not None:
        env.update(LOOM_HOST="127.0.0.1", LOOM_PORT=str(port))
    return env


@contextmanager
def loom_serve(layout: Layout, port: int, log: Path) -> Iterator[None]:
    """``loom serve`` until the block ends, then SIGTERM (which flushes every queued record)."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*LOOM, "serve"], env=loom_env(layout, port), stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + 60
        probe = Connection(port, {})
        while probe.request("GET", "/healthz") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"loom serve did not start: {tail(log)}")
            time.sleep(0.2)
        probe.close()
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class PipelineRun:
    """``loom run`` in a subprocess, over received hours ``first`` to ``last``."""

    layout: Layout
    first: datetime
    last: datetime
    log: Path
    started: float = 0.0
    ended: float = 0.0
    returncode: int | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> PipelineRun:
        hours = ["--from", f"{self.first:%Y-%m-%dT%H:00}", "--to", f"{self.last:%Y-%m-%dT%H:00}"]
        if self.first == self.last:
            hours = ["--hour", f"{self.first:%Y-%m-%dT%H:00}"]
        self.started = time.perf_counter()
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [*LOOM, "run", *hours], env=loom_env(self.layout), stdout=output, stderr=output
            )
        return self

    def wait(self) -> PipelineRun:
        assert self.process is not None
        try:
            self.returncode = self.process.wait(timeout=RUN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.returncode = self.process.wait()
        self.ended = time.perf_counter()
        return self

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def summary(self) -> str:
        """``loom run``'s progress line (rows loaded, checks, duration), or its last words."""
        lines = self.log.read_text(errors="replace").splitlines()
        progress = [line for line in lines if "  ok  " in line or "FAILED" in line]
        return (progress or lines or ["(no output)"])[-1].strip()


def tail(log: Path, lines: int = 20) -> str:
    """The end of a subprocess's output, for an error message (its file goes with the run)."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def current_hour() -> datetime:
    return floor_hour(datetime.now(UTC))


@dataclass(frozen=True)
class Keys:
    org_id: str
    project_id: int
    write: str
    read: str


def create_keys(layout: Layout) -> Keys:
    with Registry.open(layout) as registry:
        write = registry.create_key("bench-load", "web", "write")
        read = registry.create_key("bench-load", "web", "rw")
    return Keys(write.record.org_id, write.record.project_id, write.key, read.key)


# ---------------------------------------------------------------------------------------------
# Traffic


def event_body(distinct_id: str, event_uuid: str) -> bytes:
    return orjson.dumps(
        {
            "event": "checkout_completed",
            "distinct_id": distinct_id,
            "uuid": event_uuid,
            "properties": {"plan": "pro", "amount": 49.99, "$current_url": "/checkout"},
        }
    )


def seed(port: int, keys: Keys) -> list[str]:
    """A few persons with events and sessions of two releases, so the reads find something; the
    uuids of the events, acknowledged like the load's."""
    connection = Connection(
        port, {"Authorization": f"Bearer {keys.write}", "Content-Type": "application/json"}
    )
    uuids, started_at = [], (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    try:
        for n in range(PERSONS):
            uuids.append(str(uuid.uuid4()))
            start = {
                "session_id": f"s{n}", "distinct_id": f"user_{n}", "release": RELEASES[n % 2],
                "platform": "javascript", "started_at": started_at,
            }  # fmt: skip
            end = {"session_id": f"s{n}", "status": "crashed" if n % 10 == 0 else "exited"}
            for path, body in (
                (CAPTURE, event_body(f"user_{n}", uuids[-1])),
                ("/api/sessions/start", orjson.dumps(start)),
                ("/api/sessions/end", orjson.dumps(end)),
            ):
                status = connection.request("POST", path, body)
                if status != 200:
                    raise RuntimeError(f"seeding: POST {path} answered {status}")
    finally:
        connection.close()
    return uuids


def read_paths(keys: Keys) -> dict[str, str]:
    project = f"/api/projects/{keys.project_id}"
    return {
        "releases": f"{project}/releases",
        "health/trend (hour)": f"{project}/health/trend?interval=hour",
        "persons/{distinct_id}": "/api/analytics/persons/user_7",
        "events (100)": "/api/analytics/events?limit=100",
    }


@dataclass
class Load:
    """What the load sent and got: ingest and read samples, acknowledged and unanswered uuids."""

    ingest: list[Sample] = field(default_factory=list)
    reads: dict[str, list[Sample]] = field(default_factory=dict)
    acknowledged: list[str] = field(default_factory=list)
    not_acknowledged: list[str] = field(default_factory=list)
    started: float = 0.0
    seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    load_averages: tuple[float, float] = (0.0, 0.0)  # the machine's, before and after (1 min)


def sustained_load(
    port: int, keys: Keys, layout: Layout, log: Path
) -> tuple[Load, PipelineRun | None]:
    """The load, with ``loom run`` of the current hour started ``PIPELINE_AT`` into it (None if
    the load stopped before: ``MAX_EVENTS`` reached)."""
    load = Load(reads={name: [] for name in read_paths(keys)})
    ingest_headers = {"Authorization": f"Bearer {keys.write}", "Content-Type": "application/json"}
    per_connection = MAX_EVENTS // CONNECTIONS
    acknowledged: list[list[str]] = [[] for _ in range(CONNECTIONS)]
    not_acknowledged: list[list[str]] = [[] for _ in range(CONNECTIONS)]
    sent = [0] * CONNECTIONS
    stop = threading.Event()

    def ingest(n: int, connection: Connection) -> Sample:
        event_uuid = str(uuid.uuid4())
        sample = timed(connection, "POST", CAPTURE, event_body(f"user_{n % PERSONS}", event_uuid))
        (acknowledged if sample.status == 200 else not_acknowledged)[n].append(event_uuid)
        sent[n] += 1
        if sent[n] >= per_connection:
            stop.set()
        return sample

    def reader(n: int) -> None:
        connection = Connection(port, {"Authorization": f"Bearer {keys.read}"})
        paths = list(read_paths(keys).items())
        index = n
        try:
            while not stop.wait(READ_PAUSE_SECONDS):
                name, path = paths[index % len(paths)]
                load.reads[name].append(timed(connection, "GET", path))
                index += 1
        finally:
            connection.close()

    runs: list[PipelineRun] = []

    def pipeline() -> None:
        if not stop.wait(SECONDS * PIPELINE_AT):
            hour = current_hour()
            runs.append(PipelineRun(layout, hour, hour, log).start())
            runs[0].wait()

    readers = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    runner = threading.Thread(target=pipeline)
    cpu_before, load.started, load_before = (
        time.process_time(),
        time.perf_counter(),
        os.getloadavg(),
    )
    for thread in [*readers, runner]:
        thread.start()
    load.ingest = closed_loop(CONNECTIONS, SECONDS, ingest, port, ingest_headers, stop)
    load.seconds = time.perf_counter() - load.started
    load.client_cpu_seconds = time.process_time() - cpu_before
    load.load_averages = (load_before[0], os.getloadavg()[0])
    stop.set()
    for thread in readers:
        thread.join()
    runner.join()  # the run may outlast the load: it is waited for, not cut short
    load.acknowledged = [u for per in acknowledged for u in per]
    load.not_acknowledged = [u for per in not_acknowledged for u in per]
    return load, next(iter(runs), None)


def healthz_baseline(port: int) -> Stats:
    """The same client, as many connections, on a request that does nothing."""
    started = time.perf_counter()
    samples = closed_loop(
        CONNECTIONS, BASELINE_SECONDS, lambda n, c: timed(c, "GET", "/healthz"), port, {}
    )
    return Stats.of(samples, time.perf_counter() - started)


def idle_reads(port: int, keys: Keys) -> dict[str, Stats]:
    """Each read route alone, one request at a time, nothing else running."""
    connection = Connection(port, {"Authorization": f"Bearer {keys.read}"})
    found = {}
    try:
        for name, path in read_paths(keys).items():
            started = time.perf_counter()
            samples = [timed(connection, "GET", path) for _ in range(IDLE_READS)]
            found[name] = Stats.of(samples, time.perf_counter() - started)
    finally:
        connection.close()
    return found


# ---------------------------------------------------------------------------------------------
# Acknowledged == landed


def landed_uuids(layout: Layout, org_id: str) -> Counter[str]:
    files = layout.stream_dir("events").glob(f"org_id={org_id}/date=*/hour=*/{PART_GLOB}")
    return Counter(
        orjson.loads(line)["uuid"] for path in files for line in path.read_bytes().splitlines()
    )


def lake_uuids(layout: Layout, org_id: str) -> Counter[str]:
    con = connect_reader(layout)
    try:
        rows = con.execute("SELECT uuid FROM raw.events WHERE org_id = ?", [org_id]).fetchall()
    finally:
        con.close()
    return Counter(row[0] for row in rows)


@dataclass(frozen=True)
class Exactness:
    """Acknowledged uuids against those stored: missing, doubled, and stored unacknowledged."""

    where: str
    acknowledged: int
    stored: int
    missing: int
    doubled: int
    unacknowledged: int

    @classmethod
    def of(cls, where: str, acknowledged: set[str], stored: Counter[str]) -> Exactness:
        return cls(
            where,
            len(acknowledged),
            sum(stored.values()),
            sum(1 for u in acknowledged if u not in stored),
            sum(1 for u in acknowledged if stored[u] > 1),
            sum(1 for u in stored if u not in acknowledged),
        )

    @property
    def exact(self) -> bool:
        return self.missing == self.doubled == 0


# ---------------------------------------------------------------------------------------------
# The report


def phases(load: Load, run: PipelineRun | None) -> list[tuple[str, Stats]]:
    """The ingest answers before, during and after the pipeline run, within the load."""
    end = load.started + load.seconds
    bounds = [("whole load", load.started, end)]
    if run is not None:
        run_end = min(run.ended, end)
        bounds += [
            ("before the pipeline run", load.started, run.started),
            ("during the pipeline run", run.started, run_end),
        ]
        if run_end < end:
            bounds.append(("after the pipeline run", run_end, end))
    return [
        (
            f"{name} ({first - load.started:.0f} to {last - load.started:.0f} s)",
            Stats.of([s for s in load.ingest if first <= s.sent < last], last - first),
        )
        for name, first, last in bounds
    ]


def _row(name: str, stats: Stats, baseline: Stats) -> str:
    return (
        f"| {name} | {stats.count:,} | {stats.other:,} | {stats.rate:,.0f} | {stats.p50:.1f}"
        f" | {stats.p99:.1f} | {stats.rate / baseline.rate:.2f}x | {stats.p50 / baseline.p50:.1f}x"
        f" | {stats.p99 / baseline.p99:.1f}x |"
    )


def report(
    baseline: Stats,
    idle: dict[str, Stats],
    load: Load,
    runs: dict[str, PipelineRun | None],
    checks: list[Exactness],
) -> str:
    """The results as Markdown; ``runs`` by name, the one under load named ``MID_RUN``."""
    lines = [
        "# Sustained load benchmark",
        "",
        f"`loom serve` (subprocess, default settings, its own data directory and lake) on"
        f" loopback. Load: {load.seconds:.0f} s of {CONNECTIONS} connections posting sync single"
        f" events to `{CAPTURE}` (200 once fsynced), {READERS} connections reading the read"
        f" routes with an rw key ({READ_PAUSE_SECONDS:g} s between requests), and `loom run"
        f" --hour <current hour>` started {SECONDS * PIPELINE_AT:.0f} s in. Client: Python,"
        " one thread and one keep-alive `http.client` connection per connection; the baseline is"
        f" the same client with as many connections on `GET /healthz` for {BASELINE_SECONDS:g} s"
        " just before the load.",
        f"Machine: {os.cpu_count()} CPU(s), {platform.system()} {platform.machine()}, Python"
        f" {platform.python_version()}; its load average (1 min, whatever else runs on it) was"
        f" {load.load_averages[0]:.1f} as the load began and {load.load_averages[1]:.1f} as it"
        f" ended. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| traffic | 200s | other answers | per s | p50 ms | p99 ms | rate vs baseline"
        " | p50 vs baseline | p99 vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        _row(f"baseline: `GET /healthz`, {CONNECTIONS} connections", baseline, baseline),
    ]
    lines += [
        _row(f"ingest, {name}", stats, baseline) for name, stats in phases(load, runs[MID_RUN])
    ]
    lines += [
        "",
        f"Read routes, alone and idle ({IDLE_READS} sequential requests each, before the load)"
        " and under the load:",
        "",
        "| route | idle p50 ms | idle p99 ms | load 200s | load other | load p50 ms | load p99 ms"
        " | load/idle p50 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, samples in load.reads.items():
        alone, loaded = idle[name], Stats.of(samples, load.seconds)
        lines.append(
            f"| {name} | {alone.p50:.1f} | {alone.p99:.1f} | {loaded.count:,} | {loaded.other:,}"
            f" | {loaded.p50:.1f} | {loaded.p99:.1f} | {loaded.p50 / alone.p50:.1f}x |"
        )
    lines += [
        "",
        "Pipeline runs (`loom run`):",
        "",
        "| run | seconds | its summary |",
        "|---|---:|---|",
    ]
    for name, run in runs.items():
        if run is None:
            lines.append(f"| {name} | | not started: the load ended first |")
        else:
            lines.append(f"| {name} | {run.seconds:.0f} | `{run.summary}` |")
    lines += [
        "",
        "Acknowledged == landed (every acknowledged uuid stored exactly once):",
        "",
        "| where | acknowledged | stored | missing | doubled | stored, not acknowledged |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {c.where} | {c.acknowledged:,} | {c.stored:,} | {c.missing:,} | {c.doubled:,}"
        f" | {c.unacknowledged:,} |"
        for c in checks
    ]
    verdict = "holds" if all(c.exact for c in checks) else "**DOES NOT HOLD**"
    client_share = load.client_cpu_seconds / load.seconds
    lines += [
        "",
        f"Acknowledged == landed: **{verdict}**. Requests the client saw fail:"
        f" {len(load.not_acknowledged):,} (their events may or may not have landed).",
        f"The client itself used {load.client_cpu_seconds:.0f} s of CPU during the load"
        f" ({client_share:.0%} of one core), on the same cores as the server.",
        f"Reference: {REFERENCE}; another client and another machine state, so compare"
        " the ratios rather than the absolute numbers.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="loom-bench-load-") as tmp:
        layout = Layout(Path(tmp) / "data")
        keys = create_keys(layout)
        port, first_hour = free_port(), current_hour()
        logs = Path(tmp)
        with loom_serve(layout, port, logs / "serve.log"):
            seeded = seed(port, keys)
            print("seeded; first pipeline run (so that reads have a snapshot)", flush=True)
            first_run = PipelineRun(layout, first_hour, current_hour(), logs / "run-seed.log")
            first_run.start().wait()
            if first_run.returncode != 0:
                raise RuntimeError(f"the first loom run failed:\n{tail(first_run.log)}")
            print(f"  {first_run.summary}", flush=True)
            baseline = healthz_baseline(port)
            idle = idle_reads(port, keys)
            print(f"baseline {baseline.rate:,.0f} req/s; {SECONDS:g} s of load", flush=True)
            load, mid_run = sustained_load(port, keys, layout, logs / "run-mid.log")
        acknowledged = set(seeded) | set(load.acknowledged)
        checks = [Exactness.of("landing files", acknowledged, landed_uuids(layout, keys.org_id))]
        print("API stopped; final pipeline run over every received hour", flush=True)
        final_run = PipelineRun(layout, first_hour, current_hour(), logs / "run-final.log")
        final_run.start().wait()
        if final_run.returncode != 0:
            raise RuntimeError(f"the final loom run failed:\n{tail(final_run.log)}")
        checks.append(
            Exactness.of("`raw.events` of the lake", acknowledged, lake_uuids(layout, keys.org_id))
        )
        runs = {"initial (API idle)": first_run, MID_RUN: mid_run, "final (API stopped)": final_run}
        text = report(baseline, idle, load, runs, checks)
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    if not all(check.exact for check in checks):
        raise RuntimeError(f"acknowledged events were lost or doubled; see {RESULTS}")


if __name__ == "__main__":
    main()
