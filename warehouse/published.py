"""Published snapshots: the state of the lake readers see.

Each dbt model commits on its own, so the lake's latest snapshot can hold marts of two runs;
:func:`publish` records the snapshot a successful run ended on, and readers attach only that one,
read-only. :class:`PublishedMarts` is the read API's reader: it switches to each new publish
within a fraction of a second of it, and answers from an older publish still kept when asked
(time travel). The design and its failure behaviour: docs/lake.md, "Published snapshots".
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from warehouse.catalog_probe import CatalogProbe, CatalogUnreachable
from warehouse.duck import attach_lake, connect_reader, unattached_connection
from warehouse.lake_files import LakeFile, check, is_undecodable, live_files, named_lake_file
from warehouse.layout import LAKE_ALIAS, Layout, naive_utc

PUBLISHED_TABLE = f"{LAKE_ALIAS}.ops.published_snapshots"
# What attaching a lake read-only says when its catalog database holds no lake yet.
NOT_CREATED = "creating a new DuckLake is explicitly disabled"
NOTHING_PUBLISHED = "nothing published yet: no pipeline run has published the marts yet"
# How often the follower asks the catalog database whether the lake changed (a cheap probe); a
# DuckLake query of the publishes follows only when it did.
PROBE_SECONDS = 0.1
# A request arriving while the process attaches a newer publish waits for it, rather than answer
# from the one before; at most this long (an attach to a ready connection takes far less).
WAIT_FOR_OPENING_SECONDS = 2.0
# After a failed look (the catalog is down), requests repeat its error this long instead of
# each trying again; the follower also waits this long before its next look.
RETRY_SECONDS = 1.0
# The connection for the next snapshot is prepared this long after a switch: preparing it keeps a
# core busy, and the new snapshot's first requests come first.
PREPARE_AFTER_SWITCH_SECONDS = 0.5
# Older publishes kept attached per process for time travel, and how long one may go unused.
OLDER_SNAPSHOTS = 4
OLDER_IDLE_SECONDS = 60.0
log = logging.getLogger(__name__)


class NoSnapshotError(RuntimeError):
    """Nothing has been published yet: no pipeline run has published the marts."""


class CatalogUnavailable(RuntimeError):
    """The lake's catalog cannot be reached (the PostgreSQL server is down, the file is gone).
    The message is for clients: the error behind it (``__cause__``) may name servers and paths."""


class LakeFileDamaged(RuntimeError):
    """A data file the query needs is missing or damaged: it fails until the file is repaired
    (``loom doctor``), not after a while. The process logs which file, once per snapshot."""


class TimeNotKept(LookupError):
    """A time older than every publish still kept: its snapshot has expired."""

    def __init__(self, as_of: datetime, oldest: datetime) -> None:
        super().__init__(
            f"nothing is kept from {as_of:%Y-%m-%dT%H:%M:%SZ}: the oldest publish kept is from "
            f"{oldest:%Y-%m-%dT%H:%M:%SZ}"
        )
        self.as_of = as_of
        self.oldest = oldest


@dataclass(frozen=True)
class Publish:
    """One published snapshot: what readers of it see, and how fresh it is."""

    snapshot_id: int
    published_at: datetime
    data_as_of: datetime | None  # the newest received time of the records it holds


@dataclass(frozen=True)
class Publishes:
    """The publishes still kept (retention deletes expired ones), in the order they were made."""

    kept: tuple[Publish, ...] = ()

    def newest(self) -> Publish | None:
        return self.kept[-1] if self.kept else None

    def at(self, as_of: datetime) -> Publish:
        """The newest publish made at or before ``as_of`` (the newest of all for a later time)."""
        if not self.kept:
            raise NoSnapshotError(NOTHING_PUBLISHED)
        made = bisect_right(self.kept, as_of, key=lambda publish: publish.published_at)
        if made == 0:
            raise TimeNotKept(as_of, self.kept[0].published_at)
        return self.kept[made - 1]

    def __contains__(self, snapshot_id: object) -> bool:
        return any(publish.snapshot_id == snapshot_id for publish in self.kept)


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
    simulations of a clock (the micro-batch benchmark)."""
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


def kept_publishes(con: duckdb.DuckDBPyConnection) -> Publishes:
    """Every publish still kept, read through a connection to the lake's latest state."""
    columns = "snapshot_id, published_at, data_as_of"
    try:
        rows = _publish_rows(con, columns)
    except duckdb.CatalogException:  # no run has published yet
        return Publishes()
    except duckdb.BinderException:  # published before data_as_of was recorded: none known
        rows = _publish_rows(con, "snapshot_id, published_at, NULL")
    return Publishes(tuple(Publish(*row) for row in rows))


def _publish_rows(con: duckdb.DuckDBPyConnection, columns: str) -> list[tuple]:
    return con.execute(f"SELECT {columns} FROM {PUBLISHED_TABLE} ORDER BY snapshot_id").fetchall()


def kept_publishes_of(layout: Layout) -> Publishes:
    """The publishes kept in ``layout``'s lake; none before the first, including before the lake
    exists at all."""
    if not layout.lake.is_created():
        return Publishes()
    try:
        with connect_reader(layout) as latest:
            return kept_publishes(latest)
    except duckdb.Error as error:
        if NOT_CREATED in str(error):  # a PostgreSQL catalog no pipeline has written yet
            return Publishes()
        raise


def published_snapshot_id(layout: Layout) -> int | None:
    """The newest published snapshot of ``layout``'s lake, read from its latest state; None
    before the first publish, including before the lake exists at all."""
    newest = kept_publishes_of(layout).newest()
    return None if newest is None else newest.snapshot_id


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
    publish: Publish
    connection: duckdb.DuckDBPyConnection
    in_use: int = 0
    retired: bool = False
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def snapshot_id(self) -> int:
        return self.publish.snapshot_id

    def acquire(self) -> None:
        with self.lock:
            self.in_use += 1

    def release(self) -> None:
        with self.lock:
            self.in_use -= 1
            self.last_used = time.monotonic()
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
    """The newest published snapshot of the lake, for one process's readers, and older ones still
    kept when asked for; thread-safe.

    A background thread probes the catalog database every :data:`PROBE_SECONDS`; when the lake
    changed it reads the kept publishes (a DuckLake query), and when there is a newer one it
    attaches it (to a connection kept ready with the extensions loaded) and switches. Listeners
    registered with :meth:`on_switch` hear of each switch."""

    def __init__(
        self,
        layout: Layout,
        *,
        probe_seconds: float = PROBE_SECONDS,
        connect: Callable[[Layout, int | None], duckdb.DuckDBPyConnection] | None = None,
    ) -> None:
        self._layout = layout
        self._probe_seconds = probe_seconds
        self._connect = connect or self._attach_to_ready_connection
        self._probe = CatalogProbe(layout.lake)
        self._unread = True  # the lake changed since the publishes were last read
        self._publishes = Publishes()  # as last read
        self._open: _OpenSnapshot | None = None
        self._opening = False  # a newer publish is being attached
        # Older publishes attached for time travel, least recently used first.
        self._older: OrderedDict[int, _OpenSnapshot] = OrderedDict()
        self._ready: duckdb.DuckDBPyConnection | None = None  # extensions loaded, unattached
        self._preparing = False  # a thread is preparing _ready
        self._switched_at = -float("inf")
        self._watch: duckdb.DuckDBPyConnection | None = None  # the lake's latest state
        self._lock = threading.Lock()  # guards _open, _opening, _older, _ready, _preparing
        self._switched = threading.Condition(self._lock)
        self._refresh_lock = threading.Lock()  # one look at a time
        self._older_lock = threading.Lock()  # one time-travel attach at a time
        self._listeners: list[Callable[[Publish], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: CatalogUnavailable | None = None  # why the last look failed, if it did
        self._last_check = -float("inf")  # when the last look started
        # Lake files found damaged: (snapshot, path) -> what is wrong.
        self._damaged: dict[tuple[int, str], str] = {}
        self._searched: set[int] = set()  # snapshots searched for a file that did not decode
        self._damage_lock = threading.Lock()

    def start(self) -> None:
        """Follow new publishes in the background (the first look happens on first use)."""
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
            retiring = [*self._older.values(), *([self._open] if self._open else [])]
            self._older.clear()
            self._open = None
            for connection in (self._watch, self._ready):
                if connection is not None:
                    connection.close()
            self._watch = self._ready = None
        for snapshot in retiring:
            snapshot.retire()
        self._probe.close()

    def on_switch(self, listener: Callable[[Publish], None]) -> None:
        """Call ``listener`` (in the thread that switched: keep it short) with each publish this
        process switches to."""
        self._listeners.append(listener)

    @contextmanager
    def reading(
        self, as_of: datetime | None = None, *, publish: Publish | None = None
    ) -> Iterator[tuple[Publish, duckdb.DuckDBPyConnection]]:
        """A cursor, valid until the ``with`` block ends, and the publish it reads: the newest,
        or the newest made at or before ``as_of``, or ``publish`` itself.

        :class:`NoSnapshotError` before the first publish; :class:`TimeNotKept` for an ``as_of``
        older than every publish kept; :class:`CatalogUnavailable` when the lake's catalog or
        files cannot be reached."""
        snapshot = self._acquire(as_of, publish)
        try:
            cursor = snapshot.connection.cursor()
            try:
                yield snapshot.publish, cursor
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
            with connect_reader(self._layout, snapshot_id) as con:
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

    @contextmanager
    def cursor(
        self, as_of: datetime | None = None, *, publish: Publish | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """:meth:`reading`'s cursor alone."""
        with self.reading(as_of, publish=publish) as (_, cursor):
            yield cursor

    def answering(self, as_of: datetime | None = None) -> Publish:
        """The publish a read (as of ``as_of``) answers from now, opening it if need be."""
        snapshot = self._acquire(as_of, None)
        snapshot.release()
        return snapshot.publish

    def newest_seen(self) -> Publish | None:
        """The newest publish this process has seen, without looking again (for metrics)."""
        return self._publishes.newest()

    def snapshot_id(self) -> int:
        """The snapshot this process answers from now (opening it if need be)."""
        return self.answering().snapshot_id

    def refresh(self) -> bool:
        """Look at the catalog, and switch to the newest published snapshot if there is a newer
        one; whether it did."""
        with self._refresh_lock:
            self._last_check = time.monotonic()
            try:
                newest = self._newest_published()
                switched = newest is not None and self._switch_to(newest)
            except CatalogUnavailable as problem:
                self._problem = problem
                raise
            self._problem = None
            return switched

    def _acquire(self, as_of: datetime | None, publish: Publish | None) -> _OpenSnapshot:
        newest = self._acquire_newest()
        try:
            if as_of is not None:
                publish = self._publishes.at(as_of)
        except BaseException:
            newest.release()
            raise
        if publish is None or publish.snapshot_id == newest.snapshot_id:
            return newest
        newest.release()
        return self._acquire_older(publish)

    def _acquire_newest(self) -> _OpenSnapshot:
        with self._lock:
            if self._opening:  # a newer publish is being attached: answer from it, not the old
                self._switched.wait_for(lambda: not self._opening, timeout=WAIT_FOR_OPENING_SECONDS)
            snapshot = self._open
            if snapshot is not None:
                snapshot.acquire()
                return snapshot
        # Nothing open yet: look now. A look costs a probe of the catalog (microseconds), plus a
        # DuckLake query only when the lake changed since the last one: a burst of requests
        # before the first publish costs a probe each, and a request right after a publish opens
        # it instead of answering that nothing is published.
        problem = self._problem
        if problem is not None and time.monotonic() - self._last_check < RETRY_SECONDS:
            raise problem
        self.refresh()
        with self._lock:
            snapshot = self._open
            if snapshot is None:
                raise NoSnapshotError(NOTHING_PUBLISHED)
            snapshot.acquire()
            return snapshot

    def _acquire_older(self, publish: Publish) -> _OpenSnapshot:
        with self._older_lock:  # many requests for one time attach it once
            with self._lock:
                snapshot = self._older.get(publish.snapshot_id)
                if snapshot is not None:
                    self._older.move_to_end(publish.snapshot_id)
                    snapshot.acquire()
                    return snapshot
            snapshot = _OpenSnapshot(publish, self._attach(publish.snapshot_id))
            snapshot.acquire()
            with self._lock:
                self._older[publish.snapshot_id] = snapshot
                evicted = [
                    self._older.popitem(last=False)[1]
                    for _ in range(len(self._older) - OLDER_SNAPSHOTS)
                ]
        for old in evicted:
            old.retire()
        return snapshot

    def _newest_published(self) -> Publish | None:
        try:
            changed = self._probe.changed()
        except CatalogUnreachable as error:
            raise CatalogUnavailable("the lake catalog cannot be read") from error
        if changed or self._unread:  # the lake changed: read what is published
            self._unread = True  # until a read succeeds
            try:
                self._publishes = self._read_publishes()
            except duckdb.Error as error:
                self._forget_watch()
                raise CatalogUnavailable("the lake catalog cannot be read") from error
            self._unread = False
            self._forget_expired()
        return self._publishes.newest()

    def _read_publishes(self) -> Publishes:
        if not self._layout.lake.is_created():
            return Publishes()
        if self._watch is None:  # one connection to the lake's latest state, kept for looking
            try:
                self._watch = self._connect(self._layout, None)
            except duckdb.Error as error:
                if NOT_CREATED in str(error):  # a PostgreSQL catalog no run has written yet
                    return Publishes()
                raise
        try:
            [(count, newest)] = self._watch.execute(
                f"SELECT count(*), max(snapshot_id) FROM {PUBLISHED_TABLE}"
            ).fetchall()
        except duckdb.CatalogException:  # no run has published yet
            return Publishes()
        known = self._publishes.newest()
        if count == len(self._publishes.kept) and newest == (known and known.snapshot_id):
            return self._publishes  # most commits are a run's models, not a publish
        return kept_publishes(self._watch)

    def _switch_to(self, newest: Publish) -> bool:
        current = self._open
        if current is not None and current.snapshot_id == newest.snapshot_id:
            return False
        with self._lock:
            self._opening = True
        connection = None
        started = time.monotonic()
        try:
            connection = self._attach(newest.snapshot_id)
        finally:
            with self._lock:
                previous = self._open
                if connection is not None:
                    self._open = _OpenSnapshot(newest, connection)
                self._opening = False
                self._switched_at = time.monotonic()
                self._switched.notify_all()
        log.info(
            "switched to published snapshot %d (data as of %s), attached in %.0f ms",
            newest.snapshot_id,
            newest.data_as_of,
            (time.monotonic() - started) * 1000,
        )
        # Requests that started on the previous snapshot finish there; it closes after them.
        if previous is not None:
            previous.retire()
        for listener in self._listeners:
            try:
                listener(newest)
            except Exception:  # a listener's failure must not stop the switches
                log.exception("a published-snapshot listener failed")
        return True

    def _attach(self, snapshot_id: int) -> duckdb.DuckDBPyConnection:
        try:
            return self._connect(self._layout, snapshot_id)
        except duckdb.Error as error:
            raise CatalogUnavailable(f"could not open published snapshot {snapshot_id}") from error

    def _attach_to_ready_connection(
        self, layout: Layout, snapshot: int | None
    ) -> duckdb.DuckDBPyConnection:
        with self._lock:
            connection, self._ready = self._ready, None
        if connection is None:
            connection = unattached_connection(layout)
        try:
            attach_lake(connection, layout.lake, snapshot=snapshot, read_only=True)
        except BaseException:
            connection.close()
            raise
        return connection

    def _keep_ready(self) -> None:
        """Have a connection with the extensions loaded waiting for the next attach, prepared in
        a thread of its own: the follower keeps looking meanwhile."""
        if time.monotonic() - self._switched_at < PREPARE_AFTER_SWITCH_SECONDS:
            return
        with self._lock:
            if self._ready is not None or self._preparing or self._stop.is_set():
                return
            self._preparing = True
        threading.Thread(
            target=self._prepare_ready, name="published-snapshot-preparer", daemon=True
        ).start()

    def _prepare_ready(self) -> None:
        connection: duckdb.DuckDBPyConnection | None = None
        try:
            connection = unattached_connection(self._layout)
        except duckdb.Error:
            log.exception("could not prepare a connection for the next snapshot")
        with self._lock:
            self._preparing = False
            if self._ready is None and not self._stop.is_set():
                self._ready, connection = connection, None
        if connection is not None:
            connection.close()

    def _forget_expired(self) -> None:
        """Close older snapshots whose publish is no longer kept: retention expires their files."""
        with self._lock:
            expired = [sid for sid in self._older if sid not in self._publishes]
            closing = [self._older.pop(sid) for sid in expired]
        for snapshot in closing:
            snapshot.retire()

    def _close_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [
                sid
                for sid, snapshot in self._older.items()
                if snapshot.in_use == 0 and now - snapshot.last_used > OLDER_IDLE_SECONDS
            ]
            closing = [self._older.pop(sid) for sid in idle]
        for snapshot in closing:
            snapshot.retire()

    def _forget_watch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _follow(self) -> None:
        while not self._stop.wait(self._probe_seconds):
            failing = self._problem is not None
            try:
                self.refresh()
            except (CatalogUnavailable, duckdb.Error) as problem:
                if not failing:
                    log.error(
                        "cannot follow published snapshots: %s (%s)", problem, problem.__cause__
                    )
                self._stop.wait(RETRY_SECONDS)  # back off while it is down
                continue
            if failing:
                log.warning("the lake catalog is reachable again")
            self._keep_ready()
            self._close_idle()
