"""Lake maintenance on a real lake: compaction brings many small files back to a few without
changing a row, and expiry forgets old snapshots and their files but never a published snapshot a
reader may still be on."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from warehouse.duck import connect_pipeline, connect_reader
from warehouse.layout import STREAMS, Layout, naive_utc
from warehouse.maintenance import (
    TARGET_FILE_BYTES,
    SnapshotRetention,
    compact,
    ensure_lake_options,
    expire_snapshots,
    give_statistics,
    live_data_files,
    tables_without_statistics,
)
from warehouse.published import publish
from warehouse.raw_load import ensure_raw_tables

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


COUNT_MAY_COME_FROM_TABLE_INFO = (
    "DuckLake now ends a delete file with its data file: live_data_files "
    "(warehouse/maintenance.py) may count with ducklake_table_info again; then drop this test"
)


def test_a_data_file_deleted_whole_leaves_its_delete_file_live_in_the_catalog(
    lake: Layout,
) -> None:
    # What the micro-batch ledger does to its rows: mark one built (a delete file), then the
    # closed hour replaces the rest. Counted as live, 100 such files a day would look like a table
    # of 100 files, while readers open none of them.
    with connect_pipeline(lake) as con:
        con.execute("CREATE TABLE analytics.ledger AS SELECT range AS i FROM range(3)")
        con.execute("DELETE FROM analytics.ledger WHERE i = 0")
        con.execute("DELETE FROM analytics.ledger WHERE i > 0")
        [(table_info_count,)] = con.execute(
            "SELECT file_count + delete_file_count FROM ducklake_table_info('warehouse')"
            " WHERE table_name = 'ledger'"
        ).fetchall()

        assert live_data_files(con)["analytics.ledger"] == 0
        assert table_info_count == 1, COUNT_MAY_COME_FROM_TABLE_INFO


def test_every_run_start_stores_the_write_options_once(layout: Layout) -> None:
    def snapshots() -> int:
        return con.execute("SELECT count(*) FROM ducklake_snapshots('warehouse')").fetchone()[0]

    with connect_pipeline(layout) as con:
        ensure_raw_tables(con)
        stored = con.execute(
            "SELECT option_name, value, scope_entry FROM warehouse.options()"
            " WHERE option_name IN ('target_file_size', 'per_thread_output') ORDER BY ALL"
        ).fetchall()
        before = snapshots()
        ensure_raw_tables(con)
        assert snapshots() == before
    assert stored == [
        *(("per_thread_output", "true", f"raw.{stream}") for stream in sorted(STREAMS)),
        ("target_file_size", str(TARGET_FILE_BYTES), None),
    ]


def test_an_hours_insert_into_a_raw_table_still_makes_one_file(layout: Layout) -> None:
    # Raw tables write one file per thread (for backfills): an hour's rows, one chunk, stay one.
    with connect_pipeline(layout) as con:
        ensure_raw_tables(con)
        con.execute("SET threads = 2")
        con.execute(
            "INSERT INTO raw.identities (uuid, org_id)"
            " SELECT range::VARCHAR, 'org' FROM range(2000)"
        )
        (files,) = con.execute(
            "SELECT count(*) FROM ducklake_list_files('warehouse', 'identities', schema => 'raw')"
        ).fetchone()
    assert files == 1


def test_raw_tables_need_no_lake() -> None:
    # bench/bench_lake.py loads its baseline, one plain DuckDB database, with the same loader.
    with duckdb.connect() as con:
        ensure_raw_tables(con)
        listed = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    tables = {name for (name,) in listed}
    assert {"events", "sessions", "quarantined_records"} <= tables


def test_compaction_rewrites_what_changed_not_the_whole_table(layout: Layout) -> None:
    # A table of many files at the target size, as history accumulates them, and small inserts
    # after. One row deleted from one old file: it stays in that file's delete file (after a
    # backfill, rewriting a 99 MB file for a few replaced rows cost every hour 1.2 s). A quarter of
    # another old file deleted: that file is rewritten. The inserts merge into one file.
    def files() -> dict[str, tuple[int, bool]]:
        listed = con.execute(
            "SELECT data_file, data_file_size_bytes, delete_file IS NOT NULL"
            " FROM ducklake_list_files('warehouse', 'history', schema => 'analytics')"
        ).fetchall()
        return {path: (size, has_deletes) for path, size, has_deletes in listed}

    with connect_pipeline(layout) as con:
        ensure_lake_options(con, target_file_bytes=200_000)
        # Files are cut between row groups: small ones make small files.
        con.execute("CALL warehouse.set_option('parquet_row_group_size', 5000)")
        con.execute("CREATE SCHEMA analytics")
        con.execute(
            "CREATE TABLE analytics.history AS"
            " SELECT range AS i, md5(range::VARCHAR) AS s FROM range(100000)"
        )
        big = files()
        few_deleted, many_deleted = sorted(big)[:2]
        con.execute(
            "DELETE FROM analytics.history WHERE i = (SELECT min(i) FROM read_parquet(?))",
            [few_deleted],
        )
        con.execute(
            "DELETE FROM analytics.history"
            " WHERE i IN (SELECT i FROM read_parquet(?) WHERE i % 4 = 0)",
            [many_deleted],
        )
        for n in range(8):
            con.execute("INSERT INTO analytics.history VALUES (?, 'new')", [-1 - n])
        rows = con.execute("SELECT count(*), sum(i) FROM analytics.history").fetchall()

        compact(con, at_files=3, small_file_bytes=50_000)

        after = files()
        assert con.execute("SELECT count(*), sum(i) FROM analytics.history").fetchall() == rows
    assert len(big) >= 5 and all(size >= 50_000 for size, _ in big.values())
    assert after[few_deleted] == (big[few_deleted][0], True)  # kept, with its delete file
    assert many_deleted not in after  # rewritten without the deleted quarter
    assert set(big) - {many_deleted} <= set(after)  # the rest of history: the same files
    # history, the rewritten file, and one file for the eight inserts
    assert len(after) == len(big) + 1
    assert sum(has_deletes for _, has_deletes in after.values()) == 1


def snapshot_ids(con: duckdb.DuckDBPyConnection) -> set[int]:
    rows = con.execute("SELECT snapshot_id FROM ducklake_snapshots('warehouse')").fetchall()
    return {snapshot_id for (snapshot_id,) in rows}


def published_ids(con: duckdb.DuckDBPyConnection) -> set[int]:
    rows = con.execute("SELECT snapshot_id FROM ops.published_snapshots").fetchall()
    return {snapshot_id for (snapshot_id,) in rows}


NOTHING_RECENT = SnapshotRetention(recent=timedelta(0), published=timedelta(days=7))


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
        in_progress = {snapshot for snapshot in snapshot_ids(con) if snapshot > newest}
        before = snapshot_ids(con)

        expiry = expire_snapshots(con, NOTHING_RECENT)

        remaining = snapshot_ids(con)
        kept_publishes = published_ids(con)
    # the two newest publishes, and what the run in progress committed since the newest
    assert remaining == {older, newest, *in_progress}
    assert expiry.snapshots_expired == len(before) - 2 - len(in_progress)
    assert (expiry.publishes_expired, kept_publishes) == (0, {older, newest})
    assert expiry.files_deleted > 0
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

        expiry = expire_snapshots(
            con, SnapshotRetention(recent=timedelta(hours=24), published=timedelta(days=7))
        )

    # Nothing is old enough; what cleanup may still delete are files no snapshot reads any more
    # (a delete file that a later one of the same data file supersedes): every snapshot reads
    # as before.
    assert expiry.snapshots_expired == 0
    with connect_reader(lake, snapshot=first) as reader:
        assert reader.execute(ROWS).fetchall() == first_rows


def test_time_travel_keeps_one_publish_an_hour_for_the_published_retention(lake: Layout) -> None:
    with connect_pipeline(lake) as con:
        publishes = []
        for _ in range(4):  # micro-batches: several publishes within one hour
            churn(con, 1)
            publishes.append(publish(con))
        hour_rows = con.execute(ROWS).fetchall()
        churn(con, 1)
        newer = publish(con)
        churn(con, 1)
        newest = publish(con)
        two_hours_later = naive_utc(datetime.now(UTC)) + timedelta(hours=2)
        # Move the first five publishes an hour back, as if the last two came in the next hour.
        con.execute(
            "UPDATE ops.published_snapshots SET published_at = published_at - INTERVAL 1 HOUR"
            " WHERE snapshot_id <= ?",
            [publishes[-1]],
        )

        expiry = expire_snapshots(con, NOTHING_RECENT, now=two_hours_later)
        kept = published_ids(con)

        # the newest publish of the earlier hour stays for time travel, the others go
        assert kept == {publishes[-1], newer, newest}
        assert expiry.publishes_expired == 3
        assert set(publishes[:-1]).isdisjoint(snapshot_ids(con))
        with connect_reader(lake, snapshot=publishes[-1]) as reader:
            assert reader.execute(ROWS).fetchall() == hour_rows

        eight_days_later = two_hours_later + timedelta(days=8)
        expire_snapshots(con, NOTHING_RECENT, now=eight_days_later)
        assert published_ids(con) == {newer, newest}  # beyond it, only what readers may be on


def test_expiry_deletes_files_no_snapshot_recorded_once_old(lake: Layout) -> None:
    files = lake.data_dir / "lake" / "files"
    stray_old = files / "analytics" / "t" / "ducklake-left-by-a-killed-run.parquet"
    stray_new = files / "analytics" / "t" / "ducklake-being-written.parquet"
    with connect_pipeline(lake) as con:
        for stray in (stray_old, stray_new):
            con.execute(f"COPY (SELECT 1 AS i) TO '{stray}' (FORMAT parquet)")
        two_hours_ago = time.time() - 7200
        os.utime(stray_old, (two_hours_ago, two_hours_ago))
        rows = con.execute(ROWS).fetchall()

        hourly = expire_snapshots(con, NOTHING_RECENT, orphans=False)
        assert hourly.orphans_deleted == 0 and stray_old.exists()
        daily = expire_snapshots(con, NOTHING_RECENT)

        assert daily.orphans_deleted == 1
        assert not stray_old.exists() and stray_new.exists()
        assert con.execute(ROWS).fetchall() == rows


TABLES_SQL = "SELECT table_name, sql, comment FROM duckdb_tables() WHERE schema_name = 'analytics'"
COMMENTS_SQL = "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE comment <> ''"


@pytest.fixture
def lake_with_empty_tables(lake: Layout) -> Layout:
    with connect_pipeline(lake) as con:
        con.execute(
            "CREATE TABLE analytics.prunes (pruned_at TIMESTAMP NOT NULL,"
            " cutoff TIMESTAMP NOT NULL, deleted BIGINT NOT NULL, note VARCHAR DEFAULT 'none',"
            " tags VARCHAR[])"
        )
        con.execute("COMMENT ON TABLE analytics.prunes IS 'one row per prune, it''s said'")
        con.execute("COMMENT ON COLUMN analytics.prunes.cutoff IS 'sessions before it are gone'")
        con.execute("CREATE TABLE analytics.buckets (uuid VARCHAR, sessions BIGINT)")
        # A lookup table's layout is a table-scoped option: it stays with the table it was set on.
        con.execute("CREATE TABLE analytics.lookup (id VARCHAR)")
        con.execute(
            "CALL warehouse.set_option('parquet_row_group_size', 100, table_name => 'lookup',"
            " schema => 'analytics')"
        )
    return lake


def test_empty_tables_get_statistics_and_keep_their_definitions(
    lake_with_empty_tables: Layout,
) -> None:
    with connect_pipeline(lake_with_empty_tables) as con:
        tables, comments = con.execute(TABLES_SQL).fetchall(), con.execute(COMMENTS_SQL).fetchall()
        assert tables_without_statistics(con) == [
            ("analytics", "buckets"),
            ("analytics", "lookup"),
            ("analytics", "prunes"),
        ]

        given = give_statistics(con)

        assert given.tables == ["analytics.buckets", "analytics.prunes"]
        assert tables_without_statistics(con) == [("analytics", "lookup")]
        assert sorted(con.execute(TABLES_SQL).fetchall()) == sorted(tables)
        assert sorted(con.execute(COMMENTS_SQL).fetchall()) == sorted(comments)
        for table in ("prunes", "buckets", "lookup"):
            assert con.execute(f"SELECT count(*) FROM analytics.{table}").fetchone() == (0,)
        assert con.execute(ROWS).fetchall() == [(1000, sum(range(1000)))]
        assert give_statistics(con).tables == []


def test_an_empty_raw_table_gets_statistics_and_keeps_its_parallel_writes(layout: Layout) -> None:
    def options() -> list[tuple]:
        return con.execute(
            "SELECT option_name, scope_entry FROM warehouse.options()"
            " WHERE scope_entry = 'raw.session_aggregates'"
        ).fetchall()

    with connect_pipeline(layout) as con:
        ensure_raw_tables(con)  # e.g. no Sentry aggregates yet: raw.session_aggregates is empty

        given = give_statistics(con)
        ensure_raw_tables(con)  # the next run's start

        assert "raw.session_aggregates" in given.tables
        assert ("raw", "session_aggregates") not in tables_without_statistics(con)
        assert options() == [("per_thread_output", "raw.session_aggregates")]


def test_a_table_with_statistics_is_planned_without_asking_the_catalog_again(
    lake_with_empty_tables: Layout, capfd: pytest.CaptureFixture[str]
) -> None:
    """The cost give_statistics removes: DuckLake 1.5 reads an empty table's statistics from the
    catalog for each column of each plan. If this starts failing before give_statistics, DuckLake
    caches missing statistics and give_statistics can go."""
    query = "SELECT max(cutoff), count(deleted) FROM analytics.prunes"

    def statistics_reads(con: duckdb.DuckDBPyConnection) -> int:
        con.execute(query).fetchall()  # the first plan may load and cache them
        capfd.readouterr()
        con.execute("SET sqlite_debug_show_queries = true")
        con.execute(query).fetchall()
        con.execute("SET sqlite_debug_show_queries = false")
        return capfd.readouterr().err.count('FROM "ducklake_table_stats"')

    with connect_pipeline(lake_with_empty_tables) as con:
        assert statistics_reads(con) >= 2
        give_statistics(con)
        assert statistics_reads(con) == 0


def test_a_scratch_table_left_by_a_crash_is_replaced(lake_with_empty_tables: Layout) -> None:
    with connect_pipeline(lake_with_empty_tables) as con:
        con.execute("CREATE TABLE analytics.buckets__with_statistics AS SELECT 'x' AS uuid")

        assert give_statistics(con).tables == ["analytics.buckets", "analytics.prunes"]

        (names,) = con.execute(
            "SELECT list(table_name ORDER BY table_name) FROM duckdb_tables()"
            " WHERE schema_name = 'analytics'"
        ).fetchone()
        assert names == ["buckets", "lookup", "prunes", "t"]
        assert con.execute("SELECT count(*) FROM analytics.buckets").fetchone() == (0,)


def test_a_table_no_row_can_be_made_for_is_left_as_it_is(lake: Layout) -> None:
    with connect_pipeline(lake) as con:
        con.execute("CREATE TABLE analytics.strict (id UUID NOT NULL)")  # no zero UUID is tried

        assert give_statistics(con).tables == []

        assert tables_without_statistics(con) == [("analytics", "strict")]
        (names,) = con.execute(
            "SELECT list(table_name ORDER BY table_name) FROM duckdb_tables()"
            " WHERE schema_name = 'analytics'"
        ).fetchone()
        assert names == ["strict", "t"]
