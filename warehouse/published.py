"""Published snapshots: the state of the lake readers see.

Each dbt model commits on its own, so the lake's latest snapshot can hold marts of two runs;
:func:`publish` records the snapshot a successful run ended on, and readers attach only that one,
read-only. :class:`PublishedMarts` is the read API's reader, which follows new publishes without
making a request wait. The design and its failure behaviour: docs/lake.md, "Published snapshots".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from warehouse.duck import connect_reader
from warehouse.lake_files import LakeFile, check, is_undecodable, live_files, named_lake_file
from warehouse.layout import LAKE_ALIAS, Layout, naive_utc

PUBLISHED_TABLE = f"{LAKE_ALIAS}.ops.published_snapshots"
# What attaching a lake read-only says when its catalog database holds no lake yet.
NOT_CREATED = "creating a new DuckLake is explicitly disabled"
POLL_SECONDS = 1.0
log = logging.getLogger(__name__)


class NoSnapshotError(RuntimeError):
    """Nothing has been published yet: the pipeline has not completed a run."""


class CatalogUnavailable(RuntimeError):
    """The lake's catalog cannot be reached (the PostgreSQL server is down, the file is gone).
    The message is for clients: the error behind it (``__cause__``) may name servers and paths."""


class LakeFileDamaged(RuntimeError):
    """A data file the query needs is missing or damaged: it fails until the file is repaired
    (``loom doctor``), not after a while. The process logs which file, once per snapshot."""


@dataclass(frozen=True)
class Publish:
    """One published snapshot: what readers of it see, and how fresh it is."""

    snapshot_id: int
    published_at: datetime
    data_as_of: datetime | None  # the newest received time of the records it holds


def ensure_published_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE_ALIAS}.ops")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {PUBLISHED_TABLE}"
        " (snapshot_id BIGINT NOT NULL, published_at TIMESTAMP NOT NULL, data_as_of TIMESTAMP)"
    )
    # Lakes published before data_as_of was recorded (a no-op, no commit, once it is there).
    con.execute(f"ALTER TABLE {PUBLISHED_TABLE} ADD COLUMN IF NOT EXISTS data_as_of TIMESTAMP")


def publish(
    con: duckdb.DuckDBPyConnection,
    data_as_of: datetime | None = None,
    published_at: datetime | None = None,
) -> int:
    """Publish the lake's current snapshot (``con`` is the pipeline's), holding the records
    received up to ``data_as_of``; returns its id. ``published_at`` (default now) is for
    simulations of a clock (bench/bench_batches.py)."""
    ensure_published_table(con)
    [(snapshot_id,)] = con.execute(
        f"SELECT id FROM ducklake_current_snapshot('{LAKE_ALIAS}')"
    ).fetchall()
    con.execute(
        f"INSERT INTO {PUBLISHED_TABLE} (snapshot_id, published_at, data_as_of) VALUES (?, ?, ?)",
        [snapshot_id, naive_utc(published_at or datetime.now(UTC)), data_as_of],
    )
    return snapshot_id


def latest_published(con: duckdb.DuckDBPyConnection) -> int | None:
    """The newest published snapshot id, read through a connection to the lake's latest state."""
    try:
        # fetchall, not fetchone: an unfinished result keeps the catalog's read lock, and a
        # SQLite catalog then refuses the pipeline's next commit.
        [(snapshot_id,)] = con.execute(f"SELECT max(snapshot_id) FROM {PUBLISHED_TABLE}").fetchall()
    except duckdb.CatalogException:  # no run has published yet
        return None
    return snapshot_id


def published_snapshot_id(layout: Layout) -> int | None:
    """The newest published snapshot of ``layout``'s lake, read from its latest state; None
    before the first publish, including before the lake exists at all."""
    if not layout.lake.is_created():
        return None
    try:
        with connect_reader(layout) as latest:
            return latest_published(latest)
    except duckdb.Error as error:
        if NOT_CREATED in str(error):  # a PostgreSQL catalog no pipeline has written yet
            return None
        raise


def published_history(
    con: duckdb.DuckDBPyConnection, newest: int | None
) -> list[tuple[int, datetime]]:
    """The ``newest`` most recent publishes (all with None), newest first: (snapshot id,
    published at)."""
    ensure_published_table(con)
    return con.execute(
        f"SELECT snapshot_id, published_at FROM {PUBLISHED_TABLE}"
        " ORDER BY snapshot_id DESC LIMIT ?",
        [newest],
    ).fetchall()


def forget_publishes(con: duckdb.DuckDBPyConnection, snapshot_ids: list[int]) -> None:
    """Drop publishes whose snapshots are being expired: no reader can attach them any more."""
    con.execute(
        f"DELETE FROM {PUBLISHED_TABLE} WHERE snapshot_id IN (SELECT unnest(?))", [snapshot_ids]
    )


@dataclass
class _OpenSnapshot:
    snapshot_id: int
    connection: duckdb.DuckDBPyConnection
    in_use: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self) -> None:
        with self.lock:
            self.in_use += 1

    def release(self) -> None:
        with self.lock:
            self.in_use -= 1
            close = self.retired and self.in_use == 0
        if close:
            self.connection.close()

    def retire(self) -> None:
        with self.lock:
            self.retired = True
            close = self.in_use == 0
        if close:
            self.connection.close()


class PublishedMarts:
    """The newest published snapshot of the lake, for one process's readers; thread-safe."""

    def __init__(
        self,
        layout: Layout,
        *,
        poll_seconds: float = POLL_SECONDS,
        connect: Callable[[Layout, int | None], duckdb.DuckDBPyConnection] = connect_reader,
    ) -> None:
        self._layout = layout
        self._poll_seconds = poll_seconds
        self._connect = connect
        self._open: _OpenSnapshot | None = None
        self._watch: duckdb.DuckDBPyConnection | None = None  # the lake's latest state
        self._lock = threading.Lock()  # guards _open
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: Exception | None = None  # why the last refresh failed, if it did
        self._last_check = -float("inf")  # when the newest publish was last looked up
        # Lake files found damaged: (snapshot, path) -> what is wrong.
        self._damaged: dict[tuple[int, str], str] = {}
        self._searched: set[int] = set()  # snapshots searched for a file that did not decode
        self._damage_lock = threading.Lock()

    def start(self) -> None:
        """Follow new publishes in the background (the first refresh happens on first use)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._follow, name="published-snapshot-follower", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._refresh_lock, self._lock:
            if self._open is not None:
                self._open.retire()
                self._open = None
            if self._watch is not None:
                self._watch.close()
                self._watch = None

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the newest published snapshot, valid until the ``with`` block ends.

        :class:`NoSnapshotError` before the first publish; :class:`CatalogUnavailable` when the
        lake's catalog or files cannot be reached."""
        snapshot = self._acquire()
        try:
            cursor = snapshot.connection.cursor()
            try:
                yield cursor
            except duckdb.Error as error:
                failure = self._read_failure(error, snapshot)
                if failure is None:
                    raise
                raise failure from error
            finally:
                cursor.close()
        finally:
            snapshot.release()

    def _read_failure(self, error: duckdb.Error, snapshot: _OpenSnapshot) -> Exception | None:
        """What a failed query means for its client: a damaged file, an unreachable lake, or
        (None) a fault of the query itself."""
        path = named_lake_file(error, self._layout.lake.data_path)
        if path is not None and self._damage_at(path, snapshot):
            return LakeFileDamaged("a file of the lake is missing or damaged")
        if path is None and is_undecodable(error):
            self._find_damage_later(snapshot.snapshot_id, error)
            return LakeFileDamaged("a file of the lake is missing or damaged")
        if isinstance(error, duckdb.IOException):
            # The catalog (a PostgreSQL server) or the data files (shared storage) cannot be
            # reached: not the query's fault, and the connection recovers once they are back.
            return CatalogUnavailable("the lake cannot be read")
        return None

    def _damage_at(self, path: str, snapshot: _OpenSnapshot) -> str | None:
        """What is wrong with the lake file at ``path``, checked once and logged once; None when
        nothing is (the error was passing: storage that could not be reached)."""
        with self._damage_lock:
            if (snapshot.snapshot_id, path) in self._damaged:
                return self._damaged[snapshot.snapshot_id, path]
            cursor = snapshot.connection.cursor()
            try:
                files = live_files(cursor, self._layout.lake.data_path, [snapshot.snapshot_id])
                file = next((file for file in files if file.path == path), None)
                problem = None if file is None else check(cursor, file)
            except duckdb.Error:  # the catalog cannot be read either: nothing to tell yet
                return None
            finally:
                cursor.close()
            if file is not None and problem is not None:
                self._record_damage(snapshot.snapshot_id, file, problem)
            return problem

    def _record_damage(self, snapshot_id: int, file: LakeFile, problem: str) -> None:
        self._damaged[snapshot_id, file.path] = problem
        log.error(
            "damaged lake file %s (%s, %s file): %s; reads that need it answer 503 until it is"
            " repaired: see `loom doctor`",
            file.path,
            file.table,
            file.kind,
            problem,
        )

    def _find_damage_later(self, snapshot_id: int, error: duckdb.Error) -> None:
        """DuckDB could not decode a file without saying which: check every file of the
        snapshot in the background (once per snapshot) and log the damaged ones."""
        with self._damage_lock:
            if snapshot_id in self._searched:
                return
            self._searched.add(snapshot_id)
        log.error(
            "a file of published snapshot %d does not decode (%s); checking its files to find it",
            snapshot_id,
            error,
        )
        threading.Thread(
            target=self._find_damage, args=(snapshot_id,), name="lake-damage-search", daemon=True
        ).start()

    def _find_damage(self, snapshot_id: int) -> None:
        try:
            with self._connect(self._layout, snapshot_id) as con:
                con.execute("SET threads = 1")  # leave the other cores to the requests
                files = live_files(con, self._layout.lake.data_path, [snapshot_id])
                damaged = [(file, problem) for file in files if (problem := check(con, file))]
        except duckdb.Error as error:
            log.error("could not check the files of published snapshot %d: %s", snapshot_id, error)
            return
        with self._damage_lock:
            for file, problem in damaged:
                if (snapshot_id, file.path) not in self._damaged:
                    self._record_damage(snapshot_id, file, problem)
        if not damaged:
            log.error("found no damaged file among the %d of snapshot %d", len(files), snapshot_id)

    def snapshot_id(self) -> int:
        """The snapshot this process answers from now (opening it if need be)."""
        snapshot = self._acquire()
        snapshot.release()
        return snapshot.snapshot_id

    def refresh(self) -> bool:
        """Switch to the newest published snapshot if there is a newer one; whether it did."""
        with self._refresh_lock:
            self._last_check = time.monotonic()
            try:
                newest = self._newest_published()
            except duckdb.Error as error:
                self._forget_watch()
                raise CatalogUnavailable("the lake catalog cannot be read") from error
            current = self._open
            if newest is None or (current is not None and current.snapshot_id == newest):
                return False
            try:
                connection = self._connect(self._layout, newest)
            except duckdb.Error as error:
                raise CatalogUnavailable(f"could not open published snapshot {newest}") from error
            with self._lock:
                previous, self._open = self._open, _OpenSnapshot(newest, connection)
            if previous is not None:
                previous.retire()
            return True

    def _acquire(self) -> _OpenSnapshot:
        with self._lock:
            snapshot = self._open
            if snapshot is not None:
                snapshot.acquire()
                return snapshot
        # Nothing open yet: this request looks for a publish, unless one looked a moment ago (a
        # burst of requests before the first publish must not each attach the lake). A look in
        # progress (another request's, the follower's) may be about to open one: wait for it.
        if time.monotonic() - self._last_check >= self._poll_seconds:
            self.refresh()
        else:
            with self._refresh_lock:
                pass
        with self._lock:
            snapshot = self._open
            if snapshot is None:
                raise NoSnapshotError("nothing published yet: no pipeline run has finished")
            snapshot.acquire()
            return snapshot

    def _newest_published(self) -> int | None:
        if self._watch is None:  # one connection to the lake's latest state, kept for polling
            if not self._layout.lake.is_created():
                return None
            try:
                self._watch = self._connect(self._layout, None)
            except duckdb.Error as error:
                if NOT_CREATED in str(error):  # a PostgreSQL catalog no run has written yet
                    return None
                raise
        return latest_published(self._watch)

    def _forget_watch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _follow(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.refresh()
                if self._problem is not None:
                    log.warning("the lake catalog is reachable again")
                self._problem = None
            except (CatalogUnavailable, duckdb.Error) as problem:
                if self._problem is None:
                    log.error(
                        "cannot follow published snapshots: %s (%s)", problem, problem.__cause__
                    )
                self._problem = problem
                time.sleep(self._poll_seconds)  # back off a little more while it is down
