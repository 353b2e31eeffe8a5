"""A micro-batch's fixed cost after a busy partial hour (``python -m bench busy_batch``): does a
batch of almost no new data cost the same whatever the hour so far holds?

1. **Busy hour so far**: ``BUSY_MINUTES`` minutes of ``EVENTS_PER_MINUTE`` generated events
   (1,000 a second, with their identities and sessions), landed a minute at a time, each minute
   loaded and built by a micro-batch as the sensor runs them (the functions the Dagster assets
   call: the new files' raw loads, dbt over the unbuilt window, compaction, a publish).
2. **Measured**, ``ROUNDS`` rounds, interleaved, each through Dagster in this (warm) process as
   ``loom run`` runs it: a micro-batch of one event received in the busy hour; a micro-batch of
   one event in the next hour, which holds nothing else yet (the baseline: the same warehouse and
   history, an empty hour so far); and a quiet hour (``QUIET_HOUR_EVENTS`` events, received in an
   earlier hour) run whole by ``loom run --hour``, in this process and as a process of its own
   (wall clock, as ``bench freshness`` measures it). Each batch's dbt nodes are timed from dbt's
   run results.

Targets: busy / empty close to 1 (a batch's time grows with its new rows, not with the hour so
far), and a batch ≤ 1/3 of the quiet hour's run. ``LOOM_BENCH_BUSY_MINUTES`` (default 10) sets
the busy part. Writes ``bench/results/busy_batch.md``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from bench.bench_batches import micro_batch
from bench.generate import event_record, generate, write_records
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.settings import environment

BUSY_MINUTES = int(os.environ.get("LOOM_BENCH_BUSY_MINUTES", "10"))
EVENTS_PER_MINUTE = 60_000
QUIET_HOUR_EVENTS = 2_000
ROUNDS = 3
BUSY_HOUR = datetime(2026, 3, 2, 10)
EMPTY_HOUR = BUSY_HOUR + timedelta(hours=1)
QUIET_HOUR = BUSY_HOUR - timedelta(hours=3)
# The nodes the issue measured growing with the hour so far (they read the window's events).
WINDOW_READERS = ("fct_events", "int_person_property_writes", "int_window_sightings")
WORK_DIR = Path(__file__).parent / ".work" / "busy_batch"
RESULTS = Path(__file__).parent / "results" / "busy_batch.md"
LOOM = str(Path(sys.executable).with_name("loom"))
# dagster-dbt's metadata of a model's materialization: dbt's execution time of the node.
EXECUTION_DURATION = "Execution Duration"


@dataclass
class Batch:
    seconds: float
    nodes: dict[str, float]  # dbt node -> seconds


@dataclass
class Measured:
    busy_events: int = 0
    setup_batch_s: list[float] = field(default_factory=list)
    busy: list[Batch] = field(default_factory=list)
    empty: list[Batch] = field(default_factory=list)
    quiet_in_process_s: list[float] = field(default_factory=list)
    quiet_process_s: list[float] = field(default_factory=list)


def land_busy_minute(layout: Layout, minute: int) -> int:
    summary = generate(layout, events=EVENTS_PER_MINUTE, sessions=EVENTS_PER_MINUTE // 50,
                       days=1 / 1440, start=BUSY_HOUR + timedelta(minutes=minute),
                       seed=minute + 1, late_share=0.0, retry_share=0.0,
                       progress=False)  # fmt: skip
    return summary.events


def busy_minute_batch(layout: Layout, at: datetime) -> float:
    started = time.perf_counter()
    with connect_pipeline(layout) as con:
        micro_batch(con, layout, BUSY_HOUR, at)
    return time.perf_counter() - started


def land_one_event(layout: Layout, received: datetime, tag: str) -> None:
    record = event_record(org_id="org_fixed_cost", project_id=1, event="fixed_cost",
                          distinct_id="fixed-cost", timestamp=received,
                          received_at=received)  # fmt: skip
    write_records(layout, "events", [record], tag=tag)


def loom_run(layout: Layout, *args: str) -> float:
    """`loom run` in this process (imports, definitions and the dbt manifest warm): seconds."""
    from dagster_project.cli import run

    with environment({"LOOM_DATA_DIR": str(layout.data_dir)}):
        started = time.perf_counter()
        result = CliRunner().invoke(run, list(args))
        seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    return seconds


def node_seconds(layout: Layout) -> dict[str, float]:
    """Each dbt model's execution time in the newest run, from its materialization's metadata."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(layout.dagster_home)) as instance:
        [record] = instance.get_run_records(limit=1)
        events = instance.all_logs(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
    seconds = {}
    for event in events:
        materialization = event.asset_materialization
        duration = materialization.metadata.get(EXECUTION_DURATION)
        if duration is not None:
            seconds[materialization.asset_key.path[-1]] = float(duration.value)
    return seconds


def one_event_batch(layout: Layout, hour: datetime, number: int) -> Batch:
    land_one_event(layout, hour + timedelta(minutes=30, seconds=number), f"one-{number}")
    seconds = loom_run(layout, "--micro-batch", "--hour", f"{hour:%Y-%m-%dT%H:00}")
    return Batch(seconds, node_seconds(layout))


def quiet_hour_process_seconds(layout: Layout) -> float:
    started = time.perf_counter()
    subprocess.run(
        [LOOM, "run", "--hour", f"{QUIET_HOUR:%Y-%m-%dT%H:00}"],
        env={**os.environ, "LOOM_DATA_DIR": str(layout.data_dir)},
        stdout=subprocess.DEVNULL, check=True, timeout=600,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    layout = Layout((WORK_DIR / "data").resolve())
    measured = Measured()
    # Every definition, once, and an hour of history the batches come after.
    generate(layout, events=QUIET_HOUR_EVENTS, sessions=QUIET_HOUR_EVENTS // 10, days=1 / 24,
             start=QUIET_HOUR, seed=0, late_share=0.0, progress=False)  # fmt: skip
    quiet_hour = f"{QUIET_HOUR:%Y-%m-%dT%H:00}"
    loom_run(layout, "--hour", quiet_hour)
    print(f"busy: {BUSY_MINUTES} minutes of {EVENTS_PER_MINUTE:,} events", flush=True)
    for minute in range(BUSY_MINUTES):
        measured.busy_events += land_busy_minute(layout, minute)
        at = BUSY_HOUR + timedelta(minutes=minute, seconds=59)
        measured.setup_batch_s.append(busy_minute_batch(layout, at))
        print(f"  minute {minute}: {measured.setup_batch_s[-1]:.1f} s", flush=True)
    for number in range(ROUNDS):
        measured.busy.append(one_event_batch(layout, BUSY_HOUR, number))
        measured.empty.append(one_event_batch(layout, EMPTY_HOUR, number))
        measured.quiet_in_process_s.append(
            loom_run(layout, "--hour", f"{QUIET_HOUR:%Y-%m-%dT%H:00}")
        )
        measured.quiet_process_s.append(quiet_hour_process_seconds(layout))
        print(
            f"round {number}: busy {measured.busy[-1].seconds:.1f} s, empty "
            f"{measured.empty[-1].seconds:.1f} s, quiet hour {measured.quiet_in_process_s[-1]:.1f}"
            f" s in process, {measured.quiet_process_s[-1]:.1f} s as a process",
            flush=True,
        )
    report = render(measured)
    print(report)
    RESULTS.write_text(report)


def median_node(batches: list[Batch], name: str) -> float:
    return statistics.median(batch.nodes.get(name, 0.0) for batch in batches)


def render(measured: Measured) -> str:
    busy = statistics.median(batch.seconds for batch in measured.busy)
    empty = statistics.median(batch.seconds for batch in measured.empty)
    quiet_in = statistics.median(measured.quiet_in_process_s)
    quiet_process = statistics.median(measured.quiet_process_s)
    share = busy / quiet_process

    def listed(values: list[float]) -> str:
        return ", ".join(f"{value:.1f}" for value in values)

    lines = [
        "# A micro-batch after a busy partial hour",
        "",
        f"`python -m bench busy_batch`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end. The busy "
        f"hour so far: {measured.busy_events:,} events in {BUSY_MINUTES} one-minute batches "
        f"({listed(measured.setup_batch_s)} s). Medians of {ROUNDS} interleaved rounds, each run "
        "through Dagster by `loom run` in a warm process.",
        "",
        "| run | s | runs |",
        "|---|---:|---|",
        f"| micro-batch of one event, busy hour so far | {busy:.1f} | "
        f"{listed([b.seconds for b in measured.busy])} |",
        f"| micro-batch of one event, empty hour so far | {empty:.1f} | "
        f"{listed([b.seconds for b in measured.empty])} |",
        f"| quiet hour ({QUIET_HOUR_EVENTS:,} events), `loom run --hour` in process | "
        f"{quiet_in:.1f} | {listed(measured.quiet_in_process_s)} |",
        f"| quiet hour, `loom run --hour` as a process (wall clock) | {quiet_process:.1f} | "
        f"{listed(measured.quiet_process_s)} |",
        "",
        f"- Busy / empty hour so far: **{busy / empty:.2f}x** (target close to 1).",
        f"- A one-event batch after the busy hour / the quiet hour's `loom run --hour`: "
        f"**{share:.2f}** (target ≤ 0.33: {'met' if share <= 1 / 3 else 'NOT met'}); "
        f"/ the same run in process: {busy / quiet_in:.2f}.",
        "",
        "The dbt nodes that read the window's events (medians, s):",
        "",
        "| node | busy hour | empty hour |",
        "|---|---:|---:|",
    ]
    for name in WINDOW_READERS:
        lines.append(
            f"| `{name}` | {median_node(measured.busy, name):.2f} | "
            f"{median_node(measured.empty, name):.2f} |"
        )
    busy_sum = statistics.median(sum(b.nodes.values()) for b in measured.busy)
    empty_sum = statistics.median(sum(b.nodes.values()) for b in measured.empty)
    lines.append(f"| all {len(measured.busy[0].nodes)} nodes | {busy_sum:.2f} | {empty_sum:.2f} |")
    return "\n".join(lines) + "\n"
