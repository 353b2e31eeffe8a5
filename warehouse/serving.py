"""Serving: read-only snapshots of the marts, published at the end of each pipeline run.

DuckDB allows one writer per file, and a reader cannot open a file another process holds for
writing, so the read API never opens ``warehouse.duckdb``. Instead the pipeline, right after a
successful run (it is the writer anyway), calls :func:`publish`, which

1. copies the previous snapshot file (immutable, so a plain sequential copy is consistent) into a
   scratch directory ``serving/.vNNNNNNNN.tmp/`` — or starts an empty file the first time;
2. opens the warehouse and ``ATTACH``es that copy, then brings it up to date:

   * the marts the read API queries (:data:`SERVED_MARTS`) are sorted so requests for one
     org/project skip the rest by DuckDB's per-row-group min/max. Small ones (persons, hourly
     aggregates, the whole-history ``release_health`` view, materialized) are replaced whole with
     ``CREATE OR REPLACE TABLE … AS SELECT``;
   * the big, time-shaped ones (``fct_events``, ``fct_sessions``, ``agg_release_users_daily``) are
     brought up to date by day: a fingerprint (row count and XOR of a hash of every column) is
     computed per day in the warehouse and compared with the fingerprints stored in the snapshot,
     and only days that differ are deleted and re-inserted. A new hour touches a day or two; a
     re-stitched person touches the days of its rows. The cost is one columnar scan per mart plus
     the changed days, not a copy of every row;
   * dbt's table macro ``release_health_between`` is recreated from its definition;
   * ``serving.persons_by_distinct_id`` (each person under each of its distinct_ids) is derived
     so a person is found by any of its ids in one lookup, without unnesting lists per request;

3. checkpoints and detaches it, fsyncs it, renames the directory to ``serving/vNNNNNNNN/`` and then
   atomically replaces the ``serving/current`` pointer (a small file written, fsynced, renamed).

Every snapshot is a file named ``warehouse.duckdb`` so that, opened, its catalog is ``warehouse``
with schema ``analytics`` exactly like the pipeline's: dbt's compiled SQL (the table macro, the
analysts' queries) runs on it unchanged.

A reader therefore sees either the previous run's marts or the new ones, never a mix, and never
waits on or fails with the writer's lock. :class:`ServedMarts` is the reader: it keeps one
read-only connection per process to the version ``current`` names, hands out a cursor per request
and, when the pointer changes, opens the new version and closes the old connection once the
requests still using it are done. Old versions are deleted by the next publish, keeping the
newest :data:`KEEP_VERSIONS`; a process that still has one open keeps reading it (an unlinked
file lives on while a handle is open), and a reader that lost the race to open a just-deleted
version rereads the pointer.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from warehouse.duck import connect_warehouse
from warehouse.layout import Layout


@dataclass(frozen=True)
class Served:
    """How a mart is served: ``order`` sorts its copy; with ``day`` (a timestamp expression) it is
    refreshed day by day, only the days whose fingerprint changed, instead of copied whole."""

    order: str
    day: str | None = None


# analytics relations the read API queries besides the events (views are materialized).
SERVED_MARTS: dict[str, Served] = {
    "dim_persons": Served("org_id, person_id"),
    "fct_sessions": Served(
        "org_id, project_id, started_at", day="coalesce(started_at, end_received_at)"
    ),
    "agg_release_health_hourly": Served("org_id, project_id, hour"),
    "agg_release_users_daily": Served("org_id, project_id, day", day="day"),
    "release_health": Served("org_id, project_id"),
    "release_health_trend": Served("org_id, project_id, grain, bucket_start"),
}
SERVED_MACROS: tuple[str, ...] = ("release_health_between", "project_release_health_between")
EVENTS_MART = "fct_events"
EVENTS = Served("timestamp", day="timestamp")
SNAPSHOT_FILE = "warehouse.duckdb"  # opened, its catalog is `warehouse`, like the pipeline's
KEEP_VERSIONS = 3
POINTER_NAME = "current"
VERSION_PATTERN = re.compile(r"^v(\d{8})$")


class NoSnapshotError(RuntimeError):
    """Nothing has been published yet: the pipeline has not completed a run."""


@dataclass(frozen=True)
class PublishResult:
    path: Path
    version: int
    event_days_rewritten: int
    event_days_total: int
    seconds: float


def version_name(version: int) -> str:
    return f"v{version:08d}"


def current_snapshot(layout: Layout) -> Path | None:
    """The snapshot file ``serving/current`` names, or ``None`` before the first publish."""
    try:
        name = (layout.serving_dir / POINTER_NAME).read_text().strip()
    except FileNotFoundError:
        return None
    return layout.serving_dir / name / SNAPSHOT_FILE


def publish(layout: Layout | None = None) -> Path:
    """Publish the warehouse's marts as a new read-only snapshot and point ``current`` at it."""
    return publish_snapshot(layout or Layout.from_settings()).path


def publish_snapshot(layout: Layout) -> PublishResult:
    started = time.perf_counter()
    serving = layout.serving_dir
    serving.mkdir(parents=True, exist_ok=True)
    with _publish_lock(serving):
        previous = current_snapshot(layout)
        # Never reuse a number, even if versions were deleted by hand: a reader recognizes a
        # snapshot by its path.
        pointed = VERSION_PATTERN.match(previous.parent.name) if previous else None
        version = max([*_versions(serving), int(pointed.group(1)) if pointed else 0]) + 1
        final = serving / version_name(version)
        scratch = serving / f".{final.name}.tmp"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        try:
            if previous is not None and previous.exists():
                shutil.copyfile(previous, scratch / SNAPSHOT_FILE)
            rewritten, total = _refresh(layout, scratch / SNAPSHOT_FILE, version)
            _fsync(scratch / SNAPSHOT_FILE)
            _fsync(scratch)
            os.replace(scratch, final)
            _fsync(serving)
            _point_current_at(serving, final.name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _collect_garbage(serving, keep=KEEP_VERSIONS)
    return PublishResult(
        final / SNAPSHOT_FILE, version, rewritten, total, time.perf_counter() - started
    )


def _refresh(layout: Layout, snapshot: Path, version: int) -> tuple[int, int]:
    """Bring the snapshot copy up to date; returns (event days rewritten, event days in all)."""
    con = connect_warehouse(layout)
    try:
        con.execute("SET enable_progress_bar = false")  # it would only clutter the run's logs
        missing = _missing_relations(con)
        if missing:
            raise RuntimeError(
                f"cannot publish: analytics relation(s) {', '.join(missing)} not built yet"
            )
        con.execute(f"ATTACH '{_sql_string(snapshot)}' AS snap")
        try:
            con.execute("CREATE SCHEMA IF NOT EXISTS snap.analytics")
            con.execute("CREATE SCHEMA IF NOT EXISTS snap.serving")
            for mart, served in SERVED_MARTS.items():
                if served.day is None:
                    con.execute(
                        f"CREATE OR REPLACE TABLE snap.analytics.{mart} AS"
                        f" SELECT * FROM analytics.{mart} ORDER BY {served.order}"
                    )
                else:
                    _refresh_by_day(con, mart, served)
            _copy_macros(con)
            _derive_person_lookup(con)
            rewritten, total = _refresh_by_day(con, EVENTS_MART, EVENTS)
            con.execute(
                "CREATE OR REPLACE TABLE snap.serving.snapshot AS"
                " SELECT ?::INTEGER AS version, ?::TIMESTAMP AS published_at",
                [version, datetime.now(UTC).replace(tzinfo=None)],
            )
            con.execute("CHECKPOINT snap")
        finally:
            con.execute("DETACH snap")
    finally:
        con.close()
    return rewritten, total


def _missing_relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    (present,) = con.execute(
        """
        SELECT list(name) FROM (
            SELECT table_name AS name FROM information_schema.tables
            WHERE table_catalog = current_database() AND table_schema = 'analytics'
            UNION ALL
            SELECT function_name FROM duckdb_functions()
            WHERE database_name = current_database() AND schema_name = 'analytics'
        )
        """
    ).fetchone()
    wanted = (*SERVED_MARTS, EVENTS_MART, *SERVED_MACROS)
    return [name for name in wanted if name not in set(present or [])]


def _copy_macros(con: duckdb.DuckDBPyConnection) -> None:
    # dbt compiles the macro with fully qualified names (warehouse.analytics.…), which resolve to
    # the snapshot's own tables once it is opened as the catalog `warehouse`.
    for name in SERVED_MACROS:
        parameters, definition = con.execute(
            "SELECT parameters, macro_definition FROM duckdb_functions()"
            " WHERE database_name = current_database() AND schema_name = 'analytics'"
            " AND function_name = ? AND function_type = 'table_macro'",
            [name],
        ).fetchone()
        con.execute(
            f"CREATE OR REPLACE MACRO snap.analytics.{name}({', '.join(parameters)})"
            f" AS TABLE {definition}"
        )


def _derive_person_lookup(con: duckdb.DuckDBPyConnection) -> None:
    # The person row repeated under each of its distinct_ids (persons have few), sorted by id:
    # `persons/{distinct_id}` becomes one lookup that reads a single row group.
    con.execute(
        """
        CREATE OR REPLACE TABLE snap.serving.persons_by_distinct_id AS
        SELECT org_id, unnest(distinct_ids) AS distinct_id, * EXCLUDE (org_id)
        FROM snap.analytics.dim_persons
        ORDER BY org_id, distinct_id
        """
    )


def _refresh_by_day(con: duckdb.DuckDBPyConnection, mart: str, served: Served) -> tuple[int, int]:
    """Bring ``snap.analytics.<mart>`` up to date one day at a time; returns (days rewritten,
    days in all). A day's fingerprint is its row count and the XOR of a hash of every column of
    every row: equal fingerprints mean the day is unchanged and stays as it was copied."""
    columns = [
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog ="
            " current_database() AND table_schema = 'analytics' AND table_name = ?"
            " ORDER BY ordinal_position",
            [mart],
        ).fetchall()
    ]
    signature = ",".join(columns)
    row_hash = "hash(" + ", ".join(f'"{name}"' for name in columns) + ")"
    day = f"CAST(coalesce({served.day}, TIMESTAMP '1970-01-01') AS DATE)"
    target = f"snap.analytics.{mart}"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fresh_days AS
        SELECT {day} AS day, count(*) AS n_rows, bit_xor({row_hash}) AS digest
        FROM analytics.{mart}
        GROUP BY ALL
        """
    )
    try:
        if _served_signature(con, mart) == signature:
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE changed_days AS
                SELECT day FROM fresh_days
                FULL JOIN (SELECT * FROM snap.serving.day_fingerprints WHERE mart = ?) AS served
                    USING (day)
                WHERE fresh_days.n_rows IS DISTINCT FROM served.n_rows
                   OR fresh_days.digest IS DISTINCT FROM served.digest
                """,
                [mart],
            )
            con.execute(f"DELETE FROM {target} WHERE {day} IN (SELECT day FROM changed_days)")
            con.execute(
                f"INSERT INTO {target} SELECT * FROM analytics.{mart}"
                f" WHERE {day} IN (SELECT day FROM changed_days) ORDER BY {served.order}"
            )
            (rewritten,) = con.execute("SELECT count(*) FROM changed_days").fetchone()
            con.execute("DROP TABLE changed_days")
        else:
            # First publish, or the mart's columns changed: serve it whole.
            con.execute(
                f"CREATE OR REPLACE TABLE {target} AS"
                f" SELECT * FROM analytics.{mart} ORDER BY {day}, {served.order}"
            )
            _record_signature(con, mart, signature)
            rewritten = None
        con.execute(
            "CREATE TABLE IF NOT EXISTS snap.serving.day_fingerprints"
            " (mart VARCHAR, day DATE, n_rows BIGINT, digest UBIGINT)"
        )
        con.execute("DELETE FROM snap.serving.day_fingerprints WHERE mart = ?", [mart])
        con.execute(
            "INSERT INTO snap.serving.day_fingerprints SELECT ?, day, n_rows, digest"
            " FROM fresh_days",
            [mart],
        )
        (total,) = con.execute("SELECT count(*) FROM fresh_days").fetchone()
    finally:
        con.execute("DROP TABLE IF EXISTS fresh_days")
    return (total if rewritten is None else rewritten), total


def _served_signature(con: duckdb.DuckDBPyConnection, mart: str) -> str | None:
    """The columns the snapshot's copy of ``mart`` was built with (None: no usable copy)."""
    (tables,) = con.execute(
        "SELECT list(schema_name || '.' || table_name) FROM duckdb_tables()"
        " WHERE database_name = 'snap'"
    ).fetchone()
    wanted = {f"analytics.{mart}", "serving.day_fingerprints", "serving.signatures"}
    if not wanted <= set(tables or []):
        return None
    found = con.execute("SELECT columns FROM snap.serving.signatures WHERE mart = ?", [mart])
    row = found.fetchone()
    return row[0] if row else None


def _record_signature(con: duckdb.DuckDBPyConnection, mart: str, signature: str) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS snap.serving.signatures (mart VARCHAR, columns VARCHAR)"
    )
    con.execute("DELETE FROM snap.serving.signatures WHERE mart = ?", [mart])
    con.execute("INSERT INTO snap.serving.signatures VALUES (?, ?)", [mart, signature])


@contextmanager
def _publish_lock(serving: Path) -> Iterator[None]:
    # Two runs finishing together (a backfill next to the schedule) publish one after the other.
    with open(serving / ".publish.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _versions(serving: Path) -> list[int]:
    found = (VERSION_PATTERN.match(path.name) for path in serving.iterdir())
    return sorted(int(match.group(1)) for match in found if match)


def _point_current_at(serving: Path, name: str) -> None:
    scratch = serving / f".{POINTER_NAME}.tmp"
    with open(scratch, "w") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, serving / POINTER_NAME)
    _fsync(serving)


def _collect_garbage(serving: Path, keep: int) -> None:
    for version in _versions(serving)[:-keep]:
        shutil.rmtree(serving / version_name(version), ignore_errors=True)


def _sql_string(path: Path) -> str:
    return str(path).replace("'", "''")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _OpenSnapshot:
    path: Path
    connection: duckdb.DuckDBPyConnection
    in_use: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

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


class ServedMarts:
    """The read API's view of the latest published snapshot: one per process, thread-safe."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._pointer = layout.serving_dir / POINTER_NAME
        self._pointer_stamp: tuple[int, int] | None = None
        self._open: _OpenSnapshot | None = None
        self._lock = threading.Lock()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the newest snapshot, valid until the ``with`` block ends."""
        snapshot = self._acquire()
        try:
            cursor = snapshot.connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            snapshot.release()

    def current_path(self) -> Path:
        """The snapshot this process answers from now; :class:`NoSnapshotError` before the
        first publish."""
        with self._lock:
            return self._current().path

    def close(self) -> None:
        with self._lock:
            if self._open is not None:
                self._open.retire()
            self._open = None
            self._pointer_stamp = None

    def _acquire(self) -> _OpenSnapshot:
        with self._lock:
            snapshot = self._current()
            with snapshot.lock:
                snapshot.in_use += 1
            return snapshot

    def _current(self) -> _OpenSnapshot:
        # Called with self._lock held.
        try:
            stat = self._pointer.stat()
        except FileNotFoundError:
            raise NoSnapshotError(
                "no snapshot published yet: no pipeline run has finished"
            ) from None
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if self._open is not None and stamp == self._pointer_stamp:
            return self._open
        for _attempt in range(5):
            path = current_snapshot(self._layout)
            if path is None:
                raise NoSnapshotError("no snapshot published yet: no pipeline run has finished")
            if self._open is not None and path == self._open.path:
                break
            try:
                connection = duckdb.connect(str(path), read_only=True)
            except duckdb.IOException:
                # The version was collected between reading the pointer and opening it.
                time.sleep(0.01)
                continue
            # Timestamps are naive UTC; make DuckDB's own clock functions agree, for every cursor.
            connection.execute("SET GLOBAL TimeZone = 'UTC'")
            if self._open is not None:
                self._open.retire()
            self._open = _OpenSnapshot(path, connection)
            break
        else:
            raise NoSnapshotError(
                f"could not open the published snapshot under {self._pointer.parent}"
            )
        self._pointer_stamp = stamp
        return self._open
