"""``loom upgrade``: move a warehouse of the previous storage (one DuckDB file written by DuckDB
2.x, ``<data>/warehouse.duckdb``) into the lake, keeping every raw record.

DuckDB 1.x cannot open a file DuckDB 2.x wrote, and DuckLake exists here only for DuckDB 1.5. So
the old file is read by DuckDB 2.x itself, in a virtual environment of its own (created on first
use from PyPI under ``<data>/upgrade/``), which copies ``raw.*`` — the only copy of the landing
hours retention already deleted — to Parquet. Those rows are loaded into the lake's raw tables
as they were, the marts are rebuilt from them by one unwindowed ``dbt build`` and published, and
the old file is renamed ``warehouse.duckdb.pre-lake`` (delete it once satisfied). Nothing
else needs moving: the marts are derived from raw, and the key registry is unchanged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from warehouse.duck import connect_pipeline, transaction
from warehouse.layout import STREAMS, Layout
from warehouse.published import publish
from warehouse.raw_load import LOAD_COLUMNS, ensure_raw_tables, newest_built, record_raw_rows
from warehouse.streams import STREAM_COLUMNS

LEGACY_FILE = "warehouse.duckdb"
LEGACY_DUCKDB = "duckdb==2.0.1"  # the version that wrote the previous storage
EXPORT_SCRIPT = """
import json, sys
import duckdb
source, target, streams = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
con = duckdb.connect()
con.execute(f"ATTACH '{source}' AS legacy (READ_ONLY)")
found = {name for (name,) in con.execute(
    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'legacy' AND schema_name = 'raw'"
).fetchall()}
counts = {}
for stream in streams:
    if stream in found:
        con.execute(f"COPY legacy.raw.{stream} TO '{target}/{stream}.parquet' (FORMAT parquet)")
        counts[stream] = con.execute(f"SELECT count(*) FROM legacy.raw.{stream}").fetchall()[0][0]
print(json.dumps(counts))
"""


@dataclass(frozen=True)
class Upgrade:
    rows: dict[str, int]
    legacy_file: Path


def legacy_python(layout: Layout) -> Path:
    """A Python with DuckDB 2.x, in a virtual environment under the data directory."""
    venv = layout.data_dir / "upgrade" / "duckdb-2"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", LEGACY_DUCKDB], check=True)
    return python


def upgrade(layout: Layout, echo: Callable[[str], None] = click.echo) -> Upgrade:
    legacy = layout.data_dir / LEGACY_FILE
    if not legacy.exists():
        raise click.ClickException(f"no {legacy} to upgrade: this data directory is already a lake")
    exported = layout.data_dir / "upgrade" / "raw"
    shutil.rmtree(exported, ignore_errors=True)
    exported.mkdir(parents=True)
    echo(f"reading raw.* of {legacy} with {LEGACY_DUCKDB} (installed under {exported.parent})…")
    result = subprocess.run(
        [str(legacy_python(layout)), "-c", EXPORT_SCRIPT, str(legacy), str(exported),
         json.dumps(list(STREAMS))],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    rows: dict[str, int] = json.loads(result.stdout)
    with connect_pipeline(layout) as con:
        # Created before the transaction: DuckLake takes no options for a table created in it.
        ensure_raw_tables(con)
        with transaction(con):
            for stream in STREAMS:
                con.execute(f"DELETE FROM raw.{stream}")
                if stream in rows:
                    names = ", ".join(
                        f'"{name}"' for name in {**STREAM_COLUMNS[stream], **LOAD_COLUMNS}
                    )
                    con.execute(
                        f"INSERT INTO raw.{stream} ({names}) SELECT {names} FROM read_parquet(?)",
                        [str(exported / f"{stream}.parquet")],
                    )
                    record_raw_rows(con, stream, load_id="loom upgrade")
                echo(f"  raw.{stream}: {rows.get(stream, 0):,} rows")
    echo("rebuilding the marts from raw.* (one unwindowed dbt build)…")
    from warehouse.dbt import build  # imported here: importing dbt takes seconds

    build(layout, exclude="resource_type:unit_test")
    with connect_pipeline(layout) as con:
        snapshot = publish(con, newest_built(con))
    kept = legacy.with_name(f"{LEGACY_FILE}.pre-lake")
    legacy.rename(kept)
    shutil.rmtree(exported)
    shutil.rmtree(layout.data_dir / "serving", ignore_errors=True)  # the old read-only copies
    echo(f"published snapshot {snapshot}; the old file is now {kept} (delete it when satisfied)")
    return Upgrade(rows, kept)


@click.command("upgrade")
def upgrade_command() -> None:
    """Move a warehouse of the previous storage (data/warehouse.duckdb) into the lake."""
    upgrade(Layout.from_settings())
