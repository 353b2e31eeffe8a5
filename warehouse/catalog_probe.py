"""Has the lake changed? Asked of its catalog database directly, for a fraction of a DuckLake query.

DuckLake's catalog tables are a documented specification: every commit adds a row to
``ducklake_snapshot``, so its newest ``snapshot_id`` moves exactly when the lake changes. The
probe passes that one query through to the catalog database (DuckDB's ``sqlite_query`` /
``postgres_query``), so a reader can ask often and run the DuckLake query of the publishes only
when the answer moved (:class:`warehouse.published.PublishedMarts`; the costs are in
docs/benchmarks.md, "Freshness").

It goes through DuckDB's own SQLite extension rather than Python's ``sqlite3``: two copies of
SQLite in one process do not see each other's locks, and a ``sqlite3`` connection opened in a
process that also writes the lake through DuckLake kept answering the snapshot it first saw
(``tests/warehouse/test_catalog_probe.py``)."""

from __future__ import annotations

import threading

import duckdb

from warehouse.duck import unattached_connection
from warehouse.layout import Layout

PROBE_ALIAS = "lake_catalog"
NEWEST_SNAPSHOT = "SELECT max(snapshot_id) FROM ducklake_snapshot"
# What each catalog database says when DuckLake has not created its tables there yet.
NO_LAKE_YET = ("no such table", "does not exist")


class CatalogUnreachable(RuntimeError):
    """The catalog database cannot be read (its server is down, its file is damaged)."""


class CatalogProbe:
    """The id of the lake's newest snapshot, read from its catalog database; None while the lake
    does not exist yet. Thread-safe: one connection, opened on first use and again after a
    failure."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def newest_snapshot(self) -> int | None:
        lake = self._layout.lake
        if not lake.is_created():  # a SQLite catalog the first run has not created yet
            return None
        with self._lock:
            try:
                if self._con is None:
                    self._con = self._connect()
                [(newest,)] = self._con.execute(
                    f"SELECT * FROM {lake.catalog_kind}_query(?, ?)",
                    [PROBE_ALIAS, NEWEST_SNAPSHOT],
                ).fetchall()
            except duckdb.Error as error:
                if any(words in str(error) for words in NO_LAKE_YET):
                    return None
                self._close()
                raise CatalogUnreachable(f"the lake catalog cannot be read: {error}") from error
            return newest

    def close(self) -> None:
        with self._lock:
            self._close()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = unattached_connection(self._layout)
        try:
            con.execute(self._layout.lake.catalog_database_attach_sql(PROBE_ALIAS))
        except BaseException:
            con.close()
            raise
        return con

    def _close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
