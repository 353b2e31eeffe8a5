"""The Dagster instance under the data directory (``Layout.dagster_home``), shared by the UI, the
daemon, ``loom run`` and ``make demo`` so that every run lands in the same run storage."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from dagster_project.resources import WAREHOUSE_POOL
from warehouse.layout import Layout
from warehouse.settings import get_settings

WRITER_TAG = "loom/writes"

# One writer for DuckDB, enforced twice:
# * pools at op granularity: every step that opens the lake to write is in the `warehouse` pool,
#   limited to one slot. The slot is claimed through run storage, so it also holds for runs
#   executed in-process by `loom run`, which never pass through the run queue.
# * the run queue admits one run tagged `loom/writes=warehouse` at a time, so schedule, sensor,
#   backfill and UI runs wait their turn as whole runs instead of interleaving their steps.
DAGSTER_YAML = f"""\
# Written by dagster_project/instance.py; change it there.
# Dagster's SQLite storage, in its default places, with batches of materializations stored in one
# transaction and the event log's engines kept open (dagster_project/event_storage.py).
event_log_storage:
  module: dagster_project.event_storage
  class: BatchingSqliteEventLogStorage
  config:
    base_dir: {{history}}
# Runs the daemon launches go to one warm worker process instead of a new interpreter each
# (dagster_project/run_launcher.py).
run_launcher:
  module: dagster_project.run_launcher
  class: WarmRunLauncher
# Sensors tick in threads of their own: an alert webhook that hangs (up to its timeout) never
# holds back the micro-batch sensor's look (dagster_project/alerts.py).
sensors:
  use_threads: true
  num_workers: 4
telemetry:
  enabled: false
nux:
  enabled: false
# Runs launched by the UI or the daemon whose worker process died are failed and their pool slots
# freed (scripted `loom run`s are released by dagster_project/run_owners.py instead). A writer
# run stays STARTING while it waits for the lake's writer lease (run_owners.py), so it may take
# the lease's wait (LOOM_WRITER_LEASE_WAIT_SECONDS) plus Dagster's default 180 s to start.
run_monitoring:
  enabled: true
  start_timeout_seconds: {{start_timeout_seconds}}
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
concurrency:
  pools:
    granularity: op
    default_limit: 1
  runs:
    tag_concurrency_limits:
      - key: {WRITER_TAG}
        value: {WAREHOUSE_POOL}
        limit: 1
"""


# A backfill is one run over many hours. Before such a run starts, Dagster writes by default one
# "materialization planned" event per hour and asset (a 30-day backfill: about 27,000 events, some
# five minutes on SQLite run storage); with the first setting, one per asset, naming the range. The
# price, as Dagster documents it: the hours of a failed range run show as missing, not failed.
# When it ends, each asset's materializations (one per hour) are stored in batches of up to 1,000
# (the second setting), each in one transaction (event_storage.py).
DAGSTER_ENVIRONMENT = {
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
}


def prepare_dagster_home(layout: Layout) -> Path:
    """Create DAGSTER_HOME under the data directory, with the project's dagster.yaml."""
    home = layout.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    # Dagster's default event log place, named in full: a moved data directory rewrites it.
    wanted = DAGSTER_YAML.format(
        history=home / "history" / "runs",
        start_timeout_seconds=int(get_settings().writer_lease_wait_seconds) + 180,
    )
    if not config.exists() or config.read_text() != wanted:
        config.write_text(wanted)
    return home


def warehouse_instance(layout: Layout) -> DagsterInstance:
    """The instance `dagster dev` (started by `loom up` with DAGSTER_HOME=that directory) uses,
    for runs started in this process (Dagster reads its settings from the environment)."""
    os.environ.update(DAGSTER_ENVIRONMENT)
    return DagsterInstance.from_config(str(prepare_dagster_home(layout)))
