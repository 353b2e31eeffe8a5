"""Keeping the lake small: DuckLake's own maintenance functions, run by the pipeline.

Every commit writes new Parquet files (and delete files for what it replaced), so an hourly run
leaves dozens of small files behind: 8 runs grew one lake from 8 to 348 files. After each run,
:func:`compact` rewrites the files that carry deletes and merges adjacent small files of every
table that has :data:`COMPACT_AT_FILES` files to drop, so no table is read from many small files,
and an hour that left every table below that costs one catalog query instead of a pass over the
whole lake. Compaction rewrites what the recent runs wrote, not a table's history:

* Data files are written up to :data:`TARGET_FILE_BYTES` (:func:`ensure_lake_options`), and only
  files under :data:`SMALL_FILE_BYTES` are merged.
* Every small file with deletes is rewritten, a big one only once its deleted share is as large
  as a small file's of the same table, or :data:`REWRITE_DELETED_FRACTION`. Until then it keeps
  its one delete file (DuckLake keeps at most one per data file).
  Hourly merges delete a few late or retried rows from old files, and DuckLake rewrites a file
  whole, so a big file is not rewritten for a few rows.

Every closed hour's run, and the daily retention job, :func:`expire_snapshots`: forget the
snapshots no reader can still be on (keeping hourly publishes for time travel) and delete the
files only they referenced, and files no snapshot ever recorded.

:func:`give_statistics` is a WORKAROUND, written for DuckDB 1.5.5 with the DuckLake extension
d8a1881e (tests/test_workaround_pins.py fails when either moves): a table that never held a row
has no statistics in the catalog, and DuckLake caches statistics only when it finds some, so each
query plan asks the catalog again for every column it reads of such a table (docs/benchmarks.md,
"Why the code is as it is"). Later DuckLake versions cache the absence too.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from warehouse.duck import transaction
from warehouse.layout import LAKE_ALIAS, floor_hour, naive_utc
from warehouse.published import forget_publishes, published_history
from warehouse.settings import Settings

# The name a table being given statistics is rebuilt under (its own name + this), until it is
# swapped in.
SCRATCH_SUFFIX = "__with_statistics"
# Hourly runs add one or two files (data, deletes) to each table they change: compacting at 8 files
# to drop keeps every table under 10 small files while most hours skip compaction.
COMPACT_AT_FILES = 8
# DuckLake splits what it writes (inserts, rewrites, merges) into files of about this size.
TARGET_FILE_BYTES = 16_000_000
# Files under this size are merged with their neighbours; bigger ones are only rewritten to drop
# deleted rows.
SMALL_FILE_BYTES = 4_000_000
# A table option: an insert big enough to run in parallel writes one file per thread.
PARALLEL_WRITE_OPTION = "per_thread_output"
# Bigger files are rewritten once this share of their rows is deleted.
REWRITE_DELETED_FRACTION = 0.2
# A file in the lake's data path that no snapshot records is deleted once this old: a killed
# run's or a failed commit's (one writer: no commit in progress can still claim it by then).
ORPHAN_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Compaction:
    files_before: int
    files_after: int
    seconds: float


@dataclass(frozen=True)
class StatisticsGiven:
    tables: list[str]  # schema.table
    seconds: float


@dataclass(frozen=True)
class AfterRun:
    statistics: StatisticsGiven
    compaction: Compaction


@dataclass(frozen=True)
class Expiry:
    snapshots_expired: int
    publishes_expired: int
    files_deleted: int
    orphans_deleted: int  # files no snapshot recorded
    seconds: float


def live_data_files(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Data and delete files the lake's current snapshot reads, per table (schema.table).

    Counted from the catalog, not by ``ducklake_table_info``: when a DELETE removes the last rows
    of a data file that has a delete file, DuckLake ends the data file but leaves its delete file
    live until snapshot expiry forgets both, and ``ducklake_table_info`` counts it though no reader
    opens it (a workaround, tests/warehouse/test_maintenance.py pins it)."""
    metadata = f"__ducklake_metadata_{LAKE_ALIAS}"
    rows = con.execute(
        f"""
        SELECT schemas.schema_name || '.' || tables.table_name,
               count(data.data_file_id) + count(deletes.delete_file_id)
        FROM {metadata}.ducklake_table AS tables
        JOIN {metadata}.ducklake_schema AS schemas
            ON schemas.schema_id = tables.schema_id AND schemas.end_snapshot IS NULL
        LEFT JOIN {metadata}.ducklake_data_file AS data
            ON data.table_id = tables.table_id AND data.end_snapshot IS NULL
        LEFT JOIN {metadata}.ducklake_delete_file AS deletes
            ON deletes.data_file_id = data.data_file_id AND deletes.end_snapshot IS NULL
        WHERE tables.end_snapshot IS NULL
        GROUP BY ALL
        """
    ).fetchall()
    return dict(rows)


def ensure_lake_options(
    con: duckdb.DuckDBPyConnection,
    target_file_bytes: int = TARGET_FILE_BYTES,
    parallel_write_tables: Iterable[str] = (),
) -> None:
    """Store the lake's write options in the catalog, where every writer of the lake (dbt, the
    raw loads, compaction, an analyst's INSERT) finds them: the target file size, and one Parquet
    file per thread for big inserts into ``parallel_write_tables`` (schema.table, existing). A
    no-op once they are there, or when ``con`` has no lake attached (the benchmarks' plain DuckDB
    baseline)."""
    (lakes,) = con.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = ? AND type = 'ducklake'",
        [LAKE_ALIAS],
    ).fetchone()
    if not lakes:
        return
    stored = {
        (name, table): value
        for name, value, table in con.execute(
            f"SELECT option_name, value, scope_entry FROM {LAKE_ALIAS}.options()"
        ).fetchall()
    }
    if stored.get(("target_file_size", None)) != str(target_file_bytes):
        con.execute(
            f"CALL {LAKE_ALIAS}.set_option('target_file_size', ?)", [f"{target_file_bytes}B"]
        )
    for table in parallel_write_tables:
        if stored.get((PARALLEL_WRITE_OPTION, table)) != "true":
            schema, name = table.split(".", 1)
            con.execute(
                f"CALL {LAKE_ALIAS}.set_option('{PARALLEL_WRITE_OPTION}', true, schema => ?,"
                " table_name => ?)",
                [schema, name],
            )


@dataclass(frozen=True)
class TablePlan:
    """What compacting one table does: rewrite its files whose deleted share reaches
    ``delete_threshold``, then merge its small files; ``files_dropped`` counts the data and delete
    files that go away."""

    delete_threshold: float
    files_dropped: int


def compaction_plans(
    con: duckdb.DuckDBPyConnection, small_file_bytes: int = SMALL_FILE_BYTES
) -> dict[str, TablePlan]:
    """Per table (schema.table) with live data files, what :func:`compact` would do to it.

    DuckLake's rewrite takes one deleted-share threshold per table, and its merge leaves files
    with deletes alone. So the threshold is the least share among the small files: all of them are
    rewritten, then merged, while a big file whose few deleted rows are a smaller share than any
    small file's keeps its delete file."""
    metadata = f"__ducklake_metadata_{LAKE_ALIAS}"
    files = con.execute(
        f"""
        SELECT schemas.schema_name || '.' || tables.table_name,
               data.file_size_bytes < $small,
               coalesce(deletes.delete_count, 0) / greatest(data.record_count, 1)
        FROM {metadata}.ducklake_data_file AS data
        JOIN {metadata}.ducklake_table AS tables
            ON tables.table_id = data.table_id AND tables.end_snapshot IS NULL
        JOIN {metadata}.ducklake_schema AS schemas
            ON schemas.schema_id = tables.schema_id AND schemas.end_snapshot IS NULL
        LEFT JOIN {metadata}.ducklake_delete_file AS deletes
            ON deletes.data_file_id = data.data_file_id AND deletes.end_snapshot IS NULL
        WHERE data.end_snapshot IS NULL
        """,
        {"small": small_file_bytes},
    ).fetchall()
    by_table: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for table, small, deleted in files:
        by_table[table].append((small, deleted))
    return {table: _plan(table_files) for table, table_files in by_table.items()}


def _plan(files: list[tuple[bool, float]]) -> TablePlan:
    # Just below the least deleted share of a small file: every small file with deletes is
    # rewritten (DuckLake merges only files without), and a big file only when its deleted share
    # is at least as large, or reaches REWRITE_DELETED_FRACTION.
    small_shares = [deleted for small, deleted in files if small and deleted]
    threshold = math.nextafter(min([*small_shares, REWRITE_DELETED_FRACTION]), 0.0)
    rewritten = sum(1 for _, deleted in files if deleted and deleted >= threshold)
    # Each rewritten file drops its delete file, and the small files merge into one.
    small = sum(1 for is_small, _ in files if is_small)
    return TablePlan(threshold, rewritten + max(small - 1, 0))


def compact(
    con: duckdb.DuckDBPyConnection,
    at_files: int = COMPACT_AT_FILES,
    small_file_bytes: int = SMALL_FILE_BYTES,
) -> Compaction:
    """Compact every table where rewriting files with deletes and merging the small ones drops
    ``at_files`` files or more (:func:`compaction_plans`)."""
    started = time.perf_counter()
    files = live_data_files(con)
    plans = compaction_plans(con, small_file_bytes)
    due = [
        (*table.split(".", 1), plan)
        for table, plan in sorted(plans.items())
        if plan.files_dropped >= at_files
    ]
    # One commit for every table's rewrite, then one for the merges, not two per table: each lake
    # commit writes the catalog. A merge does not see files rewritten in its own transaction.
    with transaction(con):
        for schema, name, plan in due:
            con.execute(
                f"CALL ducklake_rewrite_data_files('{LAKE_ALIAS}', ?, schema => ?,"
                " delete_threshold => ?)",
                [name, schema, plan.delete_threshold],
            )
    with transaction(con):
        for schema, name, _ in due:
            con.execute(
                f"CALL ducklake_merge_adjacent_files('{LAKE_ALIAS}', ?, schema => ?,"
                " max_file_size => ?)",
                [name, schema, small_file_bytes],
            )
    after = sum(live_data_files(con).values())
    return Compaction(sum(files.values()), after, time.perf_counter() - started)


def maintain_after_run(con: duckdb.DuckDBPyConnection) -> AfterRun:
    """What the pipeline does to the lake after each run, before publishing it."""
    return AfterRun(give_statistics(con), compact(con))


@dataclass(frozen=True)
class SnapshotRetention:
    """Which lake snapshots are kept. Every snapshot younger than ``recent`` (a reader of the
    lake's latest state may still be on one); the two newest publishes (a reader may still be
    finishing on the previous one); and for time travel, of older publishes, the newest of each
    UTC hour younger than ``published``."""

    recent: timedelta
    published: timedelta

    @classmethod
    def of(cls, settings: Settings) -> SnapshotRetention:
        return cls(
            recent=timedelta(hours=settings.lake_snapshot_retention_hours),
            published=timedelta(days=settings.published_retention_days),
        )


def snapshots_to_expire(
    con: duckdb.DuckDBPyConnection, retention: SnapshotRetention, now: datetime | None = None
) -> tuple[list[int], list[int]]:
    """The snapshot ids :func:`expire_snapshots` expires, and of those, the published ones.

    Ages are read off the publishes' times (snapshot ids grow with time): the snapshots younger
    than ``recent`` are those after the newest publish older than it."""
    now = now or naive_utc(datetime.now(UTC))
    snapshots = [
        snapshot_id
        for (snapshot_id,) in con.execute(
            f"SELECT snapshot_id FROM ducklake_snapshots('{LAKE_ALIAS}')"
        ).fetchall()
    ]
    if not snapshots:
        return [], []
    publishes = published_history(con, newest=None)  # newest first
    older = [snapshot_id for snapshot_id, at in publishes if at < now - retention.recent]
    recent_after = older[0] if older else -1
    keep = {max(snapshots), *(snapshot_id for snapshot_id, _ in publishes[:2])}
    keep |= {snapshot_id for snapshot_id in snapshots if snapshot_id > recent_after}
    newest_of_hour: dict[datetime, int] = {}
    for snapshot_id, published_at in publishes:  # newest first
        if published_at >= now - retention.published:
            newest_of_hour.setdefault(floor_hour(published_at), snapshot_id)
    keep |= set(newest_of_hour.values())
    expired = sorted(snapshot_id for snapshot_id in snapshots if snapshot_id not in keep)
    published = {snapshot_id for snapshot_id, _ in publishes}
    return expired, [snapshot_id for snapshot_id in expired if snapshot_id in published]


def expire_snapshots(
    con: duckdb.DuckDBPyConnection,
    retention: SnapshotRetention,
    now: datetime | None = None,
    *,
    orphans: bool = True,
) -> Expiry:
    """Expire the snapshots :func:`snapshots_to_expire` names (their publishes leave
    ``ops.published_snapshots``, which so lists exactly what a reader can attach), then delete
    the files only they read, and with ``orphans`` the files no snapshot ever recorded (a killed
    run's, a failed commit's) once older than :data:`ORPHAN_GRACE` (that lists every file of the
    lake's data path: the daily job's work, not every hour's)."""
    started = time.perf_counter()
    now = now or naive_utc(datetime.now(UTC))
    expired, expired_publishes = snapshots_to_expire(con, retention, now)
    if expired_publishes:
        forget_publishes(con, expired_publishes)
    if expired:
        con.execute(f"CALL ducklake_expire_snapshots('{LAKE_ALIAS}', versions => ?)", [expired])
    deleted = con.execute(
        f"CALL ducklake_cleanup_old_files('{LAKE_ALIAS}', cleanup_all => true)"
    ).fetchall()
    orphaned = []
    if orphans:
        orphaned = con.execute(
            f"CALL ducklake_delete_orphaned_files('{LAKE_ALIAS}', older_than => ?::TIMESTAMPTZ)",
            [(now - ORPHAN_GRACE).replace(tzinfo=UTC)],
        ).fetchall()
    seconds = time.perf_counter() - started
    return Expiry(len(expired), len(expired_publishes), len(deleted), len(orphaned), seconds)


def expiry_line(expiry: Expiry) -> str:
    return (
        f"expired {expiry.snapshots_expired} lake snapshots ({expiry.publishes_expired} of them "
        f"published); deleted {expiry.files_deleted} files and {expiry.orphans_deleted} orphans"
    )


def expiry_metadata(expiry: Expiry) -> dict[str, object]:
    return {
        "snapshots_expired": expiry.snapshots_expired,
        "publishes_expired": expiry.publishes_expired,
        "files_deleted": expiry.files_deleted,
        "orphaned_files_deleted": expiry.orphans_deleted,
        "duration_s": round(expiry.seconds, 3),
    }


def tables_without_statistics(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, table) of the lake's tables that never held a row: DuckLake keeps no statistics
    for them (they have no row in the catalog's ducklake_table_stats)."""
    stats = f"__ducklake_metadata_{LAKE_ALIAS}.ducklake_table_stats"
    return _live_tables(con, f"tables.table_id NOT IN (SELECT table_id FROM {stats})")


def _live_tables(con: duckdb.DuckDBPyConnection, condition: str) -> list[tuple[str, str]]:
    # (schema, table) of the lake's current tables meeting ``condition``, from DuckLake's catalog
    # tables: one catalog query, where duckdb_tables() loads every table of the lake.
    metadata = f"__ducklake_metadata_{LAKE_ALIAS}"
    return con.execute(
        f"""
        SELECT schemas.schema_name, tables.table_name
        FROM {metadata}.ducklake_table AS tables
        JOIN {metadata}.ducklake_schema AS schemas
            ON schemas.schema_id = tables.schema_id AND schemas.end_snapshot IS NULL
        WHERE tables.end_snapshot IS NULL AND {condition}
        ORDER BY ALL
        """
    ).fetchall()


def give_statistics(con: duckdb.DuckDBPyConnection) -> StatisticsGiven:
    """Give every empty lake table without statistics some, keeping its name, columns and content.

    Statistics appear with the first committed row, and a row inserted and deleted in one
    transaction never reaches the catalog. So the table is rebuilt under a scratch name, a row
    is committed into it and deleted again, and one transaction swaps it in for the (still empty)
    original: a crash at any point leaves the original as it was, and at worst a scratch table,
    which the next call drops. Tables with table-scoped lake options (a lookup table's sort order
    and row groups, set by the dbt macro ``lookup_layout``) are left alone: the options belong to
    the table, not its name."""
    started = time.perf_counter()
    for schema, scratch in _live_tables(con, f"ends_with(tables.table_name, '{SCRATCH_SUFFIX}')"):
        con.execute(f'DROP TABLE {LAKE_ALIAS}."{schema}"."{scratch}"')  # left by a crash
    given = []
    for schema, table in tables_without_statistics(con):
        if _has_table_options(con, schema, table):
            continue
        if _swap_in_table_with_statistics(con, schema, table):
            given.append(f"{schema}.{table}")
    return StatisticsGiven(given, time.perf_counter() - started)


def _has_table_options(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    # Not the raw tables' parallel writes: the next run's ensure_raw_tables sets it again.
    (count,) = con.execute(
        f"SELECT count(*) FROM {LAKE_ALIAS}.options()"
        " WHERE scope = 'TABLE' AND scope_entry = ? AND option_name <> ?",
        [f"{schema}.{table}", PARALLEL_WRITE_OPTION],
    ).fetchone()
    return count > 0


def _swap_in_table_with_statistics(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    original = f'{LAKE_ALIAS}."{schema}"."{table}"'
    scratch = f'{LAKE_ALIAS}."{schema}"."{table}{SCRATCH_SUFFIX}"'
    columns = con.execute(
        """
        SELECT column_name, data_type, is_nullable, column_default, comment
        FROM duckdb_columns()
        WHERE database_name = ? AND schema_name = ? AND table_name = ?
        ORDER BY column_index
        """,
        [LAKE_ALIAS, schema, table],
    ).fetchall()
    (table_comment,) = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = ? AND schema_name = ?"
        " AND table_name = ?",
        [LAKE_ALIAS, schema, table],
    ).fetchone()
    definitions = ", ".join(
        f'"{name}" {data_type}'
        + ("" if default in (None, "NULL") else f" DEFAULT {default}")
        + ("" if nullable else " NOT NULL")
        for name, data_type, nullable, default, _ in columns
    )
    # Any value the column takes: NULL where allowed, else the type's zero, epoch or empty text.
    values = ", ".join(
        "NULL"
        if nullable
        else f"coalesce(try_cast(0 AS {data_type}), try_cast('epoch' AS {data_type}),"
        f" try_cast('' AS {data_type}))"
        for _, data_type, nullable, _, _ in columns
    )
    con.execute(f"CREATE TABLE {scratch} ({definitions})")
    try:
        con.execute(f"INSERT INTO {scratch} VALUES ({values})")
    except duckdb.ConstraintException:  # a NOT NULL column of a type without a zero: left as is
        con.execute(f"DROP TABLE {scratch}")
        return False
    con.execute(f"DELETE FROM {scratch}")
    con.execute("BEGIN TRANSACTION")
    try:
        (rows,) = con.execute(f"SELECT count(*) FROM {original}").fetchone()
        if rows:  # written to since it was listed: it has statistics now
            con.execute("ROLLBACK")
            con.execute(f"DROP TABLE {scratch}")
            return False
        con.execute(f"DROP TABLE {original}")
        con.execute(f'ALTER TABLE {scratch} RENAME TO "{table}"')
        if table_comment is not None:
            con.execute(f"COMMENT ON TABLE {original} IS {_text(table_comment)}")
        for name, *_, comment in columns:
            if comment is not None:
                con.execute(f'COMMENT ON COLUMN {original}."{name}" IS {_text(comment)}')
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.TransactionException):  # none open after a failed COMMIT
            con.execute("ROLLBACK")
        raise
    return True


def _text(value: str) -> str:
    """A SQL string literal (COMMENT ON takes no parameters)."""
    return "'" + value.replace("'", "''") + "'"
