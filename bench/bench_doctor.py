"""What `loom doctor` costs, against reading the same table in full.

A lake in a temporary directory gets one events-like table of ``ROWS`` rows (uuids, ids, a JSON
``properties`` per row, timestamps; written as the pipeline writes, in files of the lake's
target size). Then, each ``REPEATS`` times, the median kept:

1. the *baseline*: one query through the lake that decodes every value of the table
   (``count(*), min(hash(COLUMNS(*)))``): what any full read of it costs here, now;
2. the doctor's deep check: listing the live files from the catalog and checking each (size,
   footer, row count, every page decoded), file by file as ``loom doctor`` does;
3. the quick check (``loom doctor --quick``): the same without decoding pages.

Absolute numbers on a shared 2-core machine mean little: the table gives each as a ratio to the
baseline. Knobs: ``LOOM_BENCH_DOCTOR_ROWS`` (default 3,000,000), ``LOOM_BENCH_DOCTOR_REPEATS``
(default 3). Writes bench/results/doctor.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from warehouse.duck import connect_pipeline, connect_reader
from warehouse.lake_files import check, live_files
from warehouse.layout import Layout
from warehouse.maintenance import ensure_lake_options

ROWS = int(os.environ.get("LOOM_BENCH_DOCTOR_ROWS", "3000000"))
REPEATS = int(os.environ.get("LOOM_BENCH_DOCTOR_REPEATS", "3"))
RESULTS = Path(__file__).parent / "results" / "doctor.md"
EVENTS = f"""
    CREATE TABLE analytics.fct_events AS
    SELECT uuid()::VARCHAR AS uuid, 'org_' || (i % 7) AS org_id, i % 3 AS project_id,
        'production' AS environment, 'event_' || (i % 40) AS event,
        'user_' || (i % 50000) AS distinct_id, uuid()::VARCHAR AS person_id,
        ('{{"currency": "EUR", "amount": ' || (i % 977) || ', "path": "/p/' || (i % 313)
            || '"}}')::JSON AS properties,
        TIMESTAMP '2026-01-01' + INTERVAL (i) SECOND AS timestamp,
        TIMESTAMP '2026-01-01' + INTERVAL (i + 5) SECOND AS received_at
    FROM range({ROWS}) AS r(i)
"""


def _median_seconds(action: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="loom-bench-doctor-") as root:
        layout = Layout(Path(root) / "data")
        with connect_pipeline(layout) as con:
            ensure_lake_options(con)
            con.execute("CREATE SCHEMA analytics")
            con.execute(EVENTS)
        load = os.getloadavg()[0]
        with connect_reader(layout) as con:
            [(latest,)] = con.execute(
                "SELECT id FROM ducklake_current_snapshot('warehouse')"
            ).fetchall()
            files = live_files(con, layout.lake.data_path, [latest])
            size = sum(file.size_bytes for file in files)

            def full_read() -> object:
                sql = "SELECT count(*), min(hash(COLUMNS(*))) FROM analytics.fct_events"
                return con.execute(sql).fetchall()

            def doctor(deep: bool) -> object:
                listed = live_files(con, layout.lake.data_path, [latest])
                return [check(con, file, deep=deep) for file in listed]

            baseline = _median_seconds(full_read)
            deep = _median_seconds(lambda: doctor(True))
            quick = _median_seconds(lambda: doctor(False))
            assert doctor(True) == [None] * len(files)
    rows = [
        ("baseline: a full read of the table through the lake", baseline),
        ("`loom doctor` (every page decoded, file by file)", deep),
        ("`loom doctor --quick` (sizes, footers, row counts)", quick),
    ]
    lines = [
        "# `loom doctor` benchmark",
        "",
        f"One events-like table of {ROWS:,} rows in {len(files)} Parquet files ({size / 1e6:,.0f}"
        f" MB) in a fresh lake; median of {REPEATS} runs each. Machine: {os.cpu_count()} CPU(s),"
        f" {platform.system()} {platform.machine()}, Python {platform.python_version()}; load"
        f" average {load:.1f} as it began. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| what | seconds | MB/s | vs baseline |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {seconds:.2f} | {size / 1e6 / seconds:,.0f} | {seconds / baseline:.2f}x |"
            for name, seconds in rows
        ),
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
