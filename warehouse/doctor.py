"""``loom doctor``: is every file of the lake what its catalog records, and how to repair one
that is not.

It checks every file the lake's latest snapshot or the published one reads
(:mod:`warehouse.lake_files`) and, for each damaged one, says which received hours rebuild its
rows. DuckLake records the snapshot that added each file (a merged file: the range of snapshots
its rows came from; a file rewritten to drop deletes: the snapshot of the rewrite, whose sources
stay recorded until they expire). Each pipeline run ends by publishing, so the publishes around
those snapshots delimit the runs that wrote the rows, and the rows those runs added to
``intermediate.int_processed_windows`` are the windows they processed. A raw table's file says
it directly: the catalog keeps the range of its ``_received_hour`` column.

The repair (docs/lake.md, "Damaged files"): ``loom doctor --forget`` drops the damaged files
from the lake's current state, then ``loom run`` of those hours writes their rows again and
publishes. Rerunning first would not do: the run's delete of the hour reads the damaged file.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import click
import duckdb

from warehouse.duck import connect_pipeline, connect_reader
from warehouse.lake_files import METADATA, LakeFile, check, forget, live_files
from warehouse.layout import LAKE_ALIAS, STREAMS, Layout, floor_hour
from warehouse.published import PUBLISHED_TABLE
from warehouse.settings import get_settings

PROGRESS_SECONDS = 2.0
HOUR = timedelta(hours=1)
RECEIVED_HOUR = "_received_hour"
REWRITES = ("rewrite_delete", "merge_adjacent")  # DuckLake's compactions, as a snapshot records
HourRange = tuple[datetime, datetime]  # first and last received hour, inclusive


@dataclass(frozen=True)
class Rebuild:
    """Which received hours write a damaged file's rows again, and how that is known."""

    hours: list[HourRange]
    source: str
    lost: list[datetime]  # raw hours whose landing files retention deleted: nothing rebuilds them


def rebuild_of(con: duckdb.DuckDBPyConnection, layout: Layout, file: LakeFile) -> Rebuild:
    schema, table = file.table.split(".")
    if received := _received_hours(con, file):
        lost = []
        if schema == "raw" and table in STREAMS:
            first, last = received
            hours = [first + HOUR * n for n in range(int((last - first) / HOUR) + 1)]
            lost = [hour for hour in hours if layout.is_hour_retired(table, hour)]
        return Rebuild([received], f"the file's range of {RECEIVED_HOUR}", lost)
    written = written_between(con, file.table_id, file.begin_snapshot, file.partial_max)
    windows = None if written is None else _windows_of_runs(con, *written)
    if windows:
        return Rebuild(windows, "the windows of the runs that wrote its rows", [])
    # Nothing says which hours: every hour up to when its newest rows were written.
    newest = file.partial_max or file.begin_snapshot
    until = floor_hour(_snapshot_time(con, newest))
    why = "the snapshots that would say have expired: every hour up to when it was written"
    return Rebuild([(_first_received_hour(con), until)], why, [])


def _received_hours(con: duckdb.DuckDBPyConnection, file: LakeFile) -> HourRange | None:
    """The range of ``_received_hour`` the catalog records for the file's data file."""
    [(low, high)] = con.execute(
        f"""
        SELECT min(stats.min_value), max(stats.max_value)
        FROM {METADATA}.ducklake_file_column_stats AS stats
        JOIN {METADATA}.ducklake_column AS columns
            ON columns.table_id = stats.table_id AND columns.column_id = stats.column_id
        WHERE stats.data_file_id = ? AND columns.column_name = ?
        """,
        [file.data_file_id, RECEIVED_HOUR],
    ).fetchall()
    if low is None or high is None:
        return None
    return floor_hour(datetime.fromisoformat(low)), floor_hour(datetime.fromisoformat(high))


def _first_received_hour(con: duckdb.DuckDBPyConnection) -> datetime:
    """The oldest received hour of the raw tables, as the catalog's statistics record it (before
    any load: LOOM_PIPELINE_START)."""
    [(oldest,)] = con.execute(
        f"""
        SELECT min(stats.min_value)
        FROM {METADATA}.ducklake_table_column_stats AS stats
        JOIN {METADATA}.ducklake_column AS columns
            ON columns.table_id = stats.table_id AND columns.column_id = stats.column_id
        WHERE columns.column_name = ? AND columns.end_snapshot IS NULL
        """,
        [RECEIVED_HOUR],
    ).fetchall()
    if oldest is None:
        return floor_hour(get_settings().pipeline_start)
    return floor_hour(datetime.fromisoformat(oldest))


def written_between(
    con: duckdb.DuckDBPyConnection, table_id: int, begin: int, partial_max: int | None
) -> tuple[int, int] | None:
    """A range of snapshots holding every one that wrote rows of a file: from the one that added
    it (merged, the oldest of its sources) to ``partial_max`` (the newest); a compaction that
    rewrote rows widens it to the files it rewrote, while the catalog still records them (None
    once it does not)."""
    ends = [begin, partial_max or begin]
    for snapshot in set(ends):
        if not _rewrote(con, table_id, snapshot):
            continue
        sources = con.execute(
            f"SELECT begin_snapshot, partial_max FROM {METADATA}.ducklake_data_file"
            " WHERE table_id = ? AND end_snapshot = ? AND begin_snapshot < ?",
            [table_id, snapshot, snapshot],
        ).fetchall()
        spans = [written_between(con, table_id, *source) for source in sources]
        if not spans or None in spans:
            return None
        ends += [end for span in spans if span is not None for end in span]
    return min(ends), max(ends)


def _rewrote(con: duckdb.DuckDBPyConnection, table_id: int, snapshot: int) -> bool:
    """Whether ``snapshot`` is a compaction that rewrote files of the table."""
    rows = con.execute(
        f"SELECT changes_made FROM {METADATA}.ducklake_snapshot_changes WHERE snapshot_id = ?",
        [snapshot],
    ).fetchall()
    changes = set((rows[0][0] or "").split(",")) if rows else set()
    return bool({f"{kind}:{table_id}" for kind in REWRITES} & changes)


def _windows_of_runs(con: duckdb.DuckDBPyConnection, low: int, high: int) -> list[HourRange]:
    """The received hours processed by the runs that wrote snapshots ``low`` to ``high``: a
    run ends by publishing, so they lie between the publish before ``low`` and the first at or
    after ``high`` (the latest snapshot when a run after the last publish wrote them)."""
    try:
        publishes = [
            p for (p,) in con.execute(f"SELECT snapshot_id FROM {PUBLISHED_TABLE}").fetchall()
        ]
        [(latest,)] = con.execute(
            f"SELECT id FROM ducklake_current_snapshot('{LAKE_ALIAS}')"
        ).fetchall()
        after = max((p for p in publishes if p < low), default=0)
        until = min((p for p in publishes if p >= high), default=latest)
        # An unwindowed build (`loom upgrade`, `loom dbt build`) records -infinity as its start.
        rows = con.execute(
            f"SELECT greatest(window_start, ?::TIMESTAMP), window_end"
            f" FROM ducklake_table_insertions('{LAKE_ALIAS}', 'intermediate',"
            " 'int_processed_windows', ?, ?)",
            [_first_received_hour(con), after + 1, until],
        ).fetchall()
    except duckdb.Error:  # those tables are damaged too, or were never written
        return []
    return merged([(floor_hour(start), _ceil_hour(end) - HOUR) for start, end in rows])


def _snapshot_time(con: duckdb.DuckDBPyConnection, snapshot: int) -> datetime:
    [(at,)] = con.execute(
        f"SELECT snapshot_time FROM ducklake_snapshots('{LAKE_ALIAS}') WHERE snapshot_id = ?",
        [snapshot],
    ).fetchall()
    return at


def _ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def merged(ranges: list[HourRange]) -> list[HourRange]:
    """Inclusive hour ranges, overlapping and adjacent ones joined, in order."""
    out: list[HourRange] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + HOUR:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def run_command(hours: HourRange) -> str:
    first, last = hours
    if first == last:
        return f"loom run --hour {first:%Y-%m-%dT%H:00}"
    return f"loom run --from {first:%Y-%m-%dT%H:00} --to {last:%Y-%m-%dT%H:00}"


class Progress:
    """A line on stderr at most every :data:`PROGRESS_SECONDS`, and one at the end."""

    def __init__(self, files: int, total_bytes: int) -> None:
        self._files, self._bytes = files, total_bytes
        self._started = self._said = time.monotonic()

    def update(self, done_files: int, done_bytes: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - self._said >= PROGRESS_SECONDS:
            self._said = now
            click.echo(
                f"checked {done_files:,} of {self._files:,} files"
                f" ({_size(done_bytes)} of {_size(self._bytes)}) in {now - self._started:.1f} s",
                err=True,
            )


def _size(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e8 else f"{count / 1e6:.1f} MB"


def _snapshots_and_published(con: duckdb.DuckDBPyConnection) -> tuple[int, int | None]:
    [(latest,)] = con.execute(
        f"SELECT id FROM ducklake_current_snapshot('{LAKE_ALIAS}')"
    ).fetchall()
    try:
        [(published,)] = con.execute(f"SELECT max(snapshot_id) FROM {PUBLISHED_TABLE}").fetchall()
    except duckdb.Error as error:  # never published, or its own file is the damaged one
        click.echo(f"(the published snapshot cannot be read: {error})", err=True)
        published = None
    return latest, published


@click.command()
@click.option(
    "--quick",
    is_flag=True,
    help="Check sizes, footers and row counts only, without decoding every page: much faster on "
    "a big lake, but blind to a damaged page.",
)
@click.option(
    "--forget",
    "forget_damaged",
    is_flag=True,
    help="Drop the damaged files from the lake's current state (one new snapshot), so that "
    "rerunning the hours printed writes their rows again. Run it while no pipeline run is.",
)
def doctor(quick: bool, forget_damaged: bool) -> None:
    """Check every file of the lake against its catalog; name the damaged ones and how to repair
    them. Exits 1 when a file is damaged."""
    layout = Layout.from_settings()
    if not layout.lake.is_created():
        click.echo("no lake yet: nothing to check")
        return
    with connect_reader(layout) as con:
        latest, published = _snapshots_and_published(con)
        snapshots = [latest] if published is None else [latest, published]
        files = live_files(con, layout.lake.data_path, snapshots)
        total = sum(file.size_bytes for file in files)
        click.echo(
            f"checking {len(files):,} files ({_size(total)}) read by the latest snapshot ({latest})"
            + (f" and the published one ({published})" if published is not None else ""),
            err=True,
        )
        damaged, progress, done = [], Progress(len(files), total), 0
        for number, file in enumerate(files, start=1):
            if (problem := check(con, file, deep=not quick)) is not None:
                damaged.append((file, problem, rebuild_of(con, layout, file)))
            done += file.size_bytes
            progress.update(number, done)
        progress.update(len(files), done, final=True)
    if not damaged:
        click.echo(f"no damaged file: all {len(files):,} match the catalog")
        return
    for file, problem, rebuild in damaged:
        _report(file, problem, rebuild, latest, published)
    hours = merged([hours for _, _, rebuild in damaged for hours in rebuild.hours])
    forgettable = [file for file, _, _ in damaged if latest in file.snapshots]
    if forget_damaged and forgettable:
        with connect_pipeline(layout) as con:
            snapshot = forget(con, forgettable)
        click.echo(
            f"\ndropped {len(forgettable)} damaged file(s) in lake snapshot {snapshot}; now:"
        )
        for hour_range in hours:
            click.echo(f"  {run_command(hour_range)}")
    else:
        _print_repair(len(damaged), bool(forgettable), hours)
    sys.exit(1)


def _report(
    file: LakeFile, problem: str, rebuild: Rebuild, latest: int, published: int | None
) -> None:
    readers = [
        name
        for snapshot, name in ((latest, "the latest"), (published, "the published"))
        if snapshot in file.snapshots
    ]
    click.echo(f"\nDAMAGED {file.table} ({file.kind} file) {file.path}")
    click.echo(f"  what:     {problem}")
    click.echo(f"  read by:  {' and '.join(readers)} snapshot")
    merged_from = f" to {file.partial_max} (merged)" if file.partial_max else ""
    click.echo(f"  written:  in snapshot {file.begin_snapshot}{merged_from}")
    ranges = ", ".join(run_command(hours).removeprefix("loom run ") for hours in rebuild.hours)
    click.echo(f"  rebuilt:  by rerunning {ranges} ({rebuild.source})")
    if rebuild.lost:
        click.echo(
            f"  LOST:     retention deleted the landing files of {len(rebuild.lost)} of those"
            f" hours (first {rebuild.lost[0]:%Y-%m-%d %H:00}): nothing rebuilds their rows;"
            " restore this file from a backup instead"
        )


def _print_repair(count: int, forgettable: bool, hours: list[HourRange]) -> None:
    click.echo(f"\n{count} damaged file(s). To repair them, while no pipeline run is in progress:")
    if forgettable:
        click.echo(
            "  1. loom doctor --forget\n"
            "     drops them from the lake's current state: their rows are missing until step 2"
        )
    else:
        click.echo("  1. (nothing to drop: only the published snapshot still reads them)")
    click.echo("  2. rebuild their rows; each run publishes, and readers answer again:")
    for hour_range in hours:
        click.echo(f"     {run_command(hour_range)}")
