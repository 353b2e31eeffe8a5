"""Dagster's PostgreSQL storage, holding its connections open. A WORKAROUND for a cost, written
for dagster 1.13.27 and dagster-postgres 0.29.27 (tests/test_workaround_pins.py).

Outside the webserver, Dagster's PostgreSQL storages open a new connection for every statement
(SQLAlchemy's ``NullPool``, so that many short-lived instances pile up no connections). A run
reads and writes the storage hundreds of times: a quiet hour's ``loom run`` on a PostgreSQL
catalog spent 27.3 s in Dagster with this storage against 12.7 s with the SQLite one (medians of
3 in turns), and 100 run lookups took 3.0 s instead of 0.3 s with a connection kept. This
storage does in every process (``loom run``, the daemon, the run worker) what Dagster does in its
webserver (``optimize_for_webserver``): one connection kept per storage, more while threads (the
sensors') need them, recycled hourly. With it, 1.07x to 1.21x the SQLite storage's time in Dagster
(``python -m bench dagster_storage``, docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_RECYCLE_S = 3600
MAX_OVERFLOW = 8  # the sensors' 4 threads and the run's own, each with a connection at once


class PooledPostgresStorage(DagsterPostgresStorage):
    def __init__(self, postgres_url: str, **kwargs: Any) -> None:
        super().__init__(postgres_url, **kwargs)
        for storage in (self.run_storage, self.event_log_storage, self.schedule_storage):
            # No statement timeout: a backfill's batch of materializations takes what it takes.
            storage.optimize_for_webserver(
                statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=MAX_OVERFLOW
            )

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledPostgresStorage:
        return cls(
            pg_url_from_config(config_value),
            inst_data=inst_data,
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
