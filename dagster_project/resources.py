"""The warehouse resource: where the data directory and the lake are (warehouse.layout)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from warehouse.duck import connect_pipeline
from warehouse.layout import LAKE_ALIAS, Layout
from warehouse.settings import Settings, get_settings

# Every step that writes the lake runs in this pool. DAGSTER_HOME's dagster.yaml (written by
# dagster_project.instance) limits it to one slot, so across the UI, the daemon's schedule/sensor
# runs and `loom run` one step writes at a time: runs never race each other's incremental merges.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The Loom data directory. Unset means ``LOOM_DATA_DIR`` as the rest of Loom reads it, looked
    up when a run starts, so one definitions object serves any data directory.

    A run's steps share one DuckDB connection to the lake, opened by the first step that needs it
    and closed when the run ends: each new connection loads and verifies DuckDB's signed
    extensions (~0.15 s) and attaches the lake again, and an hourly run has eight such steps."""

    data_dir: str | None = None
    _connection: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)

    @property
    def settings(self) -> Settings:
        settings = get_settings()
        if self.data_dir is None:
            return settings
        return settings.model_copy(update={"data_dir": Path(self.data_dir).expanduser().resolve()})

    @property
    def layout(self) -> Layout:
        return Layout.from_settings(self.settings)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of the run's connection to the lake (its own transactions), closed when the
        block ends."""
        if self._connection is None:
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
