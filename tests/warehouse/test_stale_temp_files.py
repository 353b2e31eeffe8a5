"""Dot-files left on a shared landing path by ingest hosts that died mid-write are deleted once
older than the bound, whichever host wrote them; a younger one may be a live host's write in
flight and stays, and so does everything that is not a write's dot-file."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from warehouse.landing_retention import remove_stale_temp_files
from warehouse.layout import CLOCK_PREFIX, RETIRED_MARKER, Layout

HOUR = datetime(2026, 1, 18, 12)
BOUND_S = 3600
STAMP = "20260118T120000000000"


def test_only_dot_files_older_than_the_bound_go_whoever_wrote_them(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "pipeline", landing_path=tmp_path / "shared-landing")
    folder = layout.hour_dir("events", "org_a", HOUR)
    folder.mkdir(parents=True)
    now = layout.landing_clock()
    ages = {
        # (name, age in seconds): of a host that died long ago, and of live hosts' writes
        folder / f".part-{STAMP}-api-1-4242-abcd.ndjson.tmp": BOUND_S + 60,
        folder / f".part-{STAMP}-4242-abcd.ndjson.tmp": 2 * BOUND_S,  # before host ids
        layout.landing_dir / ".probe-api-1-4242.tmp": BOUND_S + 1,
        folder / f".part-{STAMP}-api-2-77-beef.ndjson.tmp": BOUND_S - 60,
        layout.landing_dir / ".probe-api-2-77.tmp": 0,
        # never a write's dot-file, however old
        folder / f"part-{STAMP}-api-1-4242-abcd.ndjson": 10 * BOUND_S,
        folder / RETIRED_MARKER: 10 * BOUND_S,
        layout.landing_dir / f"{CLOCK_PREFIX}pipe-1": 10 * BOUND_S,
    }
    for path, age in ages.items():
        path.write_text('{"uuid": "x"}\n')
        os.utime(path, (now - age, now - age))

    assert remove_stale_temp_files(layout, BOUND_S) == 3
    assert [path.exists() for path in ages] == [False, False, False, True, True, True, True, True]
    assert remove_stale_temp_files(layout, BOUND_S) == 0
