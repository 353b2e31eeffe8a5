"""Lake maintenance on a real lake: compaction brings many small files back to a few without
changing a row, and expiry forgets old snapshots and their files but never a published snapshot a
reader may still be on."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from warehouse.duck import connect_pipeline, connect_reader
from warehouse.layout import Layout
from warehouse.maintenance import compact, expire_snapshots, live_data_files
from warehouse.published import publish

ROWS = "SELECT count(*), sum(i) FROM analytics.t"


def churn(con: duckdb.DuckDBPyConnection, rounds: int) -> None:
    """What hourly runs do to a table: delete some rows, insert some, each its own commit."""
    for n in range(rounds):
        con.execute("DELETE FROM analytics.t WHERE i % 10 = ?", [n % 10])
        con.execute("INSERT INTO analytics.t SELECT range + ? FROM range(100)", [1000 * (n + 1)])


@pytest.fixture
def lake(layout: Layout) -> Layout:
    with connect_pipeline(layout) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute("CREATE TABLE analytics.t AS SELECT range AS i FROM range(1000)")
    return layout


def test_compaction_merges_small_files_and_changes_no_row(lake: Layout) -> None:
    with connect_pipeline(lake) as con:
        churn(con, 8)
        before = con.execute(ROWS).fetchall()
        files_before = live_data_files(con)["analytics.t"]

        result = compact(con)

        assert files_before >= 16  # a data file and a delete file per round
        assert live_data_files(con)["analytics.t"] == 1
        assert (result.files_before, result.files_after) == (files_before, 1)
        assert con.execute(ROWS).fetchall() == before


def test_compaction_leaves_a_table_with_few_files_alone(lake: Layout) -> None:
    with connect_pipeline(lake) as con:
        con.execute("CREATE TABLE analytics.quiet AS SELECT range AS i FROM range(10)")
        churn(con, 8)  # analytics.t: 17 files; analytics.quiet: its one
        con.execute("INSERT INTO analytics.quiet VALUES (10)")

        result = compact(con, at_files=3)

        assert live_data_files(con) == {"analytics.t": 1, "analytics.quiet": 2}
        assert (result.files_before, result.files_after) == (17 + 2, 1 + 2)


def test_expiry_keeps_the_published_snapshots_readers_may_be_on(lake: Layout) -> None:
    with connect_pipeline(lake) as con:
        churn(con, 4)
        older = publish(con)
        older_rows = con.execute(ROWS).fetchall()
        churn(con, 4)
        compact(con)
        newest = publish(con)
        newest_rows = con.execute(ROWS).fetchall()
        churn(con, 2)  # a run in progress, unpublished

        expiry = expire_snapshots(con, retention=timedelta(0))

        remaining = {
            snapshot
            for (snapshot,) in con.execute(
                "SELECT snapshot_id FROM ducklake_snapshots('warehouse')"
            ).fetchall()
        }
    assert expiry.snapshots_expired == older  # every snapshot before the older publish
    assert expiry.files_deleted > 0
    assert min(remaining) == older
    for snapshot, rows in ((older, older_rows), (newest, newest_rows)):
        with connect_reader(lake, snapshot=snapshot) as reader:
            assert reader.execute(ROWS).fetchall() == rows


def test_expiry_respects_the_retention_setting(lake: Layout) -> None:
    with connect_pipeline(lake) as con:
        churn(con, 2)
        first = publish(con)
        first_rows = con.execute(ROWS).fetchall()
        churn(con, 2)
        publish(con)

        expiry = expire_snapshots(con, retention=timedelta(hours=24))

    # Nothing is old enough; what cleanup may still delete are files no snapshot reads any more
    # (a delete file that a later one of the same data file supersedes): every snapshot reads
    # as before.
    assert expiry.snapshots_expired == 0
    with connect_reader(lake, snapshot=first) as reader:
        assert reader.execute(ROWS).fetchall() == first_rows
