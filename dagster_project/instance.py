"""The Dagster instance under the data directory (``Layout.dagster_home``), shared by the UI, the
daemon, ``loom run`` and ``make demo`` so that every run lands in the same run storage: SQLite
files in DAGSTER_HOME on one host, or, with a PostgreSQL lake catalog, a schema of that database,
so that every pipeline host's UI and runs see every host's runs, schedules and pool slots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlencode

from dagster import DagsterInstance

from dagster_project.resources import WAREHOUSE_POOL
from warehouse.layout import Layout
from warehouse.settings import get_settings

# Dagster's tables (runs, event_logs, jobs, alembic_version, …) in a schema of their own: none of
# their names meets the lake catalog's (ducklake_*) or the registry's (schema loom).
POSTGRES_SCHEMA = "dagster"

SQLITE_STORAGE = """\
# Dagster's SQLite storage, in its default places, with batches of materializations stored in one
# transaction and the event log's engines kept open (dagster_project/event_storage.py).
event_log_storage:
  module: dagster_project.event_storage
  class: BatchingSqliteEventLogStorage
  config:
    base_dir: {history}"""

# Runs, event log (pool slots included) and schedules in PostgreSQL, shared by every pipeline host.
POSTGRES_STORAGE = """\
# Dagster's storage (runs, event log with the pools' slots, schedules and sensor cursors) in
# PostgreSQL, schema {schema}: every pipeline host sees every host's runs (docs/deploy.md).
# Its connections are kept open (dagster_project/postgres_storage.py).
storage:
  custom:
    module: dagster_project.postgres_storage
    class: PooledPostgresStorage
    config:
      postgres_url: {url}"""


class DagsterStorageUnreachable(RuntimeError):
    """Dagster's storage is in a PostgreSQL database that cannot be reached."""


WRITER_TAG = "loom/writes"

# One writer for DuckDB, enforced twice:
# * pools at op granularity: every step that opens the lake to write is in the `warehouse` pool,
#   limited to one slot. The slot is claimed through run storage, so it also holds for runs
#   executed in-process by `loom run`, which never pass through the run queue.
# * the run queue admits one run tagged `loom/writes=warehouse` at a time, so schedule, sensor,
#   backfill and UI runs wait their turn as whole runs instead of interleaving their steps.
DAGSTER_YAML = f"""\
# Written by dagster_project/instance.py; change it there.
{{storage}}
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


def dagster_storage_database(layout: Layout) -> str | None:
    """The libpq connection string of the PostgreSQL database that keeps Dagster's storage, or
    None for SQLite files in DAGSTER_HOME: ``LOOM_DAGSTER_STORAGE`` when set, else the lake
    catalog's database when that is PostgreSQL (hosts sharing a lake share their runs)."""
    chosen = get_settings().dagster_storage
    if chosen is None and layout.lake.catalog_kind == "postgres":
        chosen = layout.lake.catalog
    if chosen is None or chosen == "sqlite":
        return None
    return chosen.removeprefix("postgres:")


def prepare_dagster_home(layout: Layout) -> Path:
    """Create DAGSTER_HOME under the data directory, with the project's dagster.yaml (and, for a
    PostgreSQL storage, its schema)."""
    home = layout.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    database = dagster_storage_database(layout)
    if database is None:
        # Dagster's default event log place, named in full: a moved data directory rewrites it.
        storage = SQLITE_STORAGE.format(history=home / "history" / "runs")
    else:
        storage = POSTGRES_STORAGE.format(schema=POSTGRES_SCHEMA, url=_postgres_url(database))
        _create_schema(database)
    wanted = DAGSTER_YAML.format(
        storage=storage,
        start_timeout_seconds=int(get_settings().writer_lease_wait_seconds) + 180,
    )
    if not config.exists() or config.read_text() != wanted:
        config.write_text(wanted)
        config.chmod(0o600)  # a PostgreSQL password in the connection string stays this user's
    return home


def _postgres_url(database: str) -> str:
    """The SQLAlchemy URL Dagster connects with, as a YAML string: every libpq parameter in its
    query (a socket directory as host, a password with any character), and the schema first in
    the search path, where Dagster creates and finds its tables."""
    from psycopg.conninfo import conninfo_to_dict  # a SQLite deployment never needs it

    parameters = {key: str(value) for key, value in conninfo_to_dict(database).items()}
    given = parameters.get("options", "")
    parameters["options"] = f"{given} -csearch_path={POSTGRES_SCHEMA}".strip()
    # psycopg2, which Dagster is written for (SQLAlchemy 2.1 would pick psycopg 3 for plain
    # postgresql://, and Dagster's NOTIFY fails there).
    return json.dumps(f"postgresql+psycopg2:///?{urlencode(parameters)}")  # JSON strings are YAML


def _create_schema(database: str) -> None:
    import psycopg

    try:
        with psycopg.connect(database, autocommit=True, connect_timeout=10) as connection:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {POSTGRES_SCHEMA}")
    except psycopg.OperationalError as error:
        raise DagsterStorageUnreachable(
            f"Dagster's storage is kept in PostgreSQL, which cannot be reached: "
            f"{str(error).strip()}"
        ) from error


def warehouse_instance(layout: Layout) -> DagsterInstance:
    """The instance `dagster dev` (started by `loom up` with DAGSTER_HOME=that directory) uses,
    for runs started in this process (Dagster reads its settings from the environment)."""
    os.environ.update(DAGSTER_ENVIRONMENT)
    return DagsterInstance.from_config(str(prepare_dagster_home(layout)))
