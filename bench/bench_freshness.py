"""Freshness: from an SDK's 200 to what readers see, with the pipeline as ``make up`` runs it
(``python -m bench freshness``).

1. **Idle**: ``loom serve`` alone on a data directory of its own, under the load for
   ``IDLE_SECONDS``: the ingest throughput and p99 this client gets with no pipeline running.
2. **Live**: ``loom up --no-demo`` on a fresh data directory (the API, and the Dagster UI and
   daemon whose micro-batch sensor builds what lands every ``LOOM_MICRO_BATCH_SECONDS``), under
   the same load for ``LIVE_SECONDS``. Every ``MARKER_EVERY_S`` a marker event and a marker
   crashed session (a release of its own) are posted; from each one's 200, the time until it is
   (a) in ``analytics.events`` on the snapshot ``loom sql`` attaches, (b) in the read API's
   release numbers, (c) in a ``release.health_changed`` on the live stream carrying its 0 %
   crash-free rate. The pipeline's share of the machine's CPU is read from ``/proc``.
3. **Fixed cost**: on the live warehouse, a quiet hour (``QUIET_HOUR_EVENTS`` generated events
   received in a past hour) run by ``loom run --hour``, wall clock as ``bench hourly`` measures
   it, against micro-batches of a single event through the sensor and the warm run worker (the
   run's duration in Dagster's run storage), ``FIXED_COST_RUNS`` times each, medians.

The load: ``EVENTS_PER_S`` events a second as batches of ``BATCH`` on ``/api/analytics/batch``,
and ``SESSIONS_PER_S`` session start/end pairs a second (one in twenty crashed), each request
sync (answered once fsynced), paced by ``SENDERS`` threads. Targets: p95 ≤ 120 s and max ≤ 180 s
for (a), (b) and (c); ingest throughput live ≥ 0.7x idle; a micro-batch's fixed cost ≤ 1/3 of
the quiet hour. Knobs: ``LOOM_BENCH_FRESHNESS_SECONDS`` (live, default 600),
``LOOM_BENCH_FRESHNESS_SHORT=1`` (a 60 s live phase with a 10 s cadence, for a quick check).
Loopback only; every wait is bounded. Writes ``bench/results/freshness.md``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import orjson

from bench.bench_ingest import free_port
from bench.bench_load import Connection, Keys, create_keys, percentile
from bench.generate import generate
from warehouse.duck import connect_reader
from warehouse.layout import Layout, floor_hour
from warehouse.published import published_snapshot_id

SHORT = os.environ.get("LOOM_BENCH_FRESHNESS_SHORT") == "1"
LIVE_SECONDS = float(os.environ.get("LOOM_BENCH_FRESHNESS_SECONDS", "60" if SHORT else "600"))
IDLE_SECONDS = 30.0 if SHORT else 120.0
CADENCE_S = 10 if SHORT else 60  # make up's default is 60
EVENTS_PER_S = 1000
BATCH = 50
SESSIONS_PER_S = 20
SENDERS = 8
MARKER_EVERY_S = 10.0
POLL_S = 0.5
SETTLE_S = 3 * CADENCE_S + 60  # how long markers posted at the end may take to appear
QUIET_HOUR_EVENTS = 2000
FIXED_COST_RUNS = 3
RUN_TIMEOUT_S = 600
TARGET_P95_S, TARGET_MAX_S, THROUGHPUT_FLOOR, FIXED_COST_SHARE = 120.0, 180.0, 0.7, 1 / 3
WORK_DIR = Path(__file__).parent / ".work" / "freshness"
RESULTS = Path(__file__).parent / "results" / "freshness.md"
LOOM = [sys.executable, "-m", "loom"]
WHERE = ("(a) analytics.events via loom sql", "(b) read API release numbers", "(c) SSE health")


# ---------------------------------------------------------------------------------------------
# Load


@dataclass
class Load:
    """The paced load of one phase: what was acknowledged, and how fast."""

    events_acknowledged: int = 0
    requests: int = 0
    failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, status: int, ms: float, events: int) -> None:
        with self.lock:
            self.requests += 1
            self.latencies_ms.append(ms)
            if status == 200:
                self.events_acknowledged += events
            else:
                self.failures += 1

    @property
    def events_per_s(self) -> float:
        return self.events_acknowledged / self.seconds if self.seconds else 0.0


def run_load(port: int, keys: Keys, seconds: float, load: Load) -> None:
    """``SENDERS`` threads, each sending its share of batches and session pairs on a schedule
    (late sends go at once, never more than the rate)."""
    headers = {"Authorization": f"Bearer {keys.write}", "Content-Type": "application/json"}
    per_sender_s = SENDERS / (EVENTS_PER_S / BATCH + SESSIONS_PER_S)
    batch_share = (EVENTS_PER_S / BATCH) / (EVENTS_PER_S / BATCH + SESSIONS_PER_S)
    started = time.perf_counter()

    def send(sender: int) -> None:
        connection = Connection(port, headers)
        due, n = started + sender * per_sender_s / SENDERS, 0
        while (now := time.perf_counter()) < started + seconds:
            if now < due:
                time.sleep(due - now)
            if (n * batch_share) % 1 < batch_share:  # batches and sessions, interleaved
                body = orjson.dumps(
                    {"batch": [event(f"load-{sender}-{n}-{i}") for i in range(BATCH)]}
                )
                sent = time.perf_counter()
                status = connection.request("POST", "/api/analytics/batch", body)
                load.record(status, (time.perf_counter() - sent) * 1000, BATCH)
            else:
                for path, body in session_pair(f"s-{sender}-{n}", crashed=n % 20 == 0):
                    sent = time.perf_counter()
                    status = connection.request("POST", path, body)
                    load.record(status, (time.perf_counter() - sent) * 1000, 0)
            n += 1
            due += per_sender_s
        connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - started


def event(distinct_id: str, name: str = "page_viewed") -> dict:
    return {"event": name, "distinct_id": distinct_id, "uuid": str(uuid.uuid4()),
            "properties": {"plan": "pro", "$current_url": "/pricing"}}  # fmt: skip


def session_pair(session_id: str, crashed: bool, release: str = "1.4.0") -> list[tuple[str, bytes]]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    start = {"session_id": session_id, "distinct_id": f"u-{session_id}", "release": release,
             "platform": "javascript", "started_at": now}  # fmt: skip
    end = {"session_id": session_id, "status": "crashed" if crashed else "exited",
           "crash_count": int(crashed), "ended_at": now, "duration_ms": 1000}  # fmt: skip
    return [("/api/sessions/start", orjson.dumps(start)), ("/api/sessions/end", orjson.dumps(end))]


# ---------------------------------------------------------------------------------------------
# Markers and where they show up


@dataclass
class Markers:
    posted: dict[int, float] = field(default_factory=dict)  # marker -> time of its 200
    failed: list[tuple[int, list[int]]] = field(default_factory=list)  # marker, statuses
    post_seconds: list[float] = field(default_factory=list)
    seen: dict[str, dict[int, float]] = field(default_factory=lambda: {w: {} for w in WHERE})
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def saw(self, where: str, marker: int) -> None:
        with self.lock:
            self.seen[where].setdefault(marker, time.monotonic())

    def delays(self, where: str) -> list[float]:
        return [self.seen[where][m] - at for m, at in self.posted.items() if m in self.seen[where]]

    def missing(self, where: str) -> int:
        return sum(1 for marker in self.posted if marker not in self.seen[where])


def post_markers(port: int, keys: Keys, seconds: float, markers: Markers) -> None:
    headers = {"Authorization": f"Bearer {keys.write}", "Content-Type": "application/json"}
    started, n = time.monotonic(), 0
    while time.monotonic() < started + seconds:
        connection = Connection(port, headers)
        sent = time.monotonic()
        body = orjson.dumps(event(f"marker-{n}", "bench_marker"))
        statuses = [connection.request("POST", "/api/analytics/capture", body)]
        for path, pair_body in session_pair(f"marker-{n}", crashed=True, release=f"marker-{n}"):
            statuses.append(connection.request("POST", path, pair_body))
        connection.close()
        markers.post_seconds.append(time.monotonic() - sent)
        if statuses == [200, 200, 200]:
            markers.posted[n] = time.monotonic()
        else:
            markers.failed.append((n, statuses))
        n += 1
        time.sleep(max(0.0, started + n * MARKER_EVERY_S - time.monotonic()))


def watch_loom_sql(layout: Layout, markers: Markers, stop: threading.Event) -> None:
    """(a): the newest published snapshot, as `loom sql` attaches it."""
    seen_snapshot = None
    while not stop.wait(POLL_S):
        snapshot = published_snapshot_id(layout)
        if snapshot is None or snapshot == seen_snapshot:
            continue
        seen_snapshot = snapshot
        with connect_reader(layout, snapshot=snapshot) as con:
            rows = con.execute(
                "SELECT distinct_id FROM analytics.events WHERE event = 'bench_marker'"
            ).fetchall()
        for (distinct_id,) in rows:
            markers.saw(WHERE[0], int(distinct_id.removeprefix("marker-")))


def watch_releases(base_url: str, keys: Keys, markers: Markers, stop: threading.Event) -> None:
    """(b): the marker's release in the release list, its crashed session counted."""
    url = f"{base_url}/api/projects/{keys.project_id}/releases"
    with httpx.Client(headers={"Authorization": f"Bearer {keys.read}"}, timeout=30) as client:
        while not stop.wait(POLL_S):
            response = client.get(url)
            if response.status_code != 200:
                continue
            for row in response.json()["releases"]:
                if row["release"].startswith("marker-") and row["crashed_sessions"] >= 1:
                    markers.saw(WHERE[1], int(row["release"].removeprefix("marker-")))


def watch_stream(base_url: str, keys: Keys, markers: Markers, stop: threading.Event) -> None:
    """(c): release.health_changed of the marker's release, with its 0 % crash-free rate."""
    url = f"{base_url}/api/projects/{keys.project_id}/sessions/stream"
    headers = {"Authorization": f"Bearer {keys.read}"}
    while not stop.is_set():
        try:
            with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=60)) as r:
                name = None
                for line in r.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:") and name == "release.health_changed":
                        data = orjson.loads(line[5:])
                        release = data.get("release", "")
                        if release.startswith("marker-") and data["crash_free_session_rate"] == 0:
                            markers.saw(WHERE[2], int(release.removeprefix("marker-")))
        except httpx.HTTPError:
            stop.wait(1.0)


# ---------------------------------------------------------------------------------------------
# Processes


def env_for(data_dir: Path, port: int, dagster_port: int | None = None) -> dict[str, str]:
    env = {**os.environ, "LOOM_DATA_DIR": str(data_dir), "LOOM_HOST": "127.0.0.1",
           "LOOM_PORT": str(port), "LOOM_MICRO_BATCH_SECONDS": str(CADENCE_S)}  # fmt: skip
    if dagster_port is not None:
        env["LOOM_DAGSTER_PORT"] = str(dagster_port)
    return env


@contextmanager
def running(command: list[str], env: dict[str, str], port: int, log: Path):
    """A `loom` process whose API answers on ``port``, stopped with SIGTERM at the end."""
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[-1]} did not start; see {log}")
            time.sleep(0.5)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def descendants(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if parent == pid:
            child = int(stat.parent.name)
            children += [child, *descendants(child)]
    return children


def pipeline_pids(up: subprocess.Popen) -> list[int]:
    """Every process of `loom up` but the API's: the Dagster UI, daemon, code servers, worker."""
    return [
        pid
        for pid in descendants(up.pid)
        if "serve" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    ]


# ---------------------------------------------------------------------------------------------
# Fixed cost


def wait_for_run(instance: dg.DagsterInstance, job: str, after: float) -> dg.RunRecord:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        records = instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)
        if records and records[0].create_timestamp.timestamp() > after:
            record = records[0]
            if record.dagster_run.is_finished:
                assert record.dagster_run.is_success, (
                    f"{job} run {record.dagster_run.run_id} failed"
                )
                return record
        time.sleep(0.5)
    raise TimeoutError(f"no {job} run finished within {RUN_TIMEOUT_S} s")


def micro_batch_seconds(layout: Layout, port: int, keys: Keys) -> float:
    """Post one event and wait for the micro-batch that builds it; that run's own duration."""
    instance = dg.DagsterInstance.from_config(str(layout.dagster_home))
    posted = time.time()
    body = orjson.dumps(event("fixed-cost"))
    headers = {"Authorization": f"Bearer {keys.write}", "Content-Type": "application/json"}
    assert Connection(port, headers).request("POST", "/api/analytics/capture", body) == 200
    record = wait_for_run(instance, "micro_batch", posted)
    return record.end_time - record.start_time


def quiet_hour_seconds(layout: Layout, hour: datetime, log: Path) -> float:
    started = time.perf_counter()
    with log.open("ab") as output:
        subprocess.run(
            [*LOOM, "run", "--hour", f"{hour:%Y-%m-%dT%H:00}"],
            env=env_for(layout.data_dir, free_port()), stdout=output, stderr=output,
            check=True, timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Measured:
    idle: Load = field(default_factory=Load)
    live: Load = field(default_factory=Load)
    markers: Markers = field(default_factory=Markers)
    pipeline_cpu_share: float = 0.0
    quiet_hour_s: list[float] = field(default_factory=list)
    micro_batch_s: list[float] = field(default_factory=list)
    micro_batch_runs: int = 0


def main() -> None:
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    WORK_DIR.mkdir(parents=True)
    measured = Measured()

    idle_layout = Layout(WORK_DIR / "idle")
    idle_keys = create_keys(idle_layout)
    port = free_port()
    print(f"idle: loom serve alone, {IDLE_SECONDS:.0f} s of load", flush=True)
    with running(
        [*LOOM, "serve"], env_for(idle_layout.data_dir, port), port, WORK_DIR / "idle.log"
    ):
        run_load(port, idle_keys, IDLE_SECONDS, measured.idle)

    layout = Layout(WORK_DIR / "live")
    keys = create_keys(layout)
    port, dagster_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    print(f"live: loom up, {LIVE_SECONDS:.0f} s of load, cadence {CADENCE_S} s", flush=True)
    env = env_for(layout.data_dir, port, dagster_port)
    with running([*LOOM, "up", "--no-demo"], env, port, WORK_DIR / "live.log") as up:
        prime(layout, port, keys)
        stop = threading.Event()
        watchers = [
            threading.Thread(target=watch_loom_sql, args=(layout, measured.markers, stop)),
            threading.Thread(target=watch_releases, args=(base_url, keys, measured.markers, stop)),
            threading.Thread(target=watch_stream, args=(base_url, keys, measured.markers, stop)),
        ]
        for watcher in watchers:
            watcher.start()
        pids = pipeline_pids(up)
        ticks_before, started = cpu_ticks(pids), time.monotonic()
        marking = threading.Thread(
            target=post_markers, args=(port, keys, LIVE_SECONDS, measured.markers)
        )
        marking.start()
        run_load(port, keys, LIVE_SECONDS, measured.live)
        marking.join()
        pids = sorted(set(pids) | set(pipeline_pids(up)))
        elapsed = time.monotonic() - started
        measured.pipeline_cpu_share = (
            (cpu_ticks(pids) - ticks_before) / os.sysconf("SC_CLK_TCK") / (elapsed * os.cpu_count())
        )
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline and any(measured.markers.missing(w) for w in WHERE):
            time.sleep(1)
        stop.set()

        print("fixed cost: a quiet hour against micro-batches of one event", flush=True)
        quiet = floor_hour(datetime.now(UTC)) - timedelta(hours=3)
        generate(layout, events=QUIET_HOUR_EVENTS, sessions=QUIET_HOUR_EVENTS // 10,
                 days=1 / 24, start=quiet, seed=3, progress=False)  # fmt: skip
        for _ in range(FIXED_COST_RUNS):
            measured.micro_batch_s.append(micro_batch_seconds(layout, port, keys))
            measured.quiet_hour_s.append(quiet_hour_seconds(layout, quiet, WORK_DIR / "quiet.log"))
        for watcher in watchers:
            watcher.join(timeout=70)
        with dg.DagsterInstance.from_config(str(layout.dagster_home)) as instance:
            measured.micro_batch_runs = len(
                instance.get_run_records(dg.RunsFilter(job_name="micro_batch"))
            )

    report = render(measured)
    print(report)
    RESULTS.write_text(report)


def prime(layout: Layout, port: int, keys: Keys) -> None:
    """A first batch, so the lake and its tables exist before anything is timed."""
    headers = {"Authorization": f"Bearer {keys.write}", "Content-Type": "application/json"}
    Connection(port, headers).request("POST", "/api/analytics/capture", orjson.dumps(event("p")))
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while published_snapshot_id(layout) is None:
        assert time.monotonic() < deadline, "the first micro-batch never published"
        time.sleep(1)


def render(measured: Measured) -> str:
    idle, live = measured.idle, measured.live
    ratio = live.events_per_s / idle.events_per_s if idle.events_per_s else 0.0
    quiet = statistics.median(measured.quiet_hour_s)
    batch = statistics.median(measured.micro_batch_s)
    lines = [
        "# Freshness benchmark",
        "",
        f"`python -m bench freshness`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end. "
        f"Live phase {LIVE_SECONDS:.0f} s under `loom up --no-demo` with a {CADENCE_S} s "
        f"cadence; load {EVENTS_PER_S:,} events/s (batches of {BATCH}) and {SESSIONS_PER_S} "
        f"session pairs/s; a marker every {MARKER_EVERY_S:.0f} s; "
        f"{measured.micro_batch_runs} micro-batches ran.",
        "",
        "| freshness, from the marker's 200 | p50 s | p95 s | max s | markers seen | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for where in WHERE:
        delays = measured.markers.delays(where)
        missing = measured.markers.missing(where)
        met = (
            delays
            and not missing
            and percentile(delays, 0.95) <= TARGET_P95_S
            and max(delays) <= TARGET_MAX_S
        )
        row = (
            f"{percentile(delays, 0.5):.1f} | {percentile(delays, 0.95):.1f} | {max(delays):.1f}"
            if delays
            else "- | - | -"
        )
        lines.append(
            f"| {where} | {row} | {len(delays)}/{len(measured.markers.posted)} | "
            f"p95 ≤ {TARGET_P95_S:.0f}, max ≤ {TARGET_MAX_S:.0f}: {'met' if met else 'NOT met'} |"
        )
    lines += [
        "",
        "| ingest | events/s | p50 ms | p99 ms | failed requests |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, load in (("pipeline idle (`loom serve`)", idle), ("live (`loom up`)", live)):
        lines.append(
            f"| {name} | {load.events_per_s:,.0f} | {percentile(load.latencies_ms, 0.5):.1f} | "
            f"{percentile(load.latencies_ms, 0.99):.1f} | {load.failures} |"
        )
    lines += [
        "",
        f"- Ingest throughput live / idle: **{ratio:.2f}x** (target ≥ {THROUGHPUT_FLOOR}x: "
        f"{'met' if ratio >= THROUGHPUT_FLOOR else 'NOT met'}).",
        f"- The pipeline's share of the machine's CPU during the live phase: "
        f"{measured.pipeline_cpu_share:.0%}.",
        f"- Markers: {len(measured.markers.posted)} posted, posting took at most "
        f"{max(measured.markers.post_seconds, default=0):.1f} s; refused: "
        f"{measured.markers.failed or 'none'}.",
        f"- A micro-batch of one event, its run in Dagster (median of "
        f"{len(measured.micro_batch_s)}): {batch:.1f} s "
        f"({', '.join(f'{s:.1f}' for s in measured.micro_batch_s)}); a quiet hour "
        f"({QUIET_HOUR_EVENTS:,} events), `loom run --hour` wall clock: {quiet:.1f} s "
        f"({', '.join(f'{s:.1f}' for s in measured.quiet_hour_s)}): **{batch / quiet:.2f}** "
        f"of it (target ≤ {FIXED_COST_SHARE:.2f}: "
        f"{'met' if batch / quiet <= FIXED_COST_SHARE else 'NOT met'}).",
        "",
    ]
    return "\n".join(lines)
