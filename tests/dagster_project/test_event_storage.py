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


@dg.asset(
    partitions_def=dg.StaticPartitionsDefinition([f"{n:02}" for n in range(30)]),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def hourly(context: AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"hours": len(context.partition_keys)})


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
    # index too: Dagster's own storage opens a connection per write (71 here), this one a
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


def test_a_range_runs_materializations_are_stored_as_a_batch_with_the_last_as_latest(
    instance: DagsterInstance,
) -> None:
    def run_range(start: str, end: str) -> str:
        tags = {
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        }
        result = dg.materialize([hourly], instance=instance, tags=tags)
        assert result.success
        return result.run_id

    run_range("00", "19")
    second = run_range("05", "24")

    records = instance.fetch_materializations(hourly.key, limit=100).records
    assert sorted(record.partition_key for record in records) == sorted(
        [f"{n:02}" for n in range(20)] + [f"{n:02}" for n in range(5, 25)]
    )
    newest = max(records, key=lambda record: record.storage_id)
    latest = instance.get_latest_materialization_event(hourly.key)
    assert latest.run_id == second
    assert latest.dagster_event.partition == newest.partition_key
    [asset_record] = instance.get_asset_records([hourly.key])
    assert asset_record.asset_entry.last_run_id == second
    assert asset_record.asset_entry.last_materialization_record.storage_id == newest.storage_id
    keys = [f"{n:02}" for n in range(30)]
    status = instance.get_status_by_partition(hourly.key, keys, hourly.partitions_def)
    materialized = {
        key for key, state in status.items() if state == dg.AssetPartitionStatus.MATERIALIZED
    }
    assert materialized == set(keys[:25])
