"""How soon a publish reaches the read API, and what the steps on the way cost
(``python -m bench publish``).

It uses the read benchmark's warehouse (:func:`bench.bench_read.build_warehouse`: the same
``LOOM_BENCH_READ_*`` scale settings, cached under ``bench/.work/``). Each step is measured in the
same run as the baseline it replaced, alternating the two:

* *is there a new publish?* The catalog probe (:class:`warehouse.catalog_probe.CatalogProbe`: the
  SQLite catalog's files' size and time) against the DuckLake query of the newest publish, which
  the API used to run once a second;
* *opening a published snapshot*, up to its first query: attaching it to a connection kept ready
  with the extensions loaded, against opening a new connection, as the API did before;
* *publish to answer*: the API (``uvicorn`` in a subprocess, as in production) is asked for
  ``releases`` every 20 ms while this process, another process as Dagster's run is, publishes
  every ``LOOM_BENCH_PUBLISH_PAUSE`` seconds (a publish a minute is the micro-batches' pace;
  the pause only has to let the API prepare its next connection); for each of
  ``LOOM_BENCH_PUBLISH_COUNT`` publishes, the time from ``publish()`` returning to the first
  answer naming it in ``Loom-Snapshot-Id``. Target: p95 at most 1 s.
"""

from __future__ import annotations

import http.client
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_read import Warehouse, _free_port, _percentile, _start_api, build_warehouse
from warehouse.catalog_probe import CatalogProbe
from warehouse.duck import attach_lake, connect_pipeline, connect_reader, unattached_connection
from warehouse.layout import naive_utc
from warehouse.published import latest_published, publish, published_snapshot_id

PUBLISHES = int(os.environ.get("LOOM_BENCH_PUBLISH_COUNT", "20"))
PAUSE_SECONDS = float(os.environ.get("LOOM_BENCH_PUBLISH_PAUSE", "2"))
LOOKS = 300
OPENS = 10
POLL_SECONDS = 0.02
TARGET_P95_SECONDS = 1.0
FIRST_QUERY = "SELECT count(*) FROM warehouse.analytics.release_health"
RESULTS = Path(__file__).parent / "results" / "publish.md"


def _alternating(
    first: Callable[[], object],
    second: Callable[[], object],
    rounds: int,
    before_each_round: Callable[[], object] = lambda: None,
) -> tuple[list[float], list[float]]:
    """Each step timed ``rounds`` times, alternating which goes first; seconds per call."""
    times: tuple[list[float], list[float]] = ([], [])
    for round_ in range(rounds):
        before_each_round()
        for which in (0, 1) if round_ % 2 == 0 else (1, 0):
            started = time.perf_counter()
            (first, second)[which]()
            times[which].append(time.perf_counter() - started)
    return times


def looks(warehouse: Warehouse) -> tuple[list[float], list[float]]:
    probe = CatalogProbe(warehouse.layout.lake)
    with connect_reader(warehouse.layout) as latest:
        measured = _alternating(probe.changed, lambda: latest_published(latest), LOOKS)
    probe.close()
    return measured


def opens(warehouse: Warehouse) -> tuple[list[float], list[float]]:
    layout = warehouse.layout
    snapshot = published_snapshot_id(layout)
    ready = []

    def attach_to_ready() -> None:
        con = ready.pop()
        attach_lake(con, layout.lake, snapshot=snapshot, read_only=True)
        con.execute(FIRST_QUERY).fetchall()
        con.close()

    def open_new() -> None:
        with connect_reader(layout, snapshot=snapshot) as con:
            con.execute(FIRST_QUERY).fetchall()

    # The ready connection is made beforehand, untimed, as the API makes it before a publish.
    return _alternating(
        attach_to_ready,
        open_new,
        OPENS,
        before_each_round=lambda: ready.append(unattached_connection(layout)),
    )


def _snapshot_of(connection: http.client.HTTPConnection, path: str, key: str) -> int:
    """The snapshot the API answered ``path`` from."""
    connection.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    response = connection.getresponse()
    response.read()
    return int(response.headers["Loom-Snapshot-Id"])


def publish_to_answer(warehouse: Warehouse) -> list[float]:
    port = _free_port()
    api = _start_api(warehouse.layout, port)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    path = f"/api/projects/{warehouse.project_id}/releases"
    lags = []
    try:
        _snapshot_of(connection, path, warehouse.key)  # opened
        with connect_pipeline(warehouse.layout) as pipeline:
            for _ in range(PUBLISHES):
                time.sleep(PAUSE_SECONDS)
                snapshot = publish(pipeline, naive_utc(datetime.now(UTC)))
                published = time.monotonic()
                while _snapshot_of(connection, path, warehouse.key) != snapshot:
                    time.sleep(POLL_SECONDS)
                lags.append(time.monotonic() - published)
                print(f"  publish {snapshot}: answered {lags[-1] * 1000:.0f} ms later", flush=True)
    finally:
        connection.close()
        api.terminate()
        api.wait(timeout=30)
    return lags


def main() -> None:
    warehouse = build_warehouse()
    probe, query = looks(warehouse)
    ready, new = opens(warehouse)
    lags = publish_to_answer(warehouse)
    p50, p95 = statistics.median(lags), _percentile(lags, 0.95)
    rows = [
        (
            "is there a new publish? (µs)",
            "catalog probe",
            statistics.median(probe) * 1e6,
            "DuckLake query",
            statistics.median(query) * 1e6,
        ),
        (
            "open a snapshot, to its first query (ms)",
            "attach to a ready connection",
            statistics.median(ready) * 1e3,
            "open a new connection",
            statistics.median(new) * 1e3,
        ),
    ]
    lines = [
        "# Freshness",
        "",
        f"`python -m bench publish` on {platform.node()} ({os.cpu_count()} cores),"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the read benchmark's warehouse"
        f" ({warehouse.layout.data_dir.parent.name}). Medians of {LOOKS} looks and {OPENS} opens,"
        " alternating with their baseline.",
        "",
        "| step | now | median | before | median | now/before |",
        "|---|---|---:|---|---:|---:|",
        *(
            f"| {step} | {now} | {a:,.1f} | {before} | {b:,.1f} | {a / b:.3f}x |"
            for step, now, a, before, b in rows
        ),
        "",
        f"Publish to the first answer from it, over {len(lags)} publishes {PAUSE_SECONDS:g} s"
        f" apart: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms"
        f" (target p95 at most {TARGET_P95_SECONDS * 1000:.0f} ms:"
        f" {'met' if p95 <= TARGET_P95_SECONDS else 'NOT met'}).",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
