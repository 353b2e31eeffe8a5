"""The warehouse resource: where the data directory and the lake are (warehouse.layout)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from warehouse.duck import connect_pipeline
from warehouse.layout import LAKE_ALIAS, Layout
from warehouse.settings import Settings, get_settings
from warehouse.writer_lease import holder_name, writer_lease

# Every step that writes the lake runs in this pool. DAGSTER_HOME's dagster.yaml (written by
# dagster_project.instance) limits it to one slot, so across the UI, the daemon's schedule/sensor
# runs and `loom run` one step writes at a time: runs never race each other's incremental merges.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The Loom data directory. Unset means ``LOOM_DATA_DIR`` as the rest of Loom reads it, looked
    up when a run starts, so one definitions object serves any data directory.

    A run's steps share one DuckDB connection to the lake, opened by the first step that needs it
    and closed when the run ends: each new connection loads DuckDB's extensions and attaches the
    lake again, and an hourly run has eight such steps."""

    data_dir: str | None = None
    _connection: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)
    _lease: ExitStack | None = PrivateAttr(default=None)
    _holder: str = PrivateAttr(default="")
    _log: logging.Logger | None = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        settings = get_settings()
        if self.data_dir is None:
            return settings
        return settings.model_copy(update={"data_dir": Path(self.data_dir).expanduser().resolve()})

    @property
    def layout(self) -> Layout:
        return Layout.from_settings(self.settings)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._holder = holder_name(context.run.run_id if context.run else None)
        self._log = context.log

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the run's connection to the lake (its own transactions), closed when the
        block ends. The first one takes the lake's writer lease for the rest of the run
        (warehouse.writer_lease): another pipeline host's run waits, or fails naming it."""
        if self._connection is None:
            lease = ExitStack()
            lease.enter_context(
                writer_lease(
                    self.layout.lake,
                    self._holder or holder_name(),
                    wait_s=self.settings.writer_lease_wait_seconds,
                    on_wait=self._log.warning if self._log else lambda _: None,
                )
            )
            self._lease = lease
            self._connection = connect_pipeline(self.layout)
        cursor = self._connection.cursor()
        try:
            cursor.execute(f"USE {LAKE_ALIAS}")  # a cursor does not inherit the connection's
            yield cursor
        finally:
            cursor.close()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._lease is not None:
            self._lease.close()
            self._lease = None
