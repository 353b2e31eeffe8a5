"""Has the lake changed? Asked of its catalog database for a fraction of a DuckLake query, so that a
reader can ask ten times a second and run the DuckLake query of the publishes only when the answer
is yes (:class:`warehouse.published.PublishedMarts`; the costs are in docs/benchmarks.md,
"Publish to readers").

* A PostgreSQL catalog is asked for the newest ``snapshot_id`` of ``ducklake_snapshot`` (DuckLake's
  catalog tables are a documented specification; every commit adds a row), on one connection
  kept open.
* A SQLite catalog is not queried at all: every commit writes its write-ahead log, so the log's and
  the database file's size and modification time move with the lake. Querying it instead cost
  more than it saves: DuckDB's SQLite extension opens the file for each query, and while the
  pipeline commits such an open waits out SQLite's busy handler, a whole second at a time in
  DuckDB's build; Python's ``sqlite3`` is a second copy of SQLite in the process, which does not
  see the first one's locks (a connection of it opened before a DuckLake write in the same process
  kept answering the old state).

A file's modification time moves in clock ticks, so two commits within one tick can look alike;
after any change the probe therefore answers yes once more, at the next look."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from warehouse.layout import Lake

NEWEST_SNAPSHOT = "SELECT max(snapshot_id) FROM ducklake_snapshot"
SETTLE_SECONDS = 0.02
SETTLE_LOOKS = 5
CONNECT_TIMEOUT_SECONDS = 5


class CatalogUnreachable(RuntimeError):
    """The catalog database cannot be reached (its server is down)."""


class CatalogProbe:
    """Whether the lake may have changed since the last time it was asked; thread-safe."""

    def __init__(self, lake: Lake) -> None:
        self._lake = lake
        self._seen: object = None
        self._settling = True  # the first look, and the one after each change, always says yes
        self._postgres: Any = None  # the open psycopg connection, for a PostgreSQL catalog
        self._lock = threading.Lock()

    def changed(self) -> bool:
        with self._lock:
            state = self._state()
            moved = state != self._seen
            if moved and self._lake.catalog_kind == "sqlite":
                state = self._settled(state)
            changed, self._settling, self._seen = moved or self._settling, moved, state
            return changed

    def close(self) -> None:
        with self._lock:
            self._close_postgres()

    def _settled(self, state: object) -> object:
        """The files' state once they stop changing, looking a few times at most. A writer that
        is the catalog's last connection checkpoints the log when it closes, right after its
        commit; a reader opening the catalog meanwhile waits out SQLite's busy handler, a whole
        second in DuckDB's build, so the DuckLake query waits for the checkpoint instead."""
        for _ in range(SETTLE_LOOKS):
            time.sleep(SETTLE_SECONDS)
            later = self._state()
            if later == state:
                break
            state = later
        return state

    def _state(self) -> object:
        if self._lake.catalog_kind == "sqlite":
            database = Path(self._lake.catalog.removeprefix("sqlite:"))
            return _file_state(database), _file_state(Path(f"{database}-wal"))
        return self._newest_in_postgres()

    def _newest_in_postgres(self) -> int | None:
        import psycopg  # imported here: only a PostgreSQL catalog needs it

        try:
            if self._postgres is None:
                self._postgres = psycopg.connect(
                    self._lake.catalog.removeprefix("postgres:"),
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                )
            [(newest,)] = self._postgres.execute(NEWEST_SNAPSHOT).fetchall()
        except psycopg.errors.UndefinedTable:  # no pipeline has written this lake yet
            return None
        except psycopg.Error as error:
            self._close_postgres()  # reconnect at the next look
            raise CatalogUnreachable(f"the lake catalog cannot be read: {error}") from error
        return newest

    def _close_postgres(self) -> None:
        if self._postgres is not None:
            self._postgres.close()
            self._postgres = None


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:  # no lake yet; no write-ahead log right after a checkpoint
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns
