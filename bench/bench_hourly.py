"""What an hourly run costs against its data (``python -m bench hourly``).

Every figure is a ratio against a baseline measured in the same run. Pipeline runs are the real
thing: ``loom run`` in a subprocess (Dagster, the raw loads, the in-process dbt build with the
hourly data tests, compaction, publish), on the lake.

1. **A quiet hour end to end**: ``loom run --hour`` of an hour after 30 days of history (about
   2,000 events), wall clock from the shell. Target: 12 s or less.
2. **A big hour**: ``LOOM_BENCH_HOURLY_BIG_EVENTS`` (default 1,000,000) events received in one
   hour, ``loom run --hour`` on a fresh warehouse, against the same hour written by hand: DuckDB's
   ``read_json`` of its files into one local DuckDB file, then ``bench/full_build.sql``. Target:
   2.5x or less.
3. **Cost against history**: the hourly runs of a warehouse holding 1 day and of one holding 30
   days (``LOOM_BENCH_HOURLY_DAYS``), in turns. Target: 30 days / 1 day at most 1.3x, for the
   run and for its dbt step (models and hourly tests).
4. **Backfill**: the 30 days as one ``loom run --from --to`` against the same hours loaded and
   built by hand; target under 3x. And the raw load alone (``warehouse.raw_load.load_hours`` of
   every hour into a fresh lake) in events/s, against DuckDB reading the same files into a
   table; target 300,000 events/s or more.

Scale with ``LOOM_BENCH_HOURLY_EVENTS_PER_DAY`` (default 50,000; sessions are a tenth). Writes
``bench/results/hourly.md``.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from bench.generate import generate
from warehouse import dbt
from warehouse.duck import connect_pipeline
from warehouse.layout import STREAMS, Layout
from warehouse.raw_load import load_hours
from warehouse.streams import STREAM_COLUMNS

WORK_DIR = Path(__file__).parent / ".work" / "hourly"
RESULTS = Path(__file__).parent / "results" / "hourly.md"
SCRIPT = Path(__file__).parent / "full_build.sql"
LOOM = Path(sys.executable).with_name("loom")
START = datetime(2026, 1, 1)
HANDWRITTEN_STREAMS = ("events", "identities", "sessions")  # what full_build.sql reads
QUIET_LIMIT_S = 12.0
BIG_HOUR_LIMIT = 2.5
HISTORY_LIMIT = 1.3
BACKFILL_LIMIT = 3.0
RAW_LOAD_TARGET = 300_000
DAGSTER_SECONDS = re.compile(r"· ([0-9.]+)s$", re.MULTILINE)
DBT_SECONDS = re.compile(r"Finished running .* \(([0-9.]+)s\)\.")


@dataclass(frozen=True)
class LoomRun:
    wall_s: float  # from the shell: process start, imports, Dagster, the run itself
    in_dagster_s: float  # the run as Dagster executed it
    dbt_s: float  # its dbt step
    dbt_own_s: float  # of which dbt's own run, as dbt reports it; the rest is Dagster's
    line: str  # loom's progress line


@dataclass(frozen=True)
class Handwritten:
    load_s: float
    sql_s: float

    @property
    def total_s(self) -> float:
        return self.load_s + self.sql_s


@dataclass
class Measured:
    events_per_day: int
    days: int
    big_hour_events: int = 0
    big_hour: LoomRun | None = None
    big_hour_handwritten: Handwritten | None = None
    after_one_day: list[LoomRun] = field(default_factory=list)
    after_history: list[LoomRun] = field(default_factory=list)
    backfill: LoomRun | None = None
    backfill_events: int = 0
    backfill_handwritten: Handwritten | None = None
    raw_load: tuple[int, float] = (0, 0.0)  # events, seconds
    duckdb_read: tuple[int, float] = (0, 0.0)


def main() -> None:
    events_per_day = int(os.environ.get("LOOM_BENCH_HOURLY_EVENTS_PER_DAY", "50000"))
    days = int(os.environ.get("LOOM_BENCH_HOURLY_DAYS", "30"))
    big_hour_events = int(os.environ.get("LOOM_BENCH_HOURLY_BIG_EVENTS", "1000000"))
    runs = int(os.environ.get("LOOM_BENCH_HOURLY_RUNS", "3"))
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    measured = Measured(events_per_day, days, big_hour_events)
    # The project is parsed once per change of its files, and every later process loads that
    # parse (warehouse.dbt.parsed_manifest): done here, so that the first run timed does not
    # pay for an edit made before the benchmark.
    dbt.parsed_manifest()

    print(f"big hour: {big_hour_events:,} events received in one hour", flush=True)
    big = Layout(WORK_DIR / "big-hour")
    generate(
        big,
        events=big_hour_events,
        sessions=big_hour_events // 13,
        days=1 / 24,
        seed=14,
        start=START,
        progress=False,
    )
    measured.big_hour = loom_run(big, "--hour", hour_arg(START))
    measured.big_hour_handwritten = handwritten(big, [START], WORK_DIR / "big-hour-by-hand")
    print(f"  loom run {measured.big_hour.wall_s:.1f} s", flush=True)

    print(f"history: {days} days of {events_per_day:,} events a day", flush=True)
    history = Layout(WORK_DIR / "history")
    one_day = Layout(WORK_DIR / "one-day")
    generate(
        history,
        events=events_per_day * (days + 1),
        sessions=events_per_day // 10 * (days + 1),
        days=days + 1,
        seed=15,
        orgs=2,
        start=START,
        progress=False,
    )
    one_day.data_dir.mkdir(parents=True)
    one_day.landing_dir.symlink_to(history.landing_dir.resolve(), target_is_directory=True)
    history_end = START + timedelta(days=days)
    backfilled = hours_between(START, history_end)
    measured.backfill_events = events_in(history, backfilled)
    measured.raw_load = raw_load_rate(history, backfilled, WORK_DIR / "raw-load-only")
    measured.duckdb_read = duckdb_read_rate(history, backfilled)
    measured.backfill_handwritten = handwritten(history, backfilled, WORK_DIR / "backfill-by-hand")
    measured.backfill = loom_run(
        history, "--from", hour_arg(START), "--to", hour_arg(history_end - timedelta(hours=1))
    )
    print(f"  backfill of {days} days: {measured.backfill.wall_s:.1f} s", flush=True)
    day_1 = START + timedelta(days=1)
    loom_run(one_day, "--from", hour_arg(START), "--to", hour_arg(day_1 - timedelta(hours=1)))

    for n in range(runs):  # in turns, so that both see the same machine load
        measured.after_one_day.append(loom_run(one_day, "--hour", hour_arg(day_1 + n * HOUR)))
        measured.after_history.append(loom_run(history, "--hour", hour_arg(history_end + n * HOUR)))
        print(
            f"  hour {n + 1}/{runs}: after 1 day {measured.after_one_day[-1].wall_s:.1f} s,"
            f" after {days} days {measured.after_history[-1].wall_s:.1f} s",
            flush=True,
        )

    report = render(measured)
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)


HOUR = timedelta(hours=1)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    return [start + n * HOUR for n in range(int((end - start) / HOUR))]


def hour_arg(hour: datetime) -> str:
    return f"{hour:%Y-%m-%dT%H:00}"


def loom_run(layout: Layout, *args: str) -> LoomRun:
    """``loom run`` in its own process, as a user or the schedule's run would start it."""
    env = {**os.environ, "LOOM_DATA_DIR": str(layout.data_dir)}
    started = time.perf_counter()
    done = subprocess.run(
        [str(LOOM), "run", *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"loom run {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    # a range run prints a line per hour first, then the run's own line
    line = next(line for line in done.stdout.splitlines() if DAGSTER_SECONDS.search(line))
    (in_dagster,) = DAGSTER_SECONDS.findall(line)
    return LoomRun(wall, float(in_dagster), *dbt_step_seconds(layout), line)


def dbt_step_seconds(layout: Layout) -> tuple[float, float]:
    """The dbt step of the warehouse's latest run, from Dagster's own run storage, and dbt's own
    run within it, from the run's log."""
    from dagster_project.instance import warehouse_instance
    from dagster_project.runner import run_log_dir

    with warehouse_instance(layout) as instance:
        (latest,) = instance.get_runs(limit=1)
        (step,) = [
            stats
            for stats in instance.get_run_step_stats(latest.run_id)
            if stats.step_key == "dbt_models"
        ]
        log = (run_log_dir(instance) / f"{latest.run_id}.log").read_text()
    (dbt_own,) = DBT_SECONDS.findall(log)
    return step.end_time - step.start_time, float(dbt_own)


def files_of(layout: Layout, stream: str, hours: list[datetime]) -> list[str]:
    return [str(path) for hour in hours for path in layout.hour_files(stream, hour)]


def events_in(layout: Layout, hours: list[datetime]) -> int:
    with duckdb.connect() as con:
        return con.execute(
            "select count(*) from read_json($files, format = 'newline_delimited', columns = $c)",
            {"files": files_of(layout, "events", hours), "c": {"uuid": "VARCHAR"}},
        ).fetchone()[0]


def handwritten(layout: Layout, hours: list[datetime], directory: Path) -> Handwritten:
    """The hours loaded and built by hand: ``read_json`` into one local DuckDB file's ``raw``
    tables, then ``bench/full_build.sql``."""
    directory.mkdir(parents=True)
    with duckdb.connect(str(directory / "handwritten.duckdb")) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE SCHEMA raw")
        started = time.perf_counter()
        for stream in HANDWRITTEN_STREAMS:
            con.execute(
                f"""
                CREATE TABLE raw.{stream} AS
                SELECT * EXCLUDE (filename), filename AS _file
                FROM read_json(
                    $files, format = 'newline_delimited', columns = $columns, filename = true
                )
                """,
                {"files": files_of(layout, stream, hours), "columns": STREAM_COLUMNS[stream]},
            )
        loaded = time.perf_counter()
        con.execute(SCRIPT.read_text())
        return Handwritten(loaded - started, time.perf_counter() - loaded)


def raw_load_rate(layout: Layout, hours: list[datetime], data_dir: Path) -> tuple[int, float]:
    """The pipeline's raw load of every stream's hours into a fresh lake: (events, seconds)."""
    fresh = Layout(data_dir)
    fresh.data_dir.mkdir(parents=True)
    fresh.landing_dir.symlink_to(layout.landing_dir.resolve(), target_is_directory=True)
    with connect_pipeline(fresh) as con:
        started = time.perf_counter()
        loads = [load_hours(con, fresh, stream, hours) for stream in STREAMS]
        seconds = time.perf_counter() - started
    shutil.rmtree(fresh.data_dir)
    (events,) = [load.rows_loaded for load in loads if load.stream == "events"]
    return events, seconds


def duckdb_read_rate(layout: Layout, hours: list[datetime]) -> tuple[int, float]:
    """DuckDB alone reading the same event files into an in-memory table: (events, seconds)."""
    with duckdb.connect() as con:
        started = time.perf_counter()
        con.execute(
            "CREATE TABLE events AS SELECT * FROM read_json("
            "$files, format = 'newline_delimited', columns = $columns, filename = true)",
            {"files": files_of(layout, "events", hours), "columns": STREAM_COLUMNS["events"]},
        )
        seconds = time.perf_counter() - started
        (events,) = con.execute("SELECT count(*) FROM events").fetchone()
    return events, seconds


def render(m: Measured) -> str:
    assert m.big_hour and m.big_hour_handwritten and m.backfill and m.backfill_handwritten

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    def median(runs: list[LoomRun], attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in runs)

    quiet = median(m.after_history, "wall_s")
    big_ratio = m.big_hour.wall_s / m.big_hour_handwritten.total_s
    history_ratio = median(m.after_history, "wall_s") / median(m.after_one_day, "wall_s")
    dbt_ratio = median(m.after_history, "dbt_s") / median(m.after_one_day, "dbt_s")
    backfill_ratio = m.backfill.wall_s / m.backfill_handwritten.total_s
    raw_rate = m.raw_load[0] / m.raw_load[1]
    duckdb_rate = m.duckdb_read[0] / m.duckdb_read[1]

    def runs_row(name: str, runs: list[LoomRun]) -> str:
        return (
            f"| {name} | {', '.join(f'{run.wall_s:.1f}' for run in runs)}"
            f" | {median(runs, 'wall_s'):.1f} | {median(runs, 'in_dagster_s'):.1f}"
            f" | {median(runs, 'dbt_s'):.1f} |"
        )

    lines = [
        "# Hourly run cost benchmark",
        "",
        f"`python -m bench hourly`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()}"
        f" cores, load average {os.getloadavg()[0]:.1f} at the end. Pipeline runs are `loom run`"
        " in a subprocess (Dagster, raw loads, dbt in-process with the hourly data tests,"
        " compaction, publish) on the lake (SQLite catalog). The hand-written baseline is DuckDB's"
        " `read_json` of the same files into one local DuckDB file plus `bench/full_build.sql`.",
        "",
        "| target | measured | limit | |",
        "|---|---:|---:|---|",
        f"| quiet hour, `loom run --hour` wall clock (median) | {quiet:.1f} s"
        f" | {QUIET_LIMIT_S:.0f} s | {verdict(quiet <= QUIET_LIMIT_S)} |",
        f"| {m.big_hour_events:,}-event hour / hand-written | {big_ratio:.2f}x"
        f" | {BIG_HOUR_LIMIT}x | {verdict(big_ratio <= BIG_HOUR_LIMIT)} |",
        f"| hourly run after {m.days} days / after 1 day | {history_ratio:.2f}x"
        f" | {HISTORY_LIMIT}x | {verdict(history_ratio <= HISTORY_LIMIT)} |",
        f"| its dbt step (models + hourly tests), {m.days} days / 1 day | {dbt_ratio:.2f}x"
        f" | {HISTORY_LIMIT}x | {verdict(dbt_ratio <= HISTORY_LIMIT)} |",
        f"| backfill of {m.days} days in one run / hand-written | {backfill_ratio:.2f}x"
        f" | {BACKFILL_LIMIT}x | {verdict(backfill_ratio < BACKFILL_LIMIT)} |",
        f"| raw load, events/s | {raw_rate:,.0f} | {RAW_LOAD_TARGET:,} or more"
        f" | {verdict(raw_rate >= RAW_LOAD_TARGET)} |",
        "",
        "## A big hour on a fresh warehouse",
        "",
        f"{m.big_hour_events:,} events received in one hour. `{m.big_hour.line}`",
        "",
        "| run | seconds |",
        "|---|---:|",
        f"| `loom run --hour`, wall clock | {m.big_hour.wall_s:.1f} |",
        f"| of which the run in Dagster | {m.big_hour.in_dagster_s:.1f} |",
        f"| of which its dbt step | {m.big_hour.dbt_s:.1f} |",
        f"| of which dbt's own run | {m.big_hour.dbt_own_s:.1f} |",
        f"| by hand: `read_json` load | {m.big_hour_handwritten.load_s:.1f} |",
        f"| by hand: `full_build.sql` | {m.big_hour_handwritten.sql_s:.1f} |",
        "",
        "## Hourly runs against history",
        "",
        f"{m.events_per_day:,} events and {m.events_per_day // 10:,} sessions a day, 2 orgs;"
        " the two warehouses read the same landing files and run their next hours in turns.",
        "",
        "| history | wall s per run | median | in Dagster (median) | dbt step (median) |",
        "|---|---|---:|---:|---:|",
        runs_row("1 day", m.after_one_day),
        runs_row(f"{m.days} days", m.after_history),
        "",
        f"A run after {m.days} days: `{m.after_history[-1].line}`",
        "",
        "## Backfill",
        "",
        f"{m.days} days ({m.backfill_events:,} events received) as one run: `{m.backfill.line}`",
        "",
        "| run | seconds |",
        "|---|---:|",
        f"| `loom run --from --to`, wall clock | {m.backfill.wall_s:.1f} |",
        f"| of which its dbt step | {m.backfill.dbt_s:.1f} |",
        f"| of which dbt's own run (the rest of the step: Dagster recording a materialization"
        f" per hour and asset) | {m.backfill.dbt_own_s:.1f} |",
        f"| by hand: `read_json` load | {m.backfill_handwritten.load_s:.1f} |",
        f"| by hand: `full_build.sql` | {m.backfill_handwritten.sql_s:.1f} |",
        "",
        "| raw load of the same hours | events | seconds | events/s |",
        "|---|---:|---:|---:|",
        f"| `load_hours` of every stream into a fresh lake | {m.raw_load[0]:,}"
        f" | {m.raw_load[1]:.1f} | {raw_rate:,.0f} |",
        f"| DuckDB alone: the event files into an in-memory table | {m.duckdb_read[0]:,}"
        f" | {m.duckdb_read[1]:.1f} | {duckdb_rate:,.0f} |",
        "",
    ]
    return "\n".join(lines)
