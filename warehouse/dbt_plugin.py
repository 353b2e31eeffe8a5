"""A dbt-duckdb plugin giving dbt's DuckDB connection what every Loom connection has
(:mod:`warehouse.duck`): the signed extensions from PyPI and no network, naive-UTC clocks, the
scratch directory for spills, and the lake attached read-write as ``warehouse``.

``dbt_project/profiles.yml`` names it; the lake's location comes from the ``LOOM_*`` environment
that :func:`warehouse.dbt.dbt_env` sets, so dbt writes the lake the rest of the pipeline reads.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.credentials import DuckDBCredentials
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from warehouse.duck import attach_lake, duckdb_config, load_extensions
from warehouse.layout import Layout
from warehouse.settings import Settings


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        # Read the environment now, not the process's cached settings: in-process dbt runs
        # (tests, benchmarks) target a different lake each time.
        self.layout = Layout.from_settings(Settings())

    def update_connection_config(self, creds: DuckDBCredentials, config: dict[str, Any]) -> None:
        self.layout.scratch_dir.mkdir(parents=True, exist_ok=True)
        config.update(duckdb_config(self.layout), temp_directory=str(self.layout.scratch_dir))

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        conn.execute("SET GLOBAL TimeZone = 'UTC'")
        load_extensions(conn, self.layout.lake)
        attach_lake(conn, self.layout.lake)
        # dbt works through cursors, which do not inherit the USE of attach_lake: their default
        # catalog stays the in-memory one. Everything dbt renders names the lake in full
        # ("warehouse"."analytics"...), and an unqualified name (dbt-duckdb's own
        # `duckdb_databases()`, a temporary table) then resolves without opening a lake
        # transaction. A USE per cursor would open a lake transaction of its own; inline SQL
        # (`dbt show --inline`) names tables with ref() or in full.
