"""Load one received hour of landing files into the warehouse's ``raw`` tables.

A load replaces the hour: it deletes the rows previously loaded for that hour and inserts the
hour's files again, in one transaction, so rerunning it never duplicates a row and a failed load
leaves the previous state intact. dbt's staging models read ``raw.<stream>``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import duckdb

from warehouse.layout import Layout, floor_hour
from warehouse.streams import STREAM_COLUMNS

LOAD_COLUMNS = {"_received_hour": "TIMESTAMP", "_file": "VARCHAR"}


@dataclass(frozen=True)
class HourLoad:
    stream: str
    hour: datetime
    files_read: int
    rows_loaded: int
    rows_replaced: int
    late_records: int  # records whose own timestamp lies before the received hour
    duration_s: float


def ensure_raw_table(con: duckdb.DuckDBPyConnection, stream: str) -> None:
    columns = {**STREAM_COLUMNS[stream], **LOAD_COLUMNS}
    ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(f"CREATE TABLE IF NOT EXISTS raw.{stream} ({ddl})")


def load_hour(
    con: duckdb.DuckDBPyConnection, layout: Layout, stream: str, hour: datetime
) -> HourLoad:
    started = time.perf_counter()
    hour = floor_hour(hour)
    files = [str(path) for path in layout.hour_files(stream, hour)]
    ensure_raw_table(con, stream)
    columns = STREAM_COLUMNS[stream]
    event_time = {"events": "timestamp", "identities": "timestamp", "sessions": "started_at"}[
        stream
    ]
    con.execute("BEGIN TRANSACTION")
    try:
        (replaced,) = con.execute(
            f"SELECT count(*) FROM raw.{stream} WHERE _received_hour = ?", [hour]
        ).fetchone()
        con.execute(f"DELETE FROM raw.{stream} WHERE _received_hour = ?", [hour])
        if files:
            names = ", ".join(f'"{name}"' for name in columns)
            con.execute(
                f"""
                INSERT INTO raw.{stream} ({names}, _received_hour, _file)
                SELECT {names}, ?::TIMESTAMP, filename
                FROM read_json(?, format = 'newline_delimited', columns = ?, filename = true)
                """,
                [hour, files, columns],
            )
        loaded, late = con.execute(
            f"""
            SELECT count(*), count(*) FILTER (WHERE "{event_time}" < _received_hour)
            FROM raw.{stream} WHERE _received_hour = ?
            """,
            [hour],
        ).fetchone()
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return HourLoad(stream, hour, len(files), loaded, replaced, late, time.perf_counter() - started)
