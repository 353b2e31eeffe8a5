"""Keeping the lake small: DuckLake's own maintenance functions, run by the pipeline.

Every commit writes new Parquet files (and delete files for what it replaced), so an hourly run
leaves dozens of small files behind: 8 runs grew one lake from 8 to 348 files. After each run,
:func:`compact` rewrites the files that carry deletes and merges adjacent small files of every
table that has reached :data:`COMPACT_AT_FILES` live files, so no table is read from more than a
few files, and an hour that left every table below that costs one catalog query instead of a
pass over the whole lake. Daily, :func:`expire_snapshots` forgets snapshots no reader can still be
on and deletes the files only they referenced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from warehouse.layout import LAKE_ALIAS, naive_utc
from warehouse.published import published_history

# Hourly runs add one or two files (data, deletes) to each table they change: compacting at 8 keeps
# every table under 10 files while most hours skip compaction.
COMPACT_AT_FILES = 8


@dataclass(frozen=True)
class Compaction:
    files_before: int
    files_after: int
    seconds: float


@dataclass(frozen=True)
class Expiry:
    cutoff: datetime
    snapshots_expired: int
    files_deleted: int
    seconds: float


def live_data_files(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Data and delete files the lake's current snapshot reads, per table (schema.table)."""
    rows = con.execute(
        f"""
        SELECT schemas.schema_name || '.' || info.table_name,
               info.file_count + info.delete_file_count
        FROM ducklake_table_info('{LAKE_ALIAS}') AS info
        JOIN __ducklake_metadata_{LAKE_ALIAS}.ducklake_schema AS schemas
            ON schemas.schema_id = info.schema_id AND schemas.end_snapshot IS NULL
        """
    ).fetchall()
    return dict(rows)


def compact(con: duckdb.DuckDBPyConnection, at_files: int = COMPACT_AT_FILES) -> Compaction:
    """Compact every table with at least ``at_files`` live data and delete files."""
    started = time.perf_counter()
    files = live_data_files(con)
    for table in sorted(name for name, count in files.items() if count >= at_files):
        schema, name = table.split(".", 1)
        con.execute(
            f"CALL ducklake_rewrite_data_files('{LAKE_ALIAS}', ?, schema => ?,"
            " delete_threshold => 0)",
            [name, schema],
        )
        con.execute(
            f"CALL ducklake_merge_adjacent_files('{LAKE_ALIAS}', ?, schema => ?)", [name, schema]
        )
    after = sum(live_data_files(con).values())
    return Compaction(sum(files.values()), after, time.perf_counter() - started)


def expirable_snapshots(
    con: duckdb.DuckDBPyConnection, retention: timedelta, now: datetime | None = None
) -> tuple[datetime, list[int]]:
    """The snapshots that may go: older than ``retention`` and than the publish before the newest
    (a reader may still be finishing on it while it switches to the newest); with the cutoff."""
    now = now or naive_utc(datetime.now(UTC))
    cutoff = now - retention
    in_use = published_history(con, newest=2)
    oldest_in_use = in_use[-1][0] if in_use else None
    (ids,) = con.execute(
        f"""
        SELECT coalesce(list(snapshot_id ORDER BY snapshot_id), [])
        FROM ducklake_snapshots('{LAKE_ALIAS}')
        WHERE snapshot_time < ?::TIMESTAMPTZ AND (? IS NULL OR snapshot_id < ?)
        """,
        [cutoff.replace(tzinfo=UTC), oldest_in_use, oldest_in_use],
    ).fetchone()
    return cutoff, ids


def expire_snapshots(
    con: duckdb.DuckDBPyConnection, retention: timedelta, now: datetime | None = None
) -> Expiry:
    started = time.perf_counter()
    cutoff, expirable = expirable_snapshots(con, retention, now)
    if expirable:
        con.execute(f"CALL ducklake_expire_snapshots('{LAKE_ALIAS}', versions => ?)", [expirable])
    deleted = con.execute(
        f"CALL ducklake_cleanup_old_files('{LAKE_ALIAS}', cleanup_all => true)"
    ).fetchall()
    return Expiry(cutoff, len(expirable), len(deleted), time.perf_counter() - started)
