"""The analysts' entry point: ``loom sql`` on the published snapshot, and the same lake attached
from a plain DuckDB client with the statements ``loom sql --print-attach`` prints."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import duckdb
import orjson

from tests.ingest_api.read.utils.sql_shell import invoke, loom_sql
from tests.ingest_api.read.utils.warehouse import Built
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.published import kept_publishes_of, publish

# The documented analysts' query (with the warehouse's catalog name), plus a tie-break.
SEED_QUERY = (
    "SELECT event, properties->>'currency' AS currency, COUNT(*) AS total"
    " FROM warehouse.analytics.events GROUP BY ALL ORDER BY total DESC, event"
)
EXPECTED = [
    ("$pageview", None, 6),
    ("$identify", None, 1),  # identity operations are events, as in PostHog
    ("$set", None, 1),
    ("button_clicked", None, 1),
    ("checkout_completed", "EUR", 1),
]
# Spec 001's reference query exactly as the spec writes it (its own catalog name, no tie-break).
SPEC_QUERY = """SELECT
  event,
  properties->>'currency' AS currency,
  COUNT(*) AS total
FROM altertable.analytics.events
GROUP BY ALL
ORDER BY total DESC;"""


def test_the_seed_query_runs_as_written(built: Built) -> None:
    output = loom_sql(built.layout, "-c", SEED_QUERY, "--csv")

    header, *rows = list(csv.reader(io.StringIO(output)))
    assert header == ["event", "currency", "total"]
    assert [(event, currency or None, int(total)) for event, currency, total in rows] == EXPECTED


def test_json_output_is_one_object_per_row(built: Built) -> None:
    output = loom_sql(built.layout, "-c", SEED_QUERY, "--json")

    rows = [orjson.loads(line) for line in output.splitlines()]
    assert [(row["event"], row["currency"], row["total"]) for row in rows] == EXPECTED


def test_the_shell_runs_statements_until_quit(built: Built) -> None:
    output = invoke(
        built.layout,
        stdin="select count(*) as events\nfrom analytics.events;\nselect 1 +;\n.quit\nselect 2;\n",
    ).output  # stdout and stderr

    assert "events" in output and re.search(r"│\s+10\s+│", output)
    assert "Error: Parser Error" in output  # a bad statement is reported, the shell goes on
    assert "│ 2 │" not in output  # nothing runs after .quit


def test_it_says_which_snapshot_and_data_time_it_reads_on_stderr(copy_of_built: Layout) -> None:
    with connect_pipeline(copy_of_built) as con:
        snapshot = publish(con, data_as_of=datetime(2026, 11, 20, 13, 16, 30))
    newest = kept_publishes_of(copy_of_built).newest()
    assert newest is not None and newest.snapshot_id == snapshot
    said = (
        f"published snapshot {snapshot} (published {newest.published_at:%Y-%m-%d %H:%M:%S} UTC;"
        " data as of 2026-11-20 13:16:30 UTC)"
    )

    result = invoke(copy_of_built, "-c", "select 42 as answer", "--csv")

    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == ("answer\n42\n", said + "\n")
    assert loom_sql(copy_of_built, "--print-attach").splitlines()[0] == f"-- {said}"


def test_any_duckdb_client_attaches_the_same_snapshot(built: Built) -> None:
    statements = loom_sql(built.layout, "--print-attach")

    code = "\n".join(line for line in statements.splitlines() if not line.startswith("--"))
    with duckdb.connect() as client:  # a plain DuckDB, as an analyst's notebook would have
        for statement in code.split(";"):
            if statement.strip():
                client.execute(statement)
        assert client.execute(SEED_QUERY).fetchall() == EXPECTED
        assert sorted(client.execute(SPEC_QUERY).fetchall()) == sorted(EXPECTED)


def test_the_specs_query_runs_as_the_spec_writes_it(built: Built) -> None:
    output = loom_sql(built.layout, "-c", SPEC_QUERY, "--csv")

    header, *rows = list(csv.reader(io.StringIO(output)))
    assert header == ["event", "currency", "total"]
    assert sorted((event, currency or None, int(total)) for event, currency, total in rows) == (
        sorted(EXPECTED)
    )


def csv_lines(layout: Layout, query: str) -> list[str]:
    return loom_sql(layout, "-c", query, "--csv").splitlines()


def test_the_specs_catalog_is_the_same_snapshot_read_only(built: Built) -> None:
    same = csv_lines(
        built.layout,
        "SELECT (SELECT count(*) FROM altertable.analytics.events)"
        " = (SELECT count(*) FROM warehouse.analytics.events) AS same",
    )
    written = invoke(built.layout, "-c", "CREATE TABLE altertable.analytics.mine (a INT)")

    assert same == ["same", "True"]
    assert written.exit_code == 1
    assert "read-only mode" in written.output


def test_the_events_view_has_the_name_as_sent(experiment_built: Built) -> None:
    lines = csv_lines(
        experiment_built.layout,
        "SELECT event_display_name, count(*) AS total FROM analytics.events"
        " WHERE event = 'purchase_completed' GROUP BY ALL ORDER BY ALL",
    )

    # four purchases were sent as `Purchase Completed`, two natively
    assert lines == ["event_display_name,total", "Purchase Completed,4", ",2"]


def test_a_query_scoped_to_one_org_sees_only_its_rows(built: Built) -> None:
    """What the README shows: `loom sql` sees every org, `org_id` scopes a query."""
    org_b = built.tenants.org_b
    lines = csv_lines(
        built.layout, f"SELECT distinct_id, event FROM analytics.events WHERE org_id = '{org_b}'"
    )

    assert lines == ["distinct_id,event", "alice,$pageview"]


def test_before_anything_is_published_it_says_so(layout: Layout) -> None:
    result = invoke(layout, "-c", "select 1")

    assert result.exit_code == 1
    assert "nothing is published yet" in result.output
