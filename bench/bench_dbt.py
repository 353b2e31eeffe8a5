"""Benchmark of the dbt warehouse (``make bench`` / ``python -m bench dbt``).

1. **Hourly incremental run vs history.** From the same generated landing files, one warehouse is
   built up to one day of history and another up to seven; then each runs its next hours as
   their own windows (``dbt run`` with that hour's vars, as the hourly pipeline does: a fresh set
   of vars, so dbt re-parses), taking turns so both see the same machine load. The ratio of the
   two medians (wall-clock and CPU time) must stay under 1.3: an hourly run reads its window plus
   what it affects, not the history.
2. **Full build throughput vs a hand-written script.** On a fresh warehouse holding the same raw
   tables, an unwindowed ``dbt run`` is timed against ``bench/full_build.sql`` — the same marts
   written by hand as one DuckDB script (no dbt, no incremental machinery). Both must give the
   same numbers (row counts, persons, sessions, and every release's crash-free session and user
   rates): a mismatch fails the benchmark after writing its report, since a baseline that computes
   something else measures nothing.

Scale with LOOM_BENCH_DBT_EVENTS_PER_DAY (default 50,000; sessions are a tenth) and
LOOM_BENCH_DBT_HOURS (hourly runs per history size, default 3). Writes bench/results/dbt.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bench.generate import generate
from warehouse import dbt
from warehouse.duck import connect_pipeline, connect_reader
from warehouse.layout import STREAMS, Layout
from warehouse.raw_load import load_hours as load_stream_hours

WORK_DIR = Path(__file__).parent / ".work" / "dbt"
RESULTS = Path(__file__).parent / "results" / "dbt.md"
SCRIPT = Path(__file__).parent / "full_build.sql"
START = datetime(2026, 1, 1)
HISTORY_DAYS = 7
RATIO_LIMIT = 1.3


@dataclass
class Measurements:
    events_per_day: int
    generated_events: int
    raw_events: int
    after_one_day: list[tuple[float, float]]  # (wall, cpu) seconds per hourly run
    after_seven_days: list[tuple[float, float]]
    dbt_seconds: float
    sql_seconds: float
    comparison: list[tuple[str, tuple, tuple]]

    def mismatches(self) -> list[str]:
        return [name for name, ours, theirs in self.comparison if ours != theirs]

    def ratio(self, clock: int) -> float:
        seven = statistics.median(run[clock] for run in self.after_seven_days)
        return seven / statistics.median(run[clock] for run in self.after_one_day)


def main() -> None:
    events_per_day = int(os.environ.get("LOOM_BENCH_DBT_EVENTS_PER_DAY", "50000"))
    hours_measured = int(os.environ.get("LOOM_BENCH_DBT_HOURS", "3"))
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    one_day = Layout(WORK_DIR / "one-day")
    seven_days = Layout(WORK_DIR / "seven-days")
    target = WORK_DIR / "dbt-target"
    days = HISTORY_DAYS + 1
    generated = generate(
        one_day,
        events=events_per_day * days,
        sessions=events_per_day // 10 * days,
        days=days,
        seed=7,
        orgs=2,
        start=START,
    )
    # both warehouses read the same landing files
    seven_days.data_dir.mkdir(parents=True)
    seven_days.landing_dir.symlink_to(one_day.landing_dir.resolve(), target_is_directory=True)

    day_1 = START + timedelta(days=1)
    day_7 = START + timedelta(days=HISTORY_DAYS)
    dbt.prepare_warehouse(one_day)
    load_hours(one_day, START, day_1)
    dbt.run_dbt(["run"], layout=one_day, target_path=target)
    shutil.copytree(one_day.data_dir / "lake", seven_days.data_dir / "lake")
    load_hours(seven_days, day_1, day_7)
    backfill = dbt.window_vars(day_1, day_7)
    dbt.run_dbt(["run"], layout=seven_days, vars=backfill, target_path=target)

    # the two histories take turns, so that both see the same machine load
    after_one_day, after_seven_days = [], []
    for n in range(hours_measured):
        after_one_day.append(time_hourly_run(one_day, target, day_1 + timedelta(hours=n)))
        after_seven_days.append(time_hourly_run(seven_days, target, day_7 + timedelta(hours=n)))

    full = fresh_copy_of_raw(seven_days, WORK_DIR / "full-dbt")
    started = time.perf_counter()
    dbt.run_dbt(["run"], layout=full, target_path=target)
    dbt_seconds = time.perf_counter() - started

    baseline = fresh_copy_of_raw(seven_days, WORK_DIR / "full-sql")
    with connect_pipeline(baseline) as con:
        started = time.perf_counter()
        con.execute(SCRIPT.read_text())
        sql_seconds = time.perf_counter() - started

    measured = Measurements(
        events_per_day=events_per_day,
        generated_events=generated.events,
        raw_events=fetch_row(full, "select count(*) from raw.events")[0],
        after_one_day=after_one_day,
        after_seven_days=after_seven_days,
        dbt_seconds=dbt_seconds,
        sql_seconds=sql_seconds,
        comparison=[
            (
                name,
                fetch_row(full, sql.format(table=ours)),
                fetch_row(baseline, sql.format(table=theirs)),
            )
            for name, sql, ours, theirs in COMPARED
        ],
    )
    report = render(measured)
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)
    if mismatches := measured.mismatches():
        raise SystemExit(f"bench dbt: full_build.sql and dbt's marts disagree on {mismatches}")


def load_hours(layout: Layout, start: datetime, end: datetime) -> None:
    with connect_pipeline(layout) as con:
        for stream in STREAMS:
            hours = [h for h in layout.landed_hours(stream) if start <= h < end]
            load_stream_hours(con, layout, stream, hours)


def time_hourly_run(layout: Layout, target: Path, hour: datetime) -> tuple[float, float]:
    """Load one received hour and run its window: (wall, cpu) seconds of the dbt run. CPU time
    counts dbt's and DuckDB's threads of this process, so other load on the machine barely
    moves it."""
    end = hour + timedelta(hours=1)
    load_hours(layout, hour, end)
    wall, cpu = time.perf_counter(), time.process_time()
    dbt.run_dbt(["run"], layout=layout, vars=dbt.window_vars(hour, end), target_path=target)
    return time.perf_counter() - wall, time.process_time() - cpu


def fresh_copy_of_raw(source: Layout, data_dir: Path) -> Layout:
    """A new lake holding only the raw tables of ``source`` (copied through Parquet)."""
    layout = Layout(data_dir)
    exported = data_dir / "raw-export"
    exported.mkdir(parents=True)
    with connect_reader(source) as con:
        for stream in STREAMS:
            con.execute(f"COPY raw.{stream} TO '{exported / stream}.parquet' (FORMAT parquet)")
    with connect_pipeline(layout) as con:
        con.execute("CREATE SCHEMA raw")
        for stream in STREAMS:
            con.execute(
                f"CREATE TABLE raw.{stream} AS SELECT * FROM read_parquet(?)",
                [f"{exported / stream}.parquet"],
            )
    shutil.rmtree(exported)
    return layout


def fetch_row(layout: Layout, sql: str) -> tuple:
    with connect_reader(layout) as con:
        return con.execute(sql).fetchall()[0]


# (what, query over {table}, dbt's table, the script's table): the two builds must agree
COMPARED = [
    (
        "events",
        "select count(*), count(distinct person_id) from {table}",
        "analytics.fct_events",
        "baseline.fct_events",
    ),
    (
        "persons",
        "select count(*), count(*) filter (where is_identified), sum(len(distinct_ids))"
        " from {table}",
        "analytics.dim_persons",
        "baseline.persons",
    ),
    (
        "sessions",
        "select count(*), sum(sample_weight)::bigint, count(*) filter (where status = 'abnormal')"
        " from {table}",
        "analytics.fct_sessions",
        "baseline.fct_sessions",
    ),
    (
        "hourly release health",
        "select count(*), sum(adjusted_sessions)::bigint, sum(adjusted_users)::bigint from {table}",
        "analytics.agg_release_health_hourly",
        "baseline.release_health_hourly",
    ),
    (
        "weekly users",
        "select sum(adjusted_users)::bigint from {table} where grain = 'week'",
        "analytics.release_health_trend",
        "baseline.release_health_trend",
    ),
    (
        "release health: crash-free session and user rates per release",
        "select count(*), list((release, environment, round(crash_free_session_rate, 2),"
        " round(crash_free_user_rate, 2)) order by org_id, project_id, release, environment)"
        " from {table}",
        "analytics.release_health",
        "baseline.release_health",
    ),
]


def render(m: Measurements) -> str:
    def runs(values: list[tuple[float, float]], clock: int) -> str:
        return ", ".join(f"{run[clock]:.2f}" for run in values)

    def median(values: list[tuple[float, float]], clock: int) -> str:
        return f"{statistics.median(run[clock] for run in values):.2f}"

    wall, cpu = m.ratio(0), m.ratio(1)
    lines = [
        "# dbt warehouse benchmark",
        "",
        f"Generated by `python -m bench dbt` on {datetime.now():%Y-%m-%d %H:%M}"
        f" ({os.cpu_count()} cores): {m.events_per_day:,} events and {m.events_per_day // 10:,}"
        f" sessions a day over {HISTORY_DAYS + 1} days, 2 orgs, identify/alias traffic, 1% of"
        f" events retried and 2% late ({m.generated_events:,} events generated; the full builds"
        f" read the {m.raw_events:,} raw event rows loaded by then, retried copies included).",
        "",
        "## One hourly incremental run (`dbt run` with the hour's window vars)",
        "",
        "Two warehouses built from the same files, one with 1 day of history and one with"
        f" {HISTORY_DAYS}, run the next hours in turns. Each run is a new set of vars, so it"
        " includes dbt's re-parse, as the hourly pipeline's runs do.",
        "",
        "| history | wall s per run | median | CPU s per run | median |",
        "|---|---|---|---|---|",
        f"| 1 day | {runs(m.after_one_day, 0)} | {median(m.after_one_day, 0)}"
        f" | {runs(m.after_one_day, 1)} | {median(m.after_one_day, 1)} |",
        f"| {HISTORY_DAYS} days | {runs(m.after_seven_days, 0)} | {median(m.after_seven_days, 0)}"
        f" | {runs(m.after_seven_days, 1)} | {median(m.after_seven_days, 1)} |",
        "",
        f"**Ratio {HISTORY_DAYS} days / 1 day: {wall:.2f} wall-clock, {cpu:.2f} CPU** (limit"
        f" {RATIO_LIMIT}: {'met' if max(wall, cpu) < RATIO_LIMIT else 'NOT met'}).",
        "",
        "## Full build of the same raw data",
        "",
        "| build | seconds | raw events / s | vs script |",
        "|---|---|---|---|",
        f"| `dbt run` (unwindowed, fresh warehouse) | {m.dbt_seconds:.2f}"
        f" | {m.raw_events / m.dbt_seconds:,.0f} | {m.dbt_seconds / m.sql_seconds:.2f}x |",
        f"| `bench/full_build.sql` (one hand-written DuckDB script) | {m.sql_seconds:.2f}"
        f" | {m.raw_events / m.sql_seconds:,.0f} | 1.00x |",
        "",
        "Outputs (dbt | script): "
        + (f"**DIFFERENT: {', '.join(m.mismatches())}**" if m.mismatches() else "the same."),
        "",
        "| mart | dbt | script | |",
        "|---|---|---|---|",
        *(
            f"| {name} | {ours} | {theirs} | {'same' if ours == theirs else '**different**'} |"
            for name, ours, theirs in m.comparison
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
