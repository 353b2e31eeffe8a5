"""A window reads its own rows, not its hour's: the `in_window` filter on a staging view reaches
the raw table's scan. An operator between them that needs every row of the hour (a dedup ranking
the copies of each record per received hour, as the staging views once did) would make every
micro-batch read and rank its whole hour so far (docs/benchmarks.md, "Freshness")."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from tests.dbt_project.utils.warehouse import query
from warehouse import dbt
from warehouse.duck import connect_reader
from warehouse.layout import Layout

# Half of a received hour of the scenario: its first half holds rows of every stream but the
# session aggregates (which it has none of).
WINDOW = (datetime(2026, 1, 18, 10, 30), datetime(2026, 1, 18, 11))
STAGED = {
    "events": "stg_events",
    "identities": "stg_identities",
    "sessions": "stg_sessions",
    "session_aggregates": "stg_session_aggregates",
    "ingestion_warnings": "stg_ingestion_warnings",
}
# How a model reads a window of a staging view (int_window_session_records, fct_events, ...).
WINDOW_READ = " union all ".join(
    f"select '{stream}', uuid from {{{{ ref('{view}') }}}}"
    " where {{ in_window('received_at', 'received_hour') }}"
    for stream, view in STAGED.items()
)


def raw_rows_scanned(layout: Layout, sql: str) -> dict[str, int]:
    """Rows each raw table's scan passed on to the rest of ``sql``'s plan, run."""
    with connect_reader(layout) as con:
        [(_, plan)] = con.execute(f"explain (analyze, format json) {sql}").fetchall()
    scanned: dict[str, int] = {}
    nodes = [json.loads(plan)]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("children", []))
        if node.get("operator_name") == "DUCKLAKE_SCAN":
            table = node["extra_info"]["Table"]
            scanned[table] = scanned.get(table, 0) + node["operator_cardinality"]
    return scanned


def test_a_window_read_of_a_staging_view_scans_only_the_window(
    built: Layout, dbt_target: Path
) -> None:
    compiled = dbt.run_dbt(
        ["compile", "--inline", WINDOW_READ],
        layout=built,
        vars=dbt.window_vars(*WINDOW),
        target_path=dbt_target,
    )
    sql = compiled.result.results[0].node.compiled_code
    counts = "count(*) filter (where received_at >= ? and received_at < ?), count(*)"
    in_window, in_hour = {}, {}
    for stream in STAGED:
        [(in_window[stream], in_hour[stream])] = query(
            built,
            f"select {counts} from raw.{stream} where _received_hour = ?",
            [*WINDOW, WINDOW[0].replace(minute=0)],
        )
    # Not a test unless the hour holds rows before the window
    assert all(in_hour[stream] > in_window[stream] for stream in STAGED if in_hour[stream])
    assert sum(in_hour.values()) > 2000

    assert raw_rows_scanned(built, sql) == in_window
