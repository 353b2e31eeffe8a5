"""The lake's Parquet files as its catalog records them, and whether each is still what it records.

A DuckLake file is written once and never changed, and the catalog records its path, size, footer
size and row count. A file that is missing, has another size, or whose footer or data does not
parse has been damaged since (a disk fault, a stray ``rm``, a copy cut short): a query that needs
it fails, and so does every run that would rewrite its rows. :func:`live_files` lists the files
snapshots read, :func:`check` compares one with its record, :func:`named_lake_file` reads a
query's error for the file it names, and :func:`forget` drops damaged files from the lake's
current state, as DuckLake drops a file a DELETE emptied. ``loom doctor`` (``warehouse/doctor.py``)
puts them together; the repair is in docs/lake.md, "Damaged files".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import duckdb

from warehouse.duck import transaction
from warehouse.layout import LAKE_ALIAS

METADATA = f"__ducklake_metadata_{LAKE_ALIAS}"
FORGET_AUTHOR = "loom doctor"
# DuckDB names the file in most errors about it: 'Cannot open file "<path>"', "No magic bytes
# found at end of file '<path>'". A Thrift error in a page header or footer names none.
QUOTED = re.compile(r"""["']([^"']+)["']""")
UNNAMED_DECODING_ERRORS = ("TProtocolException",)


@dataclass(frozen=True)
class LakeFile:
    """One data or delete file, as the catalog records it."""

    table: str  # schema.table
    table_id: int
    kind: Literal["data", "delete"]
    file_id: int  # data_file_id or delete_file_id
    data_file_id: int  # the data file itself, or the one a delete file applies to
    path: str
    size_bytes: int
    footer_size: int | None
    rows: int  # record_count, or delete_count of a delete file
    begin_snapshot: int
    partial_max: int | None  # a merged file: the newest snapshot whose rows it holds
    snapshots: tuple[int, ...]  # which of the snapshots asked about read it


def live_files(
    con: duckdb.DuckDBPyConnection, data_path: str, snapshots: Iterable[int]
) -> list[LakeFile]:
    """Every file one of ``snapshots`` reads, resolved against ``data_path`` as DuckLake resolves
    paths (a file relative to its table's path, that to its schema's, that to the data path)."""
    rows = con.execute(
        f"""
        WITH asked AS (SELECT unnest(?::BIGINT[]) AS snapshot_id),
        tables AS (
            SELECT asked.snapshot_id, t.table_id, s.schema_name || '.' || t.table_name AS name,
                CASE WHEN NOT t.path_is_relative THEN t.path
                     WHEN NOT s.path_is_relative THEN s.path || t.path
                     ELSE ? || s.path || t.path END AS base
            FROM asked
            JOIN {METADATA}.ducklake_table AS t ON {_live("t", "asked")}
            JOIN {METADATA}.ducklake_schema AS s
                ON s.schema_id = t.schema_id AND {_live("s", "asked")}
        ),
        data AS (
            SELECT tables.snapshot_id, tables.name, tables.table_id, 'data' AS kind,
                f.data_file_id AS file_id, f.data_file_id,
                CASE WHEN f.path_is_relative THEN tables.base || f.path ELSE f.path END AS path,
                f.file_size_bytes, f.footer_size, f.record_count AS rows, f.begin_snapshot,
                f.partial_max
            FROM tables JOIN {METADATA}.ducklake_data_file AS f
                ON f.table_id = tables.table_id AND {_live("f", "tables")}
        ),
        deletes AS (
            SELECT data.snapshot_id, data.name, data.table_id, 'delete', d.delete_file_id,
                d.data_file_id,
                CASE WHEN d.path_is_relative THEN tables.base || d.path ELSE d.path END,
                d.file_size_bytes, d.footer_size, d.delete_count, d.begin_snapshot, d.partial_max
            FROM data
            JOIN tables USING (snapshot_id, table_id)
            JOIN {METADATA}.ducklake_delete_file AS d
                ON d.data_file_id = data.data_file_id AND {_live("d", "data")}
        )
        SELECT name, table_id, kind, file_id, data_file_id, path, file_size_bytes, footer_size,
            rows, begin_snapshot, partial_max, list(snapshot_id ORDER BY snapshot_id)
        FROM (SELECT * FROM data UNION ALL SELECT * FROM deletes)
        GROUP BY ALL
        ORDER BY name, kind, file_id
        """,
        [sorted(set(snapshots)), data_path],
    ).fetchall()
    return [LakeFile(*row[:-1], tuple(row[-1])) for row in rows]


def _live(entry: str, at: str) -> str:
    """Whether catalog row ``entry`` exists at the snapshot ``at.snapshot_id``."""
    return (
        f"{entry}.begin_snapshot <= {at}.snapshot_id"
        f" AND coalesce({entry}.end_snapshot > {at}.snapshot_id, true)"
    )


def check(con: duckdb.DuckDBPyConnection, file: LakeFile, *, deep: bool = True) -> str | None:
    """What is wrong with ``file`` (a sentence), or None when it matches its record: it exists,
    has the recorded size, its footer parses and counts the recorded rows; with ``deep``, every
    value of every column decodes too (the only way to find a damaged page)."""
    size = _size(con, file.path)
    if size is None:
        return "missing: there is no file at that path"
    if size != file.size_bytes:
        return f"{size:,} bytes where the catalog records {file.size_bytes:,}"
    try:
        [(rows, footer_size)] = con.execute(
            "SELECT num_rows, footer_size FROM parquet_file_metadata(?)", [file.path]
        ).fetchall()
    except duckdb.Error as error:
        return f"its Parquet footer does not parse ({_reason(error, file.path)})"
    if rows != file.rows:
        return f"its footer counts {rows:,} rows where the catalog records {file.rows:,}"
    if file.footer_size is not None and footer_size != file.footer_size:
        return f"a {footer_size:,}-byte footer where the catalog records {file.footer_size:,}"
    if deep:
        try:
            # Hashing every column makes the reader decode every page.
            [(decoded, *_)] = con.execute(
                "SELECT count(*), min(hash(COLUMNS(*))) FROM read_parquet(?)", [file.path]
            ).fetchall()
        except duckdb.Error as error:
            return f"its data does not decode ({_reason(error, file.path)})"
        if decoded != file.rows:
            return f"{decoded:,} rows decode where the catalog records {file.rows:,}"
    return None


def _size(con: duckdb.DuckDBPyConnection, path: str) -> int | None:
    if "://" not in path:  # a local path may hold characters DuckDB's glob would expand
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            return None
    rows = con.execute("SELECT size FROM read_blob(?)", [path]).fetchall()
    return rows[0][0] if rows else None


def _reason(error: duckdb.Error, path: str) -> str:
    return str(error).replace(path, "the file")


def named_lake_file(error: BaseException, data_path: str) -> str | None:
    """The lake file a DuckDB error names, if it names one under ``data_path``."""
    return next((text for text in QUOTED.findall(str(error)) if text.startswith(data_path)), None)


def is_undecodable(error: BaseException) -> bool:
    """Whether ``error`` is a Parquet file that does not parse, without naming the file."""
    return any(marker in str(error) for marker in UNNAMED_DECODING_ERRORS)


def forget(con: duckdb.DuckDBPyConnection, files: Sequence[LakeFile]) -> int:
    """Drop the data files of ``files`` (a damaged delete file takes its data file with it) from
    the lake's current state in one new snapshot; returns its id.

    DuckLake cannot do this itself: a DELETE, a TRUNCATE or a compaction reads the file first,
    and fails. So this writes what DuckLake writes when a DELETE empties a file: a snapshot
    recording ``deleted_from_table`` for each table and the file's ``end_snapshot``. Older
    snapshots keep the file, as after any delete. ``con`` is the pipeline's connection; the
    catalog's own transaction makes a concurrent commit wait or retry, as two DuckLake commits do.
    """
    data_file_ids = sorted({file.data_file_id for file in files})
    tables = sorted({file.table_id for file in files})
    paths = ", ".join(sorted({file.path.rsplit("/", 1)[-1] for file in files}))
    with transaction(con):
        [(latest, schema_version, next_catalog_id, next_file_id)] = con.execute(
            f"SELECT snapshot_id, schema_version, next_catalog_id, next_file_id"
            f" FROM {METADATA}.ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1"
        ).fetchall()
        snapshot = latest + 1
        con.execute(
            f"INSERT INTO {METADATA}.ducklake_snapshot"
            " (snapshot_id, snapshot_time, schema_version, next_catalog_id, next_file_id)"
            " VALUES (?, now(), ?, ?, ?)",
            [snapshot, schema_version, next_catalog_id, next_file_id],
        )
        con.execute(
            f"INSERT INTO {METADATA}.ducklake_snapshot_changes"
            " (snapshot_id, changes_made, author, commit_message) VALUES (?, ?, ?, ?)",
            [
                snapshot,
                ",".join(f"deleted_from_table:{table}" for table in tables),
                FORGET_AUTHOR,
                f"dropped damaged files: {paths}",
            ],
        )
        con.execute(
            f"UPDATE {METADATA}.ducklake_data_file SET end_snapshot = ?"
            " WHERE end_snapshot IS NULL AND data_file_id IN (SELECT unnest(?::BIGINT[]))",
            [snapshot, data_file_ids],
        )
    return snapshot
