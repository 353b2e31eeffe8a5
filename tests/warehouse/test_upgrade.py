"""Upgrading a data directory of the previous storage: a DuckDB 2.x file that DuckDB 1.5 cannot
open, whose raw tables are the only copy of hours whose landing files retention deleted. After
``loom upgrade`` the lake holds every raw row and the marts built from them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from loom.cli import main
from tests.dagster_project.utils.dataset import land_hour_1, land_hour_2
from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.published import published_snapshot_id
from warehouse.streams import STREAM_COLUMNS
from warehouse.upgrade import legacy_python

pytestmark = pytest.mark.slow

# The streams a warehouse of the previous version had (the Sentry session_aggregates are newer).
LEGACY_STREAMS = ("events", "identities", "sessions")

# What the previous version's raw load left: raw.<stream> with the landed columns, the received
# hour and the file, in a file written by DuckDB 2.x.
WRITE_LEGACY = """
import json, sys
import duckdb
path, layout = sys.argv[1], json.loads(sys.argv[2])
con = duckdb.connect(path)
con.execute("CREATE SCHEMA raw")
for stream, spec in layout.items():
    con.execute(
        f'''CREATE TABLE raw.{stream} AS
        SELECT * EXCLUDE (filename), strptime(regexp_extract(filename,
            'date=([0-9-]+)/hour=([0-9]+)', 1) || ' ' || regexp_extract(filename,
            'date=([0-9-]+)/hour=([0-9]+)', 2), '%Y-%m-%d %H') AS _received_hour,
            filename AS _file
        FROM read_json(?, format = 'newline_delimited', columns = ?, filename = true)''',
        [spec["files"], spec["columns"]],
    )
print(duckdb.__version__)
"""


def test_upgrade_moves_the_raw_rows_into_the_lake_and_rebuilds_the_marts(tmp_path) -> None:
    layout = Layout(tmp_path / "data")
    land_hour_1(layout)
    land_hour_2(layout)
    python = legacy_python(layout)
    spec = {
        stream: {
            "files": [str(path) for path in sorted(layout.stream_dir(stream).rglob("part-*"))],
            "columns": STREAM_COLUMNS[stream],
        }
        for stream in LEGACY_STREAMS
    }
    legacy = layout.data_dir / "warehouse.duckdb"
    written = subprocess.run(
        [str(python), "-c", WRITE_LEGACY, str(legacy), json.dumps(spec)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert written.stdout.strip().startswith("2.")
    shutil.rmtree(layout.landing_dir)  # retention deleted the landing files: raw is the only copy

    result = CliRunner().invoke(main, ["upgrade"], env={"LOOM_DATA_DIR": str(layout.data_dir)})

    assert result.exit_code == 0, result.output
    assert "raw.events: 9 rows" in result.output and "raw.sessions: 8 rows" in result.output
    assert not legacy.exists() and legacy.with_name("warehouse.duckdb.pre-lake").exists()
    with connect_reader(layout, snapshot=published_snapshot_id(layout)) as lake:
        assert lake.execute("select count(*), count(distinct uuid) from raw.events").fetchall() == [
            (9, 8)
        ]
        assert lake.execute(
            "select release, total_sessions, crashed_sessions from analytics.release_health"
            " order by release"
        ).fetchall() == [("app@1.0", 4, 1), ("app@1.1", 1, 0)]
