"""Dagster's SQLite event log, storing a batch of one run's materializations in one transaction,
through engines kept open. A WORKAROUND built on Dagster's internals, written for dagster 1.13.27
(why and what it saves: framework_workarounds.py; tests/test_workaround_pins.py).

A backfill is one run, and each asset of it materializes every hour of the range: a 30-day
backfill yields 720 materializations per asset, about 25,000 in all. Dagster hands the hours of
one output to ``store_event_batch`` (when ``DAGSTER_EVENT_BATCH_SIZE`` is set, see
``instance.py``), but its SQLite storage stores them one by one, each with its own engine,
connection and transaction on two databases (the run's and the index): most of the time a
backfill took. This storage writes such a batch the way ``store_event`` writes one event,
in one transaction per database, as Dagster's PostgreSQL storage does, and updates each asset's
row of the index once per batch, not once per hour. Anything else is stored one event at a time,
as before.

Dagster's SQLite storage also creates an engine for every connection it opens and disposes of it
after: each event stored paid for a new engine, a new SQLite connection and SQLAlchemy compiling
its statements again (the compiled-statement cache lives in the engine). This storage keeps the
engines of the index and of the last few runs' databases, and their connections, open.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine

# The index and a run's database, with room for a few runs one process writes at a time (the UI's
# process, or a daemon's, serves many).
OPEN_ENGINES = 8


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's own _connect, with the shard's engine kept instead of created and disposed.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None) or create_engine(
            self.conn_string_for_shard(shard),
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        self._engines[shard] = engine
        while len(self._engines) > OPEN_ENGINES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        # Run databases are deleted: an open connection would go on writing to a deleted file.
        self._dispose_engines()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()

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
            # Storing an asset event overwrites the asset's row (its last materialization, run
            # and time) with the event's values: of a batch, only each asset's last one stays.
            last_of_asset = {
                event.dagster_event.asset_key: (event, event_id)
                for event, event_id in zip(events, event_ids, strict=True)
            }
            for event, event_id in last_of_asset.values():
                self._store_asset_event(conn, event, event_id)


def _one_runs_materializations(events: Sequence[EventLogEntry]) -> bool:
    return len({event.run_id for event in events}) == 1 and all(
        event.is_dagster_event
        and event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION
        for event in events
    )
