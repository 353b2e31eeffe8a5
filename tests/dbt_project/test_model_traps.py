"""Traps a model change could fall into without a failing test:

* a merged model (``incremental_strategy='merge'`` with ``merge_update_set_expressions``) that
  gains a column but not its expression: dbt-duckdb's merge then overwrites the column with
  whichever copy runs last, and the result depends on the order windows run in;
* a view or table function that reads the run's window vars: hourly builds leave definitions
  out once the project's digest is recorded (warehouse.dbt.DEFINITIONS), so it would stay frozen
  at the window that first built it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dbt_project.utils.warehouse import query
from warehouse import dbt
from warehouse.layout import Layout

pytestmark = pytest.mark.slow

WINDOWS = [
    {"window_start": "2026-01-18 09:00:00", "window_end": "2026-01-18 10:00:00"},
    {"window_start": "2026-03-01 00:00:00", "window_end": "2026-03-02 00:00:00"},
]


def _manifest() -> dict:
    dbt.parsed_manifest()  # parsed when the project changed
    return json.loads((dbt.PARSE_TARGET / "manifest.json").read_bytes())


def test_every_column_of_a_merged_model_says_which_copy_wins(built: Layout) -> None:
    merged = [
        node
        for node in _manifest()["nodes"].values()
        if node["resource_type"] == "model" and node["config"].get("merge_update_set_expressions")
    ]
    assert {node["name"] for node in merged} >= {"fct_events", "fct_session_aggregates"}
    for node in merged:
        columns = {
            name
            for (name,) in query(
                built,
                "select column_name from duckdb_columns() where database_name = 'warehouse'"
                " and schema_name = ? and table_name = ?",
                [node["schema"], node["alias"]],
            )
        }
        keys = set(node["config"]["unique_key"])
        expressions = set(node["config"]["merge_update_set_expressions"])
        assert columns, node["name"]
        missing = sorted(columns - keys - expressions)
        assert expressions == columns - keys, (
            f"{node['name']}: every column but the unique key needs an update expression "
            f"(earliest_copy_wins(...), or always=[...]); missing {missing}"
        )


def test_views_and_table_functions_do_not_depend_on_the_run_window(tmp_path: Path) -> None:
    compiled = []
    for number, window in enumerate(WINDOWS):
        target = tmp_path / f"target-{number}"
        dbt.run_dbt(
            # the definitions alone: data tests on them run with every window, as they should
            ["compile", "--select", dbt.DEFINITIONS, "--indirect-selection", "empty"],
            layout=Layout(tmp_path / "data"),
            vars=window, target_path=target,
        )  # fmt: skip
        compiled.append(
            {
                path.relative_to(target): path.read_text()
                for path in target.rglob("compiled/**/*.sql")
            }
        )
    assert len(compiled[0]) >= 10 and compiled[0].keys() == compiled[1].keys()
    changed = [str(path) for path in compiled[0] if compiled[0][path] != compiled[1][path]]
    assert changed == [], (
        "these definitions change with the run's window, but hourly builds leave definitions "
        f"out once built (warehouse.dbt.DEFINITIONS): {changed}"
    )
