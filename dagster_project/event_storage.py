"""Dagster's SQLite event log, storing a batch of one run's materializations in one transaction.

A backfill is one run, and each asset of it materializes every hour of the range: a 30-day
backfill yields 720 materializations per asset, about 25,000 in all. Dagster hands the hours of
one output to ``store_event_batch`` (when ``DAGSTER_EVENT_BATCH_SIZE`` is set, see
``instance.py``), but its SQLite storage stores them one by one, each with its own engine,
connection and transaction on two databases (the run's and the index): ~9 ms each, most of the
time a backfill took. This storage writes such a batch the way ``store_event`` writes one event,
in one transaction per database, as Dagster's PostgreSQL storage does. Anything else is stored
one event at a time, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._serdes import ConfigurableClassData


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not _one_runs_materializations(events):
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            event_ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, event_ids)
            for event, event_id in zip(events, event_ids, strict=True):
                self._store_asset_event(conn, event, event_id)


def _one_runs_materializations(events: Sequence[EventLogEntry]) -> bool:
    return len({event.run_id for event in events}) == 1 and all(
        event.is_dagster_event
        and event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
        for event in events
    )
