"""What an hour of identity links costs against the shape of the graph (``python -m bench
identity``).

Every run is the real thing: ``loom run --hour`` in a subprocess (Dagster, the raw loads, the
in-process dbt build with the hourly data tests, compaction, publish) on a fresh warehouse whose
landing area holds the hour.

1. **One person against many.** ``LOOM_BENCH_IDENTITY_LINKS`` (default 100,000) ``$identify``
   links received in one hour, each from an anonymous id seen earlier in the hour (a pageview
   with a ``$set``), so that every link merges two persons: all into one user, against the same
   links into 10,000 users (10 each), and (not a target) a chain of ``$merge_dangerously``, each
   id absorbing the person of the one before. They take turns (``LOOM_BENCH_IDENTITY_RUNS`` each,
   default 3), each run on a fresh copy. Target: one person costs at most 2x many, for the run
   and for its dbt step.
2. **A million links into one person** (``LOOM_BENCH_IDENTITY_BIG_LINKS``, default 1,000,000):
   the same star, one run; its wall clock and the run's peak RSS. Target: it finishes within the
   machine's memory.

Writes ``bench/results/identity.md``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.bench_hourly import dbt_step_seconds, hour_arg
from bench.generate import event_record, identity_record, write_records
from warehouse import dbt
from warehouse.duck import connect_reader
from warehouse.layout import Layout

WORK_DIR = Path(__file__).parent / ".work" / "identity"
RESULTS = Path(__file__).parent / "results" / "identity.md"
LOOM = Path(sys.executable).with_name("loom")
HOUR = datetime(2026, 1, 1, 12)
ORG = "org_identity_bench"
MANY_PERSONS = 10_000
RATIO_LIMIT = 2.0
MACHINE_MEMORY_GIB = 24


@dataclass(frozen=True)
class Run:
    wall_s: float
    dbt_s: float  # the run's dbt step (models and hourly tests)
    peak_rss_gib: float
    persons: int  # persons in dim_persons afterwards: the graph was built as intended


def main() -> None:
    links = int(os.environ.get("LOOM_BENCH_IDENTITY_LINKS", "100000"))
    big_links = int(os.environ.get("LOOM_BENCH_IDENTITY_BIG_LINKS", "1000000"))
    runs = int(os.environ.get("LOOM_BENCH_IDENTITY_RUNS", "3"))
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    dbt.parsed_manifest()  # parsed once here, not inside the first timed run

    one = land(WORK_DIR / "one-person", links, users=1)
    many = land(WORK_DIR / "many-persons", links, users=MANY_PERSONS)
    chain = land(WORK_DIR / "chain", links, users=None)
    one_runs, many_runs, chain_runs = [], [], []
    for n in range(runs):  # in turns, so that all see the same machine load
        one_runs.append(loom_run(one, WORK_DIR / f"one-person-run-{n}"))
        many_runs.append(loom_run(many, WORK_DIR / f"many-persons-run-{n}"))
        chain_runs.append(loom_run(chain, WORK_DIR / f"chain-run-{n}"))
        print(
            f"run {n + 1}/{runs}: one person {one_runs[-1].wall_s:.1f} s,"
            f" {MANY_PERSONS:,} persons {many_runs[-1].wall_s:.1f} s,"
            f" chain {chain_runs[-1].wall_s:.1f} s",
            flush=True,
        )
    big = land(WORK_DIR / "big-star", big_links, users=1)
    big_run = loom_run(big, WORK_DIR / "big-star-run")
    print(f"{big_links:,} links into one person: {big_run.wall_s:.1f} s", flush=True)

    report = render(links, one_runs, many_runs, chain_runs, big_links, big_run)
    print(report)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)


def land(data_dir: Path, links: int, *, users: int | None, org_id: str = ORG) -> Layout:
    """An hour of ``links`` anonymous ids, each with a pageview (and a ``$set``) in the hour's
    first half, then in its second half an ``$identify`` of each into one of ``users`` users or,
    without users, a chain of ``$merge_dangerously``: each id absorbs the person of the one
    before (``links`` - 1 links, every one moving the whole person built so far)."""
    layout = Layout(data_dir)
    step = timedelta(minutes=30) / links
    events, identities = [], []
    for n in range(links):
        anonymous, seen = f"anon-{n}", HOUR + n * step
        linked = seen + timedelta(minutes=30)
        events.append(
            event_record(
                org_id=org_id, project_id=1, event="$pageview", distinct_id=anonymous,
                timestamp=seen, properties={"$set": {"first_page": f"/page/{n}"}},
                uuid=str(uuid.UUID(int=2 * n)),
            )
        )  # fmt: skip
        if users is None and n == 0:
            continue
        identities.append(
            identity_record(
                org_id=org_id, project_id=1, timestamp=linked, uuid=str(uuid.UUID(int=2 * n + 1)),
                **(
                    {"kind": "identify", "distinct_id": f"user-{n % users}", "other_id": anonymous}
                    if users is not None
                    else {"kind": "merge_dangerously", "distinct_id": anonymous,
                          "other_id": f"anon-{n - 1}"}
                ),
            )
        )  # fmt: skip
    write_records(layout, "events", events, tag="identity")
    write_records(layout, "identities", identities, tag="identity")
    return layout


def loom_run(landed: Layout, data_dir: Path) -> Run:
    """``loom run --hour`` of the landed hour on a fresh warehouse reading the same landing
    files; the peak RSS is the run process's own (Dagster and dbt run in it)."""
    layout = Layout(data_dir)
    layout.data_dir.mkdir(parents=True)
    layout.landing_dir.symlink_to(landed.landing_dir.resolve(), target_is_directory=True)
    env = {**os.environ, "LOOM_DATA_DIR": str(layout.data_dir)}
    log = data_dir / "loom-run.log"
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(LOOM), "run", "--hour", hour_arg(HOUR)], env=env, stdout=output, stderr=output
        )
        peak_kib = 0
        while process.poll() is None:
            peak_kib = max(peak_kib, high_water_kib(process.pid))
            time.sleep(0.2)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"loom run --hour {hour_arg(HOUR)} failed:\n{log.read_text()}")
    dbt_s, _dbt_own_s = dbt_step_seconds(layout)
    with connect_reader(layout) as con:
        (persons,) = con.execute(
            "select count(*) from analytics.dim_persons where len(distinct_ids) > 1"
        ).fetchone()
    return Run(wall, dbt_s, peak_kib / 2**20, persons)


def high_water_kib(pid: int) -> int:
    """The process's peak RSS so far (VmHWM). Not the ``ru_maxrss`` of its exit: Linux counts
    in it the memory of the process that started it, as it was when it forked (this one's, which
    held the generated records)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:  # it has just exited
        return 0
    return next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0
    )


def render(
    links: int, one: list[Run], many: list[Run], chain: list[Run], big_links: int, big: Run
) -> str:
    def median(runs: list[Run], attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in runs)

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    wall_ratio = median(one, "wall_s") / median(many, "wall_s")
    dbt_ratio = median(one, "dbt_s") / median(many, "dbt_s")
    chain_ratio = median(chain, "dbt_s") / median(many, "dbt_s")

    def row(name: str, runs: list[Run]) -> str:
        return (
            f"| {name} | {', '.join(f'{run.wall_s:.1f}' for run in runs)}"
            f" | {median(runs, 'wall_s'):.1f} | {median(runs, 'dbt_s'):.1f}"
            f" | {max(run.peak_rss_gib for run in runs):.2f} | {runs[0].persons:,} |"
        )

    lines = [
        "# Identity replay benchmark",
        "",
        f"`python -m bench identity`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()}"
        f" cores, load average {os.getloadavg()[0]:.1f} at the end. Each run is `loom run --hour`"
        " in a subprocess on a fresh warehouse (SQLite catalog) of one received hour: N anonymous"
        " ids, each with a pageview and a `$set` in the hour's first half, then links in its"
        " second half: `$identify` of each into users (every link merges two persons), or a chain"
        " of `$merge_dangerously`, each id absorbing the person of the one before. Peak RSS is the"
        " `loom run` process's own (Dagster and dbt run in it).",
        "",
        "| target | measured | limit | |",
        "|---|---:|---:|---|",
        f"| {links:,} links into one person / into {MANY_PERSONS:,} persons, `loom run --hour`"
        f" (median) | {wall_ratio:.2f}x | {RATIO_LIMIT}x | {verdict(wall_ratio <= RATIO_LIMIT)} |",
        f"| the same, its dbt step (models + hourly tests) | {dbt_ratio:.2f}x | {RATIO_LIMIT}x"
        f" | {verdict(dbt_ratio <= RATIO_LIMIT)} |",
        f"| {big_links:,} links into one person, peak RSS of the run | {big.peak_rss_gib:.2f} GiB"
        f" | {MACHINE_MEMORY_GIB} GiB | {verdict(big.peak_rss_gib < MACHINE_MEMORY_GIB)} |",
        "",
        f"## {links:,} links in one hour",
        "",
        "| graph | wall s per run | median | dbt step (median) | peak RSS GiB | persons, 2+ ids |",
        "|---|---|---:|---:|---:|---:|",
        row("into one person", one),
        row(f"into {MANY_PERSONS:,} persons", many),
        row("a chain of `$merge_dangerously` (one link fewer)", chain),
        "",
        f"The chain's dbt step / the {MANY_PERSONS:,} persons': {chain_ratio:.2f}x (not a target;"
        " every link of the chain moves the whole person built so far).",
        "",
        f"## {big_links:,} links into one person",
        "",
        "| run | wall s | dbt step s | peak RSS GiB | persons of 2+ ids |",
        "|---|---:|---:|---:|---:|",
        f"| `loom run --hour` | {big.wall_s:.1f} | {big.dbt_s:.1f} | {big.peak_rss_gib:.2f}"
        f" | {big.persons:,} |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
