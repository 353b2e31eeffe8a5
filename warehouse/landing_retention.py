"""Retiring landing files: those of hours past the landing retention whose every line is in
``raw.*`` (and none in quarantine) are deleted, after a durable marker tells the raw loader that
the raw rows are now the hour's only full copy; and the dot-files of writes that never finished
(an ingest host died mid-write), once too old to be in flight. The pipeline's daily retention job
runs both."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from warehouse.layout import RETIRED_MARKER, STREAMS, Layout
from warehouse.raw_load import QUARANTINE_TABLE, ensure_raw_table


@dataclass
class LandingRetention:
    cutoff: datetime
    files_deleted: int = 0
    bytes_deleted: int = 0
    hours_retired: dict[str, list[datetime]] = field(default_factory=dict)
    # (stream, hour, files not yet loaded): old enough to go, but the warehouse lacks them.
    hours_kept_unloaded: list[tuple[str, datetime, int]] = field(default_factory=list)


def loaded_files(
    con: duckdb.DuckDBPyConnection, stream: str, since: datetime, before: datetime
) -> set[str]:
    """Landing files of hours in ``[since, before)`` whose rows are in ``raw.<stream>`` and none
    in quarantine (a file with quarantined lines is kept to be fixed and replayed), relative to
    the stream's directory (so the comparison survives moving the data directory)."""
    ensure_raw_table(con, stream)
    relative = "regexp_extract(_file, 'org_id=[^/]+/date=[^/]+/hour=[^/]+/[^/]+$')"
    rows = con.execute(
        f"""
        SELECT DISTINCT {relative} FROM raw.{stream}
        WHERE _received_hour >= $since AND _received_hour < $before
        EXCEPT
        SELECT {relative} FROM {QUARANTINE_TABLE}
        WHERE stream = $stream AND _received_hour >= $since AND _received_hour < $before
        """,
        {"since": since, "before": before, "stream": stream},
    ).fetchall()
    return {path for (path,) in rows}


def retire_loaded_landing_files(
    con: duckdb.DuckDBPyConnection, layout: Layout, cutoff: datetime
) -> LandingRetention:
    report = LandingRetention(cutoff=cutoff)
    for stream in STREAMS:
        stream_dir = layout.stream_dir(stream)
        old_hours = sorted(
            h for h in layout.landed_hours(stream) if h + timedelta(hours=1) <= cutoff
        )
        if not old_hours:
            continue
        loaded = loaded_files(con, stream, old_hours[0], cutoff)
        for hour in old_hours:
            files = layout.hour_files(stream, hour)
            unloaded = [f for f in files if f.relative_to(stream_dir).as_posix() not in loaded]
            if unloaded:
                report.hours_kept_unloaded.append((stream, hour, len(unloaded)))
                continue
            # The marker goes first and durably: if we stop half way, the loader already knows
            # the raw rows are the only full copy of this hour and will not reload from files.
            folders = sorted({f.parent for f in files})
            for folder in folders:
                _write_durably(folder / RETIRED_MARKER)
            for path in files:
                report.bytes_deleted += path.stat().st_size
                path.unlink()
                report.files_deleted += 1
            for folder in folders:
                _fsync_dir(folder)
            report.hours_retired.setdefault(stream, []).append(hour)
    return report


def remove_stale_temp_files(layout: Layout, max_age_s: float) -> int:
    """Delete landing dot-files older than ``max_age_s``, whichever host wrote them: an ingest
    API removes its own host's leftovers when it starts, but a host that never comes back (or
    whose host id changed) leaves its in-flight writes on a shared landing path for good. Ages
    are measured on the landing storage's clock, which stamped the files; a younger dot-file
    may be a live host's write in flight and is kept. How many were deleted."""
    oldest_kept = layout.landing_clock() - max_age_s
    removed = 0
    for path in layout.temp_files():
        try:
            if path.stat().st_mtime < oldest_kept:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # renamed into place or removed by its writer meanwhile
            continue
    return removed


def _write_durably(path: Path) -> None:
    with path.open("wb") as handle:
        os.fsync(handle.fileno())
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
