"""The project's Dagster event log (dagster_project/event_storage.py) on a real instance: runs'
events are all stored and indexed, through engines kept open instead of one per event."""

# No `from __future__ import annotations`: Dagster inspects the `context` annotation at runtime.

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster import AssetExecutionContext, DagsterInstance

from dagster_project.event_storage import BatchingSqliteEventLogStorage
from dagster_project.instance import warehouse_instance
from warehouse.layout import Layout


@dg.asset(partitions_def=dg.StaticPartitionsDefinition([str(n) for n in range(20)]))
def numbered(context: AssetExecutionContext) -> dg.MaterializeResult:
    context.log.info(f"partition {context.partition_key}")
    return dg.MaterializeResult(metadata={"partition": context.partition_key})


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    with warehouse_instance(Layout(tmp_path / "data")) as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
        yield instance


@pytest.fixture
def sqlite_connections() -> Iterator[list[str]]:
    """The SQLite databases connected to while the test runs, one entry per new connection."""
    opened: list[str] = []

    def on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        ((_, _, path),) = dbapi_connection.execute("PRAGMA database_list").fetchall()
        opened.append(Path(path).name)

    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", on_connect)
    yield opened
    sqlalchemy.event.remove(sqlalchemy.pool.Pool, "connect", on_connect)


def test_a_runs_events_are_stored_and_indexed_over_a_few_connections(
    instance: DagsterInstance, sqlite_connections: list[str]
) -> None:
    runs = [dg.materialize([numbered], instance=instance, partition_key=str(n)) for n in range(3)]

    for n, result in enumerate(runs):
        assert result.success
        logs = instance.all_logs(result.run_id)
        assert any(f"partition {n}" in entry.user_message for entry in logs)
        materialized = [
            entry
            for entry in logs
            if entry.is_dagster_event and entry.dagster_event.is_step_materialization
        ]
        assert len(materialized) == 1
    stored = instance.fetch_materializations(numbered.key, limit=10).records
    assert sorted(record.partition_key for record in stored) == ["0", "1", "2"]
    # Three runs of ~15 events each, every event written to its run's database and many to the
    # index too: Dagster's own storage opens a connection per write (some 80 here), this one a
    # couple per database.
    event_log = [name for name in sqlite_connections if name != "runs.db"]  # runs: Dagster's
    assert len(event_log) <= 3 * 2 + 3, sorted(event_log)


def test_a_wiped_run_database_is_written_again_not_its_deleted_file(
    instance: DagsterInstance,
) -> None:
    result = dg.materialize([numbered], instance=instance, partition_key="7")
    logs = instance.all_logs(result.run_id)

    instance.event_log_storage.wipe()
    assert instance.all_logs(result.run_id) == []
    for entry in logs:
        instance.event_log_storage.store_event(entry)

    assert len(instance.all_logs(result.run_id)) == len(logs)
