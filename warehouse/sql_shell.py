"""``loom sql``: the analysts' entry point, DuckDB SQL on the lake's published snapshot.

The connection is read-only and pinned to the newest published snapshot (every mart from one
whole run), so a query never sees a run half done, never blocks the pipeline and is never failed
by it. ``warehouse`` is the current catalog: ``select * from analytics.events`` and
``select * from warehouse.analytics.events`` are the same table. The same snapshot is attached
once more, read-only, as ``altertable``: the tracking spec's reference query reads
``FROM altertable.analytics.events``, and analysts copy it as written. Every org's rows are
there (this is the operator's shell): scope a query with ``where org_id = '…'``.

* ``loom sql`` — an interactive shell: statements end with ``;``; ``.tables`` lists the tables,
  ``.quit`` (or Ctrl-D) leaves;
* ``loom sql -c "QUERY"`` — prints the result as a table, or ``--csv`` / ``--json`` (one JSON
  object per row, NDJSON) for scripts;
* ``loom sql --print-attach`` — the statements that attach the same snapshot from any other DuckDB
  client (the DuckDB CLI, Python, DBeaver);
* ``loom sql --at TIME`` — any of these on the snapshot published at or before TIME (time travel,
  as far back as publishes are kept).

It says on stderr which snapshot it reads and how fresh its data is, so ``-c … --csv`` output
stays clean.
"""

from __future__ import annotations

import csv
import shutil
import sys
from collections.abc import Iterator
from datetime import datetime

import click
import duckdb
import orjson

from warehouse.duck import attach_lake, connect_reader, extension_directory
from warehouse.layout import LAKE_ALIAS, Layout, naive_utc
from warehouse.published import Publish, TimeNotKept, kept_publishes_of

# The catalog name the tracking spec's SQL uses (`FROM altertable.analytics.events`).
SPEC_CATALOG = "altertable"
PROMPT, CONTINUATION = "loom> ", "  ...> "
FETCH_ROWS = 10_000
TABLES = f"""
    SELECT schema_name || '.' || table_name AS "table", estimated_size AS rows
    FROM duckdb_tables() WHERE database_name = '{LAKE_ALIAS}'
    UNION ALL
    SELECT schema_name || '.' || view_name, NULL FROM duckdb_views()
    WHERE database_name = '{LAKE_ALIAS}' AND NOT internal
    ORDER BY 1
"""


def published_or_exit(layout: Layout, at: datetime | None = None) -> Publish:
    """The newest publish, or the newest made at or before ``at``."""
    publishes = kept_publishes_of(layout)
    if publishes.newest() is None:
        raise click.ClickException(
            "nothing is published yet: the pipeline has not built anything (under `make up`, the "
            "micro-batch sensor does within a minute of data landing; by hand: `loom run "
            "--micro-batch`)"
        )
    try:
        return publishes.at(at) if at is not None else publishes.kept[-1]
    except TimeNotKept as error:
        raise click.ClickException(f"--at: {error}") from None


def describe(publish: Publish) -> str:
    """Which data a session reads, in words."""
    data = "unknown" if publish.data_as_of is None else _utc(publish.data_as_of)
    return (
        f"published snapshot {publish.snapshot_id} (published {_utc(publish.published_at)};"
        f" data as of {data})"
    )


def _utc(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def attach_statements(layout: Layout, publish: Publish) -> str:
    lake = layout.lake
    loads = "\n".join(f"LOAD {name};" for name in lake.required_extensions())
    return (
        f"-- {describe(publish)}\n"
        f"-- DuckDB {duckdb.__version__} with DuckDB's signed extension builds from PyPI, linked"
        " here by Loom\n"
        f"-- (a client with internet access may INSTALL ducklake and {lake.catalog_kind} instead)\n"
        f"SET extension_directory = '{extension_directory(layout)}';\n"
        f"{loads}\n"
        f"{lake.attach_sql(snapshot=publish.snapshot_id, read_only=True)};\n"
        f"-- the same snapshot under the tracking spec's name:"
        f" FROM {SPEC_CATALOG}.analytics.events\n"
        f"{lake.attach_sql(snapshot=publish.snapshot_id, read_only=True, alias=SPEC_CATALOG)};\n"
        f"USE {LAKE_ALIAS}.analytics;"
    )


def print_result(relation: duckdb.DuckDBPyRelation, output: str) -> None:
    if output == "table":
        width = shutil.get_terminal_size().columns
        relation.show(max_width=width, max_rows=FETCH_ROWS)
        return
    names = relation.columns
    if output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        for rows in _batches(relation):
            writer.writerows(rows)
        return
    options = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY
    for rows in _batches(relation):
        for row in rows:
            line = orjson.dumps(dict(zip(names, row, strict=True)), default=str, option=options)
            sys.stdout.write(line.decode() + "\n")


def _batches(relation: duckdb.DuckDBPyRelation) -> Iterator[list[tuple]]:
    while rows := relation.fetchmany(FETCH_ROWS):
        yield rows


def run_statement(con: duckdb.DuckDBPyConnection, text: str, output: str = "table") -> None:
    relation = con.sql(text)
    if relation is not None:  # statements without a result (SET, CREATE TEMP …) print nothing
        print_result(relation, output)


def shell(con: duckdb.DuckDBPyConnection) -> None:
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401 - importing it gives input() line editing and history

        click.echo(
            "Loom warehouse (read-only). End statements with ';'. .tables lists the tables,"
            " .quit leaves."
        )
    buffer: list[str] = []
    while True:
        try:
            line = input((CONTINUATION if buffer else PROMPT) if interactive else "")
        except EOFError:
            break
        except KeyboardInterrupt:  # drop the statement being typed, like other SQL shells
            buffer = []
            click.echo()
            continue
        command = line.strip()
        if not buffer and command in (".quit", ".exit"):
            break
        if not buffer and command == ".tables":
            run_statement(con, TABLES)
            continue
        if command:
            buffer.append(line)
        if buffer and command.endswith(";"):
            try:
                run_statement(con, "\n".join(buffer))
            except duckdb.Error as error:
                click.echo(f"Error: {error}", err=True)
            buffer = []


@click.command("sql")
@click.option("-c", "--command", "query", help="Run QUERY, print its result and exit.")
@click.option("--csv", "output", flag_value="csv", help="With -c: CSV with a header line.")
@click.option("--json", "output", flag_value="json", help="With -c: one JSON object per row.")
@click.option(
    "--print-attach",
    is_flag=True,
    help="Print the SQL that attaches the published snapshot from another DuckDB client.",
)
@click.option(
    "--at",
    callback=lambda _context, _option, value: _utc_time(value),
    metavar="TIME",
    help="Read the snapshot published at or before TIME (ISO 8601, UTC unless it has an offset).",
)
def sql(query: str | None, output: str | None, print_attach: bool, at: datetime | None) -> None:
    """DuckDB SQL on the lake's published snapshot (read-only): the marts are in
    ``warehouse.analytics``, e.g. ``loom sql -c "select * from analytics.release_health"``."""
    layout = Layout.from_settings()
    publish = published_or_exit(layout, at)
    if print_attach:
        click.echo(attach_statements(layout, publish))
        return
    click.echo(describe(publish), err=True)
    with connect_reader(layout, snapshot=publish.snapshot_id) as con:
        attach_lake(
            con, layout.lake, snapshot=publish.snapshot_id, read_only=True, alias=SPEC_CATALOG
        )
        if query is None:
            shell(con)
            return
        try:
            run_statement(con, query, output or "table")
        except duckdb.Error as error:
            raise click.ClickException(str(error)) from None


def _utc_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return naive_utc(datetime.fromisoformat(value))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-11-20T13:00:00Z"
        ) from None
