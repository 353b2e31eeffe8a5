"""What Dagster's storage in PostgreSQL costs a run (``python -m bench dagster_storage``).

Two pipeline data directories on one PostgreSQL lake catalog (a real server, as the tests start
it): one keeps Dagster's storage in SQLite files (``LOOM_DAGSTER_STORAGE=sqlite``, the
*baseline*), the other in the catalog's PostgreSQL (the default with a PostgreSQL catalog,
``dagster_project/postgres_storage.py``). Each runs ``loom run --hour`` of the same hour of the
read API's test day (after one warm-up run), in turns, ``LOOM_BENCH_DAGSTER_STORAGE_TURNS``
(default 3) times; the medians of the wall clock and of the seconds the run took in Dagster are
compared. Target: PostgreSQL at most 1.2x the baseline. Writes
bench/results/dagster_storage.md.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.ingest_api.read.utils.dataset import land_dataset
from tests.utils.postgres import remove, start_postgres
from warehouse.layout import Layout
from warehouse.registry import Registry

TURNS = int(os.environ.get("LOOM_BENCH_DAGSTER_STORAGE_TURNS", "3"))
RESULTS = Path(__file__).parent / "results" / "dagster_storage.md"
LOOM = [sys.executable, "-m", "loom"]
HOUR = "2026-11-20T10:00"
TARGET = 1.2
IN_DAGSTER = re.compile(r"· ([0-9.]+)s$", re.MULTILINE)
STORAGES = {"SQLite files (baseline)": "sqlite", "the catalog's PostgreSQL": ""}


def _run(env: dict[str, str]) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run([*LOOM, "run", "--hour", HOUR], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return wall, float(IN_DAGSTER.findall(done.stdout)[0])


def main() -> None:
    server = start_postgres()
    root = Path(tempfile.mkdtemp(prefix="loom-bench-dagster-storage-"))
    try:
        catalog = f"postgres:{server.create_database('bench')}"
        lake = {
            "LOOM_LAKE_CATALOG": catalog,
            "LOOM_LAKE_DATA_PATH": f"{root / 'files'}/",
            "LOOM_LANDING_PATH": str(root / "landing"),
        }
        seed = Layout(root / "seed", catalog, lake["LOOM_LAKE_DATA_PATH"], root / "landing")
        with Registry.open(seed) as registry:
            a, b = (registry.create_key(org, "web", "rw").record for org in ("acme", "globex"))
        land_dataset(seed, a.org_id, a.project_id, b.org_id, b.project_id)
        envs = {
            name: {
                **os.environ,
                **lake,
                "LOOM_DATA_DIR": str(root / (kind or "postgres")),
                "LOOM_DAGSTER_STORAGE": kind,
            }
            for name, kind in STORAGES.items()
        }
        _run(envs["SQLite files (baseline)"])  # the lake built once: every turn replaces it
        load = os.getloadavg()[0]
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in STORAGES}
        for _ in range(TURNS):
            for name, env in envs.items():
                times[name].append(_run(env))
    finally:
        remove(server)
        shutil.rmtree(root, ignore_errors=True)
    medians = {
        name: (statistics.median(w for w, _ in runs), statistics.median(d for _, d in runs))
        for name, runs in times.items()
    }
    base_wall, base_dagster = medians["SQLite files (baseline)"]
    lines = [
        "# Dagster's storage benchmark",
        "",
        f"`loom run --hour {HOUR}` of the read API's test day on a PostgreSQL lake catalog,"
        f" Dagster's storage in each place in turns, median of {TURNS}. Target: PostgreSQL at most"
        f" {TARGET}x the baseline. Machine: {os.cpu_count()} CPU(s), {platform.system()}"
        f" {platform.machine()}; load average {load:.1f} as it began. Run"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "| Dagster's storage | wall s | in Dagster s | wall vs baseline | in Dagster vs baseline |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {wall:.1f} | {dagster:.1f} | {wall / base_wall:.2f}x |"
            f" {dagster / base_dagster:.2f}x |"
            for name, (wall, dagster) in medians.items()
        ),
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))
