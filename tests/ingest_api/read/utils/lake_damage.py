"""Damaging a copy of the built lake the way disks and people do, for the tests of what readers
and `loom doctor` make of it."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from warehouse.duck import connect_pipeline, connect_reader
from warehouse.layout import Layout
from warehouse.published import publish, published_snapshot_id


def table_files(layout: Layout, schema: str, table: str) -> list[Path]:
    """The data files of ``schema.table`` in the published snapshot."""
    with connect_reader(layout, published_snapshot_id(layout)) as con:
        rows = con.execute(
            "SELECT data_file FROM ducklake_list_files('warehouse', ?, schema => ?)",
            [table, schema],
        ).fetchall()
    return [Path(path) for (path,) in rows]


def fct_events_files(layout: Layout) -> list[Path]:
    return table_files(layout, "analytics", "fct_events")


def zero_page_header(path: Path, column: str | None = None) -> None:
    """Overwrite the header of the first data page of ``column`` (default the first column) with
    zeros, keeping the file's size and footer: only reading that column's values fails."""
    metadata = pq.ParquetFile(path).metadata
    index = 0 if column is None else metadata.schema.names.index(column)
    offset = metadata.row_group(0).column(index).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 16] = bytes(16)
    path.write_bytes(bytes(data))


def add_a_day_of_events(layout: Layout) -> None:
    """Copy every event ten days later, as a new file of fct_events, and publish it."""
    with connect_pipeline(layout) as con:
        con.execute(
            "INSERT INTO analytics.fct_events SELECT * REPLACE (uuid || '-later' AS uuid,"
            " timestamp + INTERVAL 10 DAY AS timestamp, received_at + INTERVAL 10 DAY AS"
            " received_at) FROM analytics.fct_events"
        )
        publish(con)
