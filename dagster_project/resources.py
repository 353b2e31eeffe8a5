"""The warehouse resource: where the data directory and the lake are (warehouse.layout)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.settings import Settings, get_settings

# Every step that writes the lake runs in this pool. DAGSTER_HOME's dagster.yaml (written by
# dagster_project.instance) limits it to one slot, so across the UI, the daemon's schedule/sensor
# runs and `loom run` one step writes at a time: runs never race each other's incremental merges.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The Loom data directory. Unset means ``LOOM_DATA_DIR`` as the rest of Loom reads it, looked
    up when a run starts, so one definitions object serves any data directory."""

    data_dir: str | None = None

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
        """The pipeline's connection to the lake, closed when the block ends."""
        con = connect_pipeline(self.layout)
        try:
            yield con
        finally:
            con.close()
