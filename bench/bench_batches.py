"""A day of one-minute micro-batches, simulated (``python -m bench batches``): do the lake's files
and its catalog stay bounded?

Every simulated minute lands a few records (``EVENTS_PER_MINUTE`` events, a session start and
end) received in that minute, and runs what a micro-batch runs, through the same functions the
Dagster assets call: the raw loads of the files not loaded yet, the dbt models over the unbuilt
window, compaction, a publish. Every simulated hour ends with what the closed hour's run does: the
hour reloaded whole and built with its tests, compaction, snapshot expiry (with the default
retention, on the simulated clock), a publish. No Dagster: it changes no file of the lake.

Reported each simulated hour: the most live files of any table, the lake's data files on disk,
and the catalog's rows (snapshots, data files, column statistics) and bytes. Target: fewer than
20 live files per table throughout, and a catalog that stops growing once the retention window
(``LOOM_LAKE_SNAPSHOT_RETENTION_HOURS``, 24) is full: its snapshots at the end at most 1.1x those
an hour after the window filled (hourly publishes, kept for time travel, still add one an hour).
``LOOM_BENCH_BATCHES_HOURS`` (default 30) sets the length; a batch costs 3-5 s here, so 24 hours
take about two.
Writes ``bench/results/batches.md``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from bench.generate import event_record, session_end_record, session_start_record, write_records
from warehouse import dbt
from warehouse.duck import connect_pipeline
from warehouse.layout import LAKE_ALIAS, STREAMS, Layout
from warehouse.maintenance import (
    SnapshotRetention,
    expire_snapshots,
    live_data_files,
    maintain_after_run,
)
from warehouse.published import publish
from warehouse.raw_load import load_hours, load_new_files, mark_built, newest_built, unbuilt_window
from warehouse.settings import Settings

HOURS = int(os.environ.get("LOOM_BENCH_BATCHES_HOURS", "30"))
EVENTS_PER_MINUTE = 20
START = datetime(2026, 3, 1)
FILES_LIMIT = 20
WORK_DIR = Path(__file__).parent / ".work" / "batches"
RESULTS = Path(__file__).parent / "results" / "batches.md"
CATALOG_TABLES = ("ducklake_snapshot", "ducklake_data_file", "ducklake_file_column_stats")
BATCH_BUILD = [*dbt.HOURLY_BUILD, *dbt.MODELS_SELECTION, "--exclude", dbt.DEFINITIONS]
HOUR_BUILD = [*dbt.HOURLY_BUILD, *dbt.HOURLY_SELECTION, "--exclude", dbt.DEFINITIONS]


@dataclass(frozen=True)
class HourState:
    hour: int
    most_files: int
    table_with_most: str
    data_files_on_disk: int
    catalog_rows: dict[str, int]
    catalog_bytes: int
    batch_seconds: float  # the hour's micro-batches, mean


def land_minute(layout: Layout, minute: datetime, n: int) -> None:
    received = minute + timedelta(seconds=30)
    events = [
        event_record(org_id="org_sim", project_id=1, event="page_viewed",
                     distinct_id=f"u{(n * 7 + i) % 500}", timestamp=received,
                     received_at=received, uuid=f"e-{n}-{i}")
        for i in range(EVENTS_PER_MINUTE)
    ]  # fmt: skip
    start = session_start_record(org_id="org_sim", project_id=1, session_id=f"s{n}",
                                 distinct_id=f"u{n % 500}", release="2.0.0",
                                 started_at=received, received_at=received)  # fmt: skip
    end = session_end_record(org_id="org_sim", project_id=1, session_id=f"s{n}",
                             ended_at=received, status="crashed" if n % 17 == 0 else "exited",
                             crash_count=int(n % 17 == 0), received_at=received)  # fmt: skip
    write_records(layout, "events", events, tag=f"m{n:05d}")
    write_records(layout, "sessions", [start, end], tag=f"m{n:05d}")


def micro_batch(
    con: duckdb.DuckDBPyConnection, layout: Layout, hour: datetime, at: datetime
) -> None:
    for stream in STREAMS:
        load_new_files(con, layout, stream, [hour], load_id=f"batch {at}")
    window = unbuilt_window(con)
    if window is not None:
        dbt.run_dbt(BATCH_BUILD, layout=layout, vars=dbt.window_vars(*window))
        mark_built(con, window)
    maintain_after_run(con)
    publish(con, newest_built(con), published_at=at)


def closed_hour(
    con: duckdb.DuckDBPyConnection, layout: Layout, hour: datetime, retention: SnapshotRetention
) -> None:
    at = hour + timedelta(hours=1, minutes=5)
    for stream in STREAMS:
        load_hours(con, layout, stream, [hour], load_id=f"hour {hour}")
    window = (hour, hour + timedelta(hours=1))
    dbt.run_dbt(HOUR_BUILD, layout=layout, vars=dbt.window_vars(*window))
    mark_built(con, window)
    maintain_after_run(con)
    expire_snapshots(con, retention, now=at, orphans=False)
    publish(con, newest_built(con), published_at=at)


def state(con: duckdb.DuckDBPyConnection, layout: Layout, hour: int, seconds: float) -> HourState:
    files = live_data_files(con)
    table, most = max(files.items(), key=lambda item: item[1])
    metadata = f"__ducklake_metadata_{LAKE_ALIAS}"
    rows = {
        name: con.execute(f"SELECT count(*) FROM {metadata}.{name}").fetchone()[0]
        for name in CATALOG_TABLES
    }
    catalog = layout.data_dir / "lake"
    size = sum(path.stat().st_size for path in catalog.glob("catalog.sqlite*"))
    on_disk = sum(1 for path in (catalog / "files").rglob("*.parquet"))
    return HourState(hour, most, table, on_disk, rows, size, seconds)


def main() -> None:
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    layout = Layout(WORK_DIR / "data")
    retention = SnapshotRetention.of(Settings(data_dir=layout.data_dir))
    land_minute(layout, START, 0)
    # every definition, once (unit tests are the suite's: a windowed build hands them its window)
    first_minute = (START, START + timedelta(minutes=1))
    dbt.build(layout, window=first_minute, exclude="resource_type:unit_test")
    states: list[HourState] = []
    with connect_pipeline(layout) as con:
        for hour_number in range(HOURS):
            hour = START + timedelta(hours=hour_number)
            started = time.perf_counter()
            for minute_number in range(60):
                n = hour_number * 60 + minute_number
                minute = hour + timedelta(minutes=minute_number)
                if n:
                    land_minute(layout, minute, n)
                micro_batch(con, layout, hour, minute + timedelta(seconds=59))
            batch_seconds = (time.perf_counter() - started) / 60
            closed_hour(con, layout, hour, retention)
            states.append(state(con, layout, hour_number + 1, batch_seconds))
            last = states[-1]
            print(
                f"hour {last.hour}: {last.most_files} files at most ({last.table_with_most}), "
                f"catalog {last.catalog_bytes / 1e6:.1f} MB {last.catalog_rows}, "
                f"{batch_seconds:.1f} s a batch",
                flush=True,
            )
            # after every hour: a run stopped early still leaves what it measured
            RESULTS.write_text(render(states, retention))
    print(RESULTS.read_text())


def render(states: list[HourState], retention: SnapshotRetention) -> str:
    most = max(state.most_files for state in states)
    last = states[-1]
    filled = int(retention.recent / timedelta(hours=1)) + 1
    if last.hour > filled:
        at_filled, at_last = (
            state.catalog_rows["ducklake_snapshot"] for state in (states[filled - 1], last)
        )
        growth = (
            f"{'bounded' if at_last <= 1.1 * at_filled else 'still growing'}: {at_last:,} "
            f"snapshots against {at_filled:,} at hour {filled}, when the {filled - 1} h "
            "retention window had filled"
        )
    else:
        growth = f"not judged: run longer than the {filled - 1} h retention window"
    lines = [
        "# A day of one-minute micro-batches, simulated",
        "",
        f"`python -m bench batches`, {len(states)} of {HOURS} simulated hours of one-minute "
        "micro-batches "
        f"({EVENTS_PER_MINUTE} events and a session a minute) and a closed-hour run each hour, "
        f"snapshots kept {retention.recent / timedelta(hours=1):g} h on the simulated clock, "
        f"publishes {retention.published.days} days.",
        "",
        f"- Live files of any table, at most: **{most}** (limit {FILES_LIMIT}: "
        f"{'met' if most < FILES_LIMIT else 'NOT met'}).",
        f"- Catalog after {last.hour} h: {last.catalog_bytes / 1e6:.1f} MB ({growth}).",
        "",
        "| hour | most live files (table) | data files on disk | snapshots | data file rows |"
        " column stats rows | catalog MB | s per batch |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in states:
        lines.append(
            f"| {s.hour} | {s.most_files} ({s.table_with_most}) | {s.data_files_on_disk:,} | "
            f"{s.catalog_rows['ducklake_snapshot']:,} | {s.catalog_rows['ducklake_data_file']:,} | "
            f"{s.catalog_rows['ducklake_file_column_stats']:,} | {s.catalog_bytes / 1e6:.1f} | "
            f"{s.batch_seconds:.1f} |"
        )
    return "\n".join(lines) + "\n"
