"""What the lake costs the pipeline, and what maintenance keeps it at (``python -m bench lake``).

From the same generated landing files, two warehouses are built up to one day of history: the
lake (the pipeline's storage) and, as the baseline, the same dbt models in one plain local DuckDB
file (profile target ``file``: no catalog database, no Parquet, no snapshots). Then both run the
next hours in turns, as the hourly pipeline does: load the hour's files into ``raw.*``, ``dbt
build`` its window (data tests included; views and table macros, built with the history, left
out), and — the lake only — compact its files and publish.
The ratio lake / file of the median hourly run must stay at most 1.3.

The lake then goes on alone to ``LOOM_BENCH_LAKE_RUNS`` hourly runs (default 48) with its
per-run compaction; the live data and delete files per table must stay under 20. Finally the
daily snapshot expiry runs. Publishing is timed on every run: it records one row, whatever the
size of the lake.

Scale with ``LOOM_BENCH_LAKE_EVENTS_PER_DAY`` (default 50,000; sessions are a tenth). Writes
``bench/results/lake.md``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from bench.generate import generate
from warehouse import dbt
from warehouse.duck import connect_pipeline
from warehouse.layout import STREAMS, Layout
from warehouse.maintenance import (
    SnapshotRetention,
    expire_snapshots,
    live_data_files,
    maintain_after_run,
)
from warehouse.published import publish
from warehouse.raw_load import load_hours

WORK_DIR = Path(__file__).parent / ".work" / "lake"
RESULTS = Path(__file__).parent / "results" / "lake.md"
START = datetime(2026, 1, 1)
# The pipeline's hourly build: every model, and the data tests tagged hourly, over the window.
HOURLY_BUILD = [*dbt.HOURLY_BUILD, *dbt.HOURLY_SELECTION]
# ... once the first run built the views and table macros: they change with the project only.
LATER_BUILD = [*HOURLY_BUILD, "--exclude", dbt.DEFINITIONS]
RATIO_LIMIT = 1.3
FILES_LIMIT = 20
COMPARED_RUNS = 6


@dataclass
class Measured:
    events_per_day: int
    lake_runs: list[dict[str, float]] = field(default_factory=list)
    file_runs: list[dict[str, float]] = field(default_factory=list)
    files_per_table: dict[str, int] = field(default_factory=dict)
    files_after_runs: list[int] = field(default_factory=list)
    expiry: tuple[int, int, float] = (0, 0, 0.0)


def main() -> None:
    events_per_day = int(os.environ.get("LOOM_BENCH_LAKE_EVENTS_PER_DAY", "50000"))
    runs = max(COMPARED_RUNS, int(os.environ.get("LOOM_BENCH_LAKE_RUNS", "48")))
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    lake = Layout(WORK_DIR / "lake")
    plain = Layout(WORK_DIR / "file")
    target = WORK_DIR / "dbt-target"
    days = 1 + runs / 24 + 1
    generate(
        lake,
        events=int(events_per_day * days),
        sessions=int(events_per_day // 10 * days),
        days=days,
        seed=11,
        orgs=2,
        start=START,
        progress=False,
    )
    plain.data_dir.mkdir(parents=True)
    plain.landing_dir.symlink_to(lake.landing_dir.resolve(), target_is_directory=True)

    day_1 = START + timedelta(days=1)
    history = hours_between(START, day_1)
    print("building one day of history in both warehouses", flush=True)
    lake_run(lake, history, target, HOURLY_BUILD)
    file_run(plain, history, target, HOURLY_BUILD)

    measured = Measured(events_per_day)
    for n in range(runs):
        hour = day_1 + timedelta(hours=n)
        measured.lake_runs.append(lake_run(lake, [hour], target))
        if n < COMPARED_RUNS:  # in turns, so that both see the same machine load
            measured.file_runs.append(file_run(plain, [hour], target))
        with connect_pipeline(lake) as con:
            measured.files_after_runs.append(sum(live_data_files(con).values()))
        print(f"  run {n + 1}/{runs}: {measured.lake_runs[-1]['total']:.1f} s", flush=True)
    with connect_pipeline(lake) as con:
        measured.files_per_table = live_data_files(con)
        expiry = expire_snapshots(con, SnapshotRetention(timedelta(0), timedelta(0)))
    measured.expiry = (expiry.snapshots_expired, expiry.files_deleted, expiry.seconds)

    report = render(measured)
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    return [start + timedelta(hours=n) for n in range(int((end - start) / timedelta(hours=1)))]


def lake_run(
    layout: Layout, hours: list[datetime], target: Path, build: list[str] = LATER_BUILD
) -> dict[str, float]:
    """One pipeline run on the lake: raw load, dbt build, compaction, publish."""
    seconds: dict[str, float] = {}
    with connect_pipeline(layout) as con:
        _timed(seconds, "load", lambda: _load(con, layout, hours))
    window = dbt.window_vars(hours[0], hours[-1] + timedelta(hours=1))
    _timed(
        seconds,
        "dbt",
        lambda: dbt.run_dbt(build, layout=layout, vars=window, target_path=target),
    )
    with connect_pipeline(layout) as con:
        _timed(seconds, "compact", lambda: maintain_after_run(con))
        _timed(seconds, "publish", lambda: publish(con))
    seconds["total"] = sum(seconds.values())
    return seconds


def file_run(
    layout: Layout, hours: list[datetime], target: Path, build: list[str] = LATER_BUILD
) -> dict[str, float]:
    """The same run on one local DuckDB file (dbt's ``file`` target)."""
    seconds: dict[str, float] = {}
    with duckdb.connect(str(layout.data_dir / "warehouse.duckdb")) as con:
        con.execute("SET TimeZone = 'UTC'")
        _timed(seconds, "load", lambda: _load(con, layout, hours))
    window = dbt.window_vars(hours[0], hours[-1] + timedelta(hours=1))
    _timed(
        seconds,
        "dbt",
        lambda: dbt.run_dbt(
            [*build, "--target", "file"], layout=layout, vars=window, target_path=target
        ),
    )
    seconds["total"] = sum(seconds.values())
    return seconds


def _load(con: duckdb.DuckDBPyConnection, layout: Layout, hours: list[datetime]) -> None:
    for stream in STREAMS:
        load_hours(con, layout, stream, hours)


def _timed(seconds: dict[str, float], name: str, step: Callable[[], object]) -> None:
    started = time.perf_counter()
    step()
    seconds[name] = time.perf_counter() - started


def render(m: Measured) -> str:
    def median(runs: list[dict[str, float]], step: str) -> float:
        return statistics.median(run[step] for run in runs)

    compared = m.lake_runs[:COMPARED_RUNS]
    ratio = median(compared, "total") / median(m.file_runs, "total")
    worst_table, worst = max(m.files_per_table.items(), key=lambda item: item[1])
    publish_ms = [run["publish"] * 1000 for run in m.lake_runs]
    lines = [
        "# Lake benchmark",
        "",
        f"`python -m bench lake`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores:"
        f" {m.events_per_day:,} events and {m.events_per_day // 10:,} sessions a day (2 orgs,"
        " identity traffic, late and retried events), one day of history, then hourly runs.",
        "",
        "## An hourly run: the lake against one local DuckDB file",
        "",
        f"The first {COMPARED_RUNS} hourly runs, lake and file in turns (seconds, median):",
        "",
        "| storage | raw load | dbt build (tests included) | compaction | publish | run |",
        "|---|---:|---:|---:|---:|---:|",
        f"| DuckLake (SQLite catalog) | {median(compared, 'load'):.2f}"
        f" | {median(compared, 'dbt'):.2f} | {median(compared, 'compact'):.2f}"
        f" | {median(compared, 'publish'):.3f} | {median(compared, 'total'):.2f} |",
        f"| one DuckDB file (baseline) | {median(m.file_runs, 'load'):.2f}"
        f" | {median(m.file_runs, 'dbt'):.2f} | n/a | n/a | {median(m.file_runs, 'total'):.2f} |",
        "",
        f"**Lake / file: {ratio:.2f}x** (limit {RATIO_LIMIT}:"
        f" {'met' if ratio <= RATIO_LIMIT else 'NOT met'}).",
        "",
        "## Files after hourly runs with per-run compaction",
        "",
        f"{len(m.lake_runs)} hourly runs. Live data and delete files of the whole lake after run"
        f" 1, 12, 24, 48: {_files_after(m, (1, 12, 24, 48))}."
        f" Most files in one table at the end: **{worst}** (`{worst_table}`; limit"
        f" {FILES_LIMIT}: {'met' if worst < FILES_LIMIT else 'NOT met'}).",
        "",
        "| table | live files |",
        "|---|---:|",
        *(
            f"| `{table}` | {files} |"
            for table, files in sorted(m.files_per_table.items(), key=lambda item: -item[1])[:12]
        ),
        "",
        f"Daily expiry with a zero retention: {m.expiry[0]:,} snapshots expired and"
        f" {m.expiry[1]:,} files deleted in {m.expiry[2]:.2f} s.",
        "",
        "## Publishing",
        "",
        "Publishing records one row whatever the lake holds: median"
        f" {statistics.median(publish_ms):.1f} ms, max {max(publish_ms):.1f} ms over"
        f" {len(publish_ms)} publishes (the copy-based"
        " publish it replaces took 7 to 58 s at 10 M events).",
        "",
    ]
    return "\n".join(lines)


def _files_after(m: Measured, runs: tuple[int, ...]) -> str:
    return ", ".join(str(m.files_after_runs[n - 1]) for n in runs if n <= len(m.files_after_runs))


if __name__ == "__main__":
    main()
