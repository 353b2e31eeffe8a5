"""Why stored text holds no NUL (warehouse/streams.py): DuckDB pushes a join's build-side keys into
the lake table's scan, and DuckLake 1.5.5 writes each such constant as a literal into the SQL it
sends its catalog database to prune files by their statistics, where a NUL ends the text early.
This pins that behaviour: when DuckLake handles it (upstream fixed it after 1.5, commit ffdb3bed,
by skipping such constants), this test fails and says the guard may be relaxed."""

from __future__ import annotations

import duckdb

from warehouse.duck import connect_pipeline
from warehouse.layout import Layout

GUARD_MAY_GO = (
    "DuckLake now prunes by a filter constant holding a NUL without failing (upstream commit "
    "ffdb3bed): the control-character guard on stored text (TEXT_PATTERN in "
    "warehouse/streams.py, the API's 400 and the raw load's quarantine) may be relaxed to NUL-free "
    "rules or dropped; then delete this test."
)


def test_a_nul_in_a_join_key_fails_the_lake_scan(layout: Layout) -> None:
    con = connect_pipeline(layout)
    con.execute("CREATE TABLE people (distinct_id VARCHAR)")
    con.execute("INSERT INTO people VALUES ('a'), ('b')")
    con.execute("CREATE TEMP TABLE sightings AS SELECT 'a' || chr(0) || 'b' AS distinct_id")

    try:
        con.execute("SELECT count(*) FROM people JOIN sightings USING (distinct_id)").fetchall()
    except duckdb.ParserException as error:
        assert "Failed to get data file list from DuckLake" in str(error)
    else:
        raise AssertionError(GUARD_MAY_GO)
