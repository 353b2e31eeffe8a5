"""Ingest throughput and latency through real uvicorn over loopback.

Two servers run as subprocesses with the same uvicorn options: the ingest API, and a twin FastAPI
app with two endpoints that answer 200 without authenticating or landing anything:

* *baseline*: a plain FastAPI endpoint that parses the same JSON into the same request model
  (``BatchRequest``) as the API does. The API's extra cost over it is what ingest adds: key
  lookup, records, and the hand-over to the landing writer (plus its fsyncs when ``sync=true``).
* *parse only*: ``orjson.loads`` of the body and nothing else, the floor of any endpoint.

For batches of 1 and 100 events, a bounded number of concurrent httpx clients post for a fixed
time to each, and to the API with ``sync=false`` (answer after enqueue, on disk within 1 s) and
``sync=true`` (answer after fsync). A third server, the API with its Prometheus metrics off
(``LOOM_METRICS_ENABLED=false``), measures what counting costs: async throughput with metrics
against without. At the end the APIs are stopped (which flushes) and the landed records are
counted against the acknowledged ones.

Knobs: ``LOOM_BENCH_SECONDS`` per scenario (default 6), ``LOOM_BENCH_CONCURRENCY`` (default 4).
Targets: async batch-100 throughput at least 0.5x the baseline's; the metrics cost at most 5 %
of async throughput.
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from starlette.types import Message

from ingest_api.ingest.schemas.analytics import BatchRequest
from warehouse.layout import Layout
from warehouse.registry import Registry

SECONDS = float(os.environ.get("LOOM_BENCH_SECONDS", "6"))
ROUNDS = 3
CONCURRENCY = int(os.environ.get("LOOM_BENCH_CONCURRENCY", "4"))
WARMUP_SECONDS = 0.25
BATCH_SIZES = (1, 100)
TARGET_RATIO = 0.5
METRICS_COST_TARGET = 0.05
RESULTS = Path(__file__).parent / "results" / "ingest.md"
PATH = "/api/analytics/batch"
BASELINE, PARSE_ONLY, ASYNC, SYNC = "baseline", "parse only", "ingest async", "ingest sync"
ASYNC_NO_METRICS, SYNC_NO_METRICS = "ingest async, metrics off", "ingest sync, metrics off"


PARSE_ONLY_PATH = "/parse-only"
FLUSH_INTERVAL_S = 0.2


def baseline_app() -> FastAPI:
    """The twin app: parse the same body, answer 200, keep nothing."""
    app = FastAPI()

    @app.post(PATH)
    async def baseline(body: BatchRequest) -> dict[str, int]:
        return {"accepted": len(body.batch)}

    @app.post(PARSE_ONLY_PATH)
    async def parse_only(request: Request) -> Response:
        body = orjson.loads(await request.body())
        return Response(
            orjson.dumps({"accepted": len(body["batch"])}), media_type="application/json"
        )

    return app


@dataclass(frozen=True)
class Scenario:
    name: str
    batch: int
    url: str
    headers: dict[str, str]
    server_pid: int  # whose CPU time the scenario's requests cost


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    requests: int
    events: int
    seconds: float
    latencies_ms: list[float]
    acknowledged_events: int  # warm-up included
    server_cpu_s: float  # the server process's CPU time over the slice, warm-up included

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / (self.acknowledged_events / self.scenario.batch) * 1e6

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    app: str, port: int, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    argv = [
        sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, env={**os.environ, "LOOM_DATA_DIR": str(data_dir), **(env or {})}
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{app} did not start")


def bodies(batch: int, count: int = 20) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    return [
        orjson.dumps(
            {
                "batch": [
                    {
                        "event": "checkout_completed",
                        "distinct_id": f"user_{i % 997}",
                        "uuid": str(uuid.uuid4()),
                        "timestamp": now,
                        "properties": {
                            "plan": "pro", "currency": "USD", "amount": 49.99,
                            "$current_url": "https://shop.example/checkout", "items": 3,
                        },
                    }
                    for i in range(batch)
                ]
            }
        )
        for _ in range(count)
    ]  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(scenario: Scenario, seconds: float) -> Result:
    """``CONCURRENCY`` threads, each with its own keep-alive connection (a shared httpx pool
    serializes the clients and would measure itself instead of the server)."""
    cpu_before = cpu_seconds(scenario.server_pid)
    payloads = bodies(scenario.batch)
    headers = {**scenario.headers, "Content-Type": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(CONCURRENCY)]
    acknowledged = [0] * CONCURRENCY
    failures: list[str] = []
    measure_from = time.perf_counter() + WARMUP_SECONDS
    stop_at = measure_from + seconds

    def worker(n: int) -> None:
        with httpx.Client(timeout=30, headers=headers) as client:
            i = n
            while (sent := time.perf_counter()) < stop_at:
                response = client.post(scenario.url, content=payloads[i % len(payloads)])
                done = time.perf_counter()
                if response.status_code not in (200, 202):
                    failures.append(f"{response.status_code} {response.text[:200]}")
                    return
                acknowledged[n] += scenario.batch
                if sent >= measure_from:
                    latencies[n].append((done - sent) * 1000)
                i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{scenario.name}: {failures[0]}")
    elapsed = time.perf_counter() - measure_from
    measured = [latency for per_thread in latencies for latency in per_thread]
    return Result(
        scenario,
        len(measured),
        len(measured) * scenario.batch,
        elapsed,
        measured,
        sum(acknowledged),
        cpu_seconds(scenario.server_pid) - cpu_before,
    )


def metrics_cost_us(batch: int, data_dir: Path, requests: int = 1500) -> float:
    """What the metrics add to one async ingest request, in microseconds of this process's CPU:
    the whole app (middleware, routing, validation, the landing writer and its flushes) called
    in-process with the same requests, with its metrics and without, in interleaved rounds, the
    cheapest round of each kept. No network and no other server in between: the A/B
    comparison of two servers varies more from run to run than what is measured."""
    from ingest_api.main import create_app
    from warehouse.settings import Settings

    with Registry.open(Layout(data_dir)) as registry:
        key = registry.create_key("bench", "bench", "write").key
    body = bodies(batch, count=1)[0]
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {key}".encode()),
    ]

    async def received() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def sent(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] not in (200, 202):
            raise RuntimeError(f"the app answered {message['status']}")

    async def cpu_per_request(app: FastAPI) -> float:
        started = time.process_time()
        for _ in range(requests):
            scope = {
                "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "POST", "scheme": "http", "path": PATH, "raw_path": PATH.encode(),
                "query_string": b"sync=false", "root_path": "", "headers": headers,
                "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
            }  # fmt: skip
            await app(scope, received, sent)
        # The round's flushes count in the round: wait (off the CPU) until they are done.
        while app.state.writer.pending_records:
            await asyncio.sleep(0.01)
        await asyncio.sleep(2 * FLUSH_INTERVAL_S)
        return (time.process_time() - started) / requests * 1e6

    async def compare() -> float:
        apps = [
            create_app(
                Settings(
                    data_dir=data_dir,
                    metrics_enabled=enabled,
                    async_flush_interval_seconds=FLUSH_INTERVAL_S,
                )
            )
            for enabled in (False, True)
        ]
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
        ):
            rounds: list[list[float]] = [[], []]
            for _ in range(ROUNDS * 2):
                for i, app in enumerate(apps):
                    rounds[i].append(await cpu_per_request(app))
        print("in-process", batch, [round(x) for x in rounds[0]], [round(x) for x in rounds[1]])
        return min(rounds[1]) - min(rounds[0])

    return asyncio.run(compare())


def merge(slices: list[Result]) -> Result:
    return Result(
        slices[0].scenario,
        sum(r.requests for r in slices),
        sum(r.events for r in slices),
        sum(r.seconds for r in slices),
        [latency for r in slices for latency in r.latencies_ms],
        sum(r.acknowledged_events for r in slices),
        sum(r.server_cpu_s for r in slices),
    )


def measure(scenarios: list[Scenario]) -> list[Result]:
    """Each scenario runs in ``ROUNDS`` slices, interleaved with the others (in a rotating
    order), so that a background load on the machine hits the baseline and the API alike."""
    slices: list[list[Result]] = [[] for _ in scenarios]
    for round_ in range(ROUNDS):
        for i in range(len(scenarios)):
            index = (i + round_) % len(scenarios)
            slices[index].append(run(scenarios[index], SECONDS / ROUNDS))
    return [merge(per_scenario) for per_scenario in slices]


def table(results: list[Result]) -> str:
    def rate(name: str, batch: int) -> float:
        return next(
            r.events_per_s for r in results if (r.scenario.name, r.scenario.batch) == (name, batch)
        )

    lines = [
        "| endpoint | batch | events/s | requests/s | p50 ms | p99 ms "
        "| vs baseline | vs parse only | server CPU µs/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        batch = r.scenario.batch
        lines.append(
            f"| {r.scenario.name} | {batch} | {r.events_per_s:,.0f} | "
            f"{r.requests / r.seconds:,.0f} | {r.percentile(50):.2f} | {r.percentile(99):.2f} | "
            f"{r.events_per_s / rate(BASELINE, batch):.2f}x | "
            f"{r.events_per_s / rate(PARSE_ONLY, batch):.2f}x | {r.cpu_us_per_request:,.0f} |"
        )
    return "\n".join(lines)


def count_landed(layout: Layout) -> int:
    return sum(path.read_bytes().count(b"\n") for path in layout.landing_dir.rglob("part-*.ndjson"))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="loom-bench-") as tmp:
        layout = Layout(Path(tmp) / "data")
        with Registry.open(layout) as registry:
            key = registry.create_key("bench", "bench", "write").key
        api_port, baseline_port, bare_port = free_port(), free_port(), free_port()
        api = start_server("ingest_api.main:create_server_app", api_port, layout.data_dir)
        baseline = start_server("bench.bench_ingest:baseline_app", baseline_port, layout.data_dir)
        # The same app without its metrics: landing files name their process, so both share.
        bare = start_server(
            "ingest_api.main:create_server_app",
            bare_port,
            layout.data_dir,
            {"LOOM_METRICS_ENABLED": "false"},
        )
        auth = {"Authorization": f"Bearer {key}"}
        scenarios = []
        for batch in BATCH_SIZES:
            twin, ingest = f"http://127.0.0.1:{baseline_port}", f"http://127.0.0.1:{api_port}"
            bare_ingest = f"http://127.0.0.1:{bare_port}"
            scenarios += [
                Scenario(PARSE_ONLY, batch, f"{twin}{PARSE_ONLY_PATH}", {}, baseline.pid),
                Scenario(BASELINE, batch, f"{twin}{PATH}", {}, baseline.pid),
                Scenario(ASYNC, batch, f"{ingest}{PATH}?sync=false", auth, api.pid),
                Scenario(
                    ASYNC_NO_METRICS, batch, f"{bare_ingest}{PATH}?sync=false", auth, bare.pid
                ),
                Scenario(SYNC, batch, f"{ingest}{PATH}?sync=true", auth, api.pid),
                # The twin serves what the API serves, so that both have the same history.
                Scenario(SYNC_NO_METRICS, batch, f"{bare_ingest}{PATH}?sync=true", auth, bare.pid),
            ]
        try:
            results = measure(scenarios)
        finally:
            for server in (baseline, api, bare):
                server.send_signal(signal.SIGTERM)  # graceful: an API flushes what it queued
            for server in (baseline, api, bare):
                server.wait(timeout=30)
        landed = count_landed(layout)
        added = {
            batch: metrics_cost_us(batch, Path(tmp) / f"in-process-{batch}")
            for batch in BATCH_SIZES
        }
    ingested = (ASYNC, ASYNC_NO_METRICS, SYNC, SYNC_NO_METRICS)
    acknowledged = sum(r.acknowledged_events for r in results if r.scenario.name in ingested)

    text = table(results)
    by_row = {(r.scenario.name, r.scenario.batch): r.events_per_s for r in results}
    ratio = by_row[ASYNC, 100] / by_row[BASELINE, 100]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    cpu = {(r.scenario.name, r.scenario.batch): r.cpu_us_per_request for r in results}
    costs = {batch: added[batch] / cpu[ASYNC_NO_METRICS, batch] for batch in BATCH_SIZES}
    ab = {batch: cpu[ASYNC, batch] / cpu[ASYNC_NO_METRICS, batch] - 1 for batch in BATCH_SIZES}
    throughput = {
        batch: by_row[ASYNC, batch] / by_row[ASYNC_NO_METRICS, batch] for batch in BATCH_SIZES
    }
    metrics_verdict = "met" if max(costs.values()) <= METRICS_COST_TARGET else "NOT met"
    cost_text = "; ".join(
        f"batch {batch}: {added[batch]:.1f} µs added to {cpu[ASYNC_NO_METRICS, batch]:,.0f} µs, "
        f"{costs[batch]:.1%} (servers A/B: CPU per request {ab[batch]:+.1%}, throughput "
        f"{throughput[batch]:.2f}x)"
        for batch in BATCH_SIZES
    )
    report = f"""# Ingest benchmark

Real uvicorn over loopback (one worker each, access log off for both), `POST {PATH}`;
{CONCURRENCY} concurrent httpx clients (threads, one keep-alive connection each); {SECONDS:g} s
per row, measured in {ROUNDS} slices interleaved with the other rows, each after
{WARMUP_SECONDS:g} s of warm-up.
Baseline: a plain FastAPI endpoint that parses the same JSON body into the same request model
and returns 200 without landing; parse only: `orjson.loads` of the body and nothing else.
Machine: {os.cpu_count()} CPU(s), {platform.system()} {platform.machine()}, Python
{platform.python_version()}. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.

{text}

Target (async batch-100 throughput >= {TARGET_RATIO}x baseline): **{verdict}** ({ratio:.2f}x).
Target (Prometheus metrics cost <= {METRICS_COST_TARGET:.0%} of async throughput, against the same
API with `LOOM_METRICS_ENABLED=false`): **{metrics_verdict}** ({cost_text}). Judged on CPU
time, which bounds a saturated single-worker server's throughput: what the metrics add to a
request, measured in-process (interleaved, fastest round of each), against the server's CPU per
request without them. The servers' own A/B comparison is shown too, but on a machine shared with
other work two identical servers differ by ±10 % in CPU per request and by tens of percent in
wall-clock throughput from run to run.
Records on disk after shutdown: {landed:,} of {acknowledged:,} acknowledged by the API
(warm-up included){"" if landed == acknowledged else " -- MISMATCH"}.
"""
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)


if __name__ == "__main__":
    main()
