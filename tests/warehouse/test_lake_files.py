"""The lake's files against its catalog, on a small real lake: the files snapshots read are those
DuckLake reads, each kind of damage is found and said, a damaged file can be dropped so that the
table is read and written again, and a compacted file is traced back to the snapshots that wrote
its rows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from warehouse.doctor import merged, written_between
from warehouse.duck import connect_pipeline
from warehouse.lake_files import check, forget, is_undecodable, live_files, named_lake_file
from warehouse.layout import Layout

# Reads every row: count(*) alone is answered from the catalog.
COUNT = "SELECT count(*), sum(length(v)) FROM analytics.t"


@pytest.fixture
def lake(layout: Layout) -> Layout:
    """Three inserts (three data files, ``h`` = 0, 1, 2) and a delete (one delete file)."""
    with connect_pipeline(layout) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute("CREATE TABLE analytics.t (h INTEGER, v VARCHAR)")
        for h in range(3):
            con.execute("INSERT INTO analytics.t SELECT ?, 'v' || range FROM range(100)", [h])
        con.execute("DELETE FROM analytics.t WHERE h = 1 AND v = 'v7'")
    return layout


def _files(con: duckdb.DuckDBPyConnection, layout: Layout) -> list:
    [(latest,)] = con.execute("SELECT id FROM ducklake_current_snapshot('warehouse')").fetchall()
    return live_files(con, layout.lake.data_path, [latest])


def test_the_live_files_are_those_ducklake_reads(lake: Layout) -> None:
    with connect_pipeline(lake) as con:
        files = _files(con, lake)
        listed = con.execute(
            "SELECT data_file, delete_file FROM ducklake_list_files('warehouse', 't',"
            " schema => 'analytics')"
        ).fetchall()
        healthy = [check(con, file) for file in files]

    assert sorted(f.path for f in files if f.kind == "data") == sorted(d for d, _ in listed)
    assert [f.path for f in files if f.kind == "delete"] == [d for _, d in listed if d]
    assert [f.rows for f in files] == [100, 100, 100, 1]  # the delete file counts its deletes
    assert healthy == [None] * 4


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[:-10])
    elif how == "no footer":
        path.write_bytes(data[:-8] + b"XXXXXXXX")
    elif how == "page":  # the first page's header: same size, footer intact
        path.write_bytes(data[:4] + bytes(16) + data[20:])


@pytest.mark.parametrize(
    ("how", "said", "quick_finds"),
    [
        ("missing", "missing", True),
        ("truncated", "bytes where the catalog records", True),
        ("no footer", "Parquet footer does not parse", True),
        ("page", "data does not decode", False),
    ],
)
def test_each_kind_of_damage_is_found_and_said(
    lake: Layout, how: str, said: str, quick_finds: bool
) -> None:
    with connect_pipeline(lake) as con:
        file = _files(con, lake)[0]
        _damage(Path(file.path), how)

        problem = check(con, file)

        assert problem is not None and said in problem
        assert file.path not in problem  # the sentence names what, the report names where
        assert (check(con, file, deep=False) is not None) == quick_finds


def test_a_damaged_file_is_dropped_so_the_table_reads_and_takes_writes_again(
    lake: Layout,
) -> None:
    with connect_pipeline(lake) as con:
        damaged = next(f for f in _files(con, lake) if f.kind == "delete")  # h = 1's deletes
        Path(damaged.path).unlink()
        with pytest.raises(duckdb.IOException) as failure:
            con.execute(COUNT).fetchall()
        assert named_lake_file(failure.value, lake.lake.data_path) == damaged.path
        # What DuckLake offers cannot drop it: it reads the file first.
        with pytest.raises(duckdb.IOException):
            con.execute("DELETE FROM analytics.t WHERE h = 1")

        snapshot = forget(con, [damaged])

    with connect_pipeline(lake) as con:
        # Its data file went with it (its deletes unknown, its rows cannot be trusted): what
        # rerunning the hours that wrote it brings back.
        assert con.execute(
            "SELECT h, count(*) FROM analytics.t GROUP BY h ORDER BY h"
        ).fetchall() == [
            (0, 100),
            (2, 100),
        ]
        con.execute("INSERT INTO analytics.t SELECT 1, 'v' || range FROM range(100)")
        assert con.execute(COUNT).fetchall()[0][0] == 300
        changes = con.execute(
            "SELECT changes, author FROM ducklake_snapshots('warehouse') WHERE snapshot_id = ?",
            [snapshot],
        ).fetchall()
        assert changes == [({"tables_deleted_from": [str(damaged.table_id)]}, "loom doctor")]
        # Older snapshots still hold it, as after any delete.
        before = con.execute(
            "SELECT delete_file FROM ducklake_list_files('warehouse', 't', schema => 'analytics',"
            " snapshot_version => ?)",
            [snapshot - 1],
        ).fetchall()
        assert (damaged.path,) in before


def test_a_compacted_file_is_traced_to_the_snapshots_that_wrote_its_rows(lake: Layout) -> None:
    with connect_pipeline(lake) as con:
        inserts = [f.begin_snapshot for f in _files(con, lake) if f.kind == "data"]
        con.execute("CALL ducklake_rewrite_data_files('warehouse', delete_threshold => 0)")
        con.execute("CALL ducklake_merge_adjacent_files('warehouse')")
        [compacted] = [f for f in _files(con, lake) if f.kind == "data"]

        written = written_between(
            con, compacted.table_id, compacted.begin_snapshot, compacted.partial_max
        )

    # Every insert's snapshot is in the range, though the rewrite moved one file's rows on.
    assert written is not None
    assert written[0] == min(inserts) and written[1] >= max(inserts)


def test_an_undecodable_page_is_recognised_without_a_path() -> None:
    assert is_undecodable(duckdb.Error("TProtocolException: Invalid data"))
    assert not is_undecodable(duckdb.Error("Binder Error: no such column"))


def test_hour_ranges_are_merged_when_they_touch() -> None:
    a, b, c, d = (datetime(2026, 1, 1, h) for h in (0, 2, 3, 9))
    assert merged([(b, c), (a, a), (d, d), (a, b)]) == [(a, c), (d, d)]
