"""Running the dbt project (``dbt_project/``) for Dagster, the tests, the benchmarks and the CLI.

dbt finds its project, its profile and the warehouse file through environment variables that
:func:`dbt_env` sets (``DBT_PROJECT_DIR``, ``DBT_PROFILES_DIR``, an absolute ``LOOM_DATA_DIR``),
so it behaves the same from any working directory. :func:`run_dbt` runs dbt in-process through
``dbtRunner`` (no interpreter start-up per call, which is what keeps the tests fast);
``loom dbt …`` is a passthrough to it: ``loom dbt build``, ``loom dbt docs generate``,
``loom dbt run-operation prune_sessions --args '{days: 30}'``.

A run is driven by a received-time window passed as dbt vars (:func:`window_vars`); without one
it processes every raw record.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from warehouse.duck import connect_pipeline
from warehouse.layout import STREAMS, Layout
from warehouse.raw_load import ensure_raw_table

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
PROFILES_DIR = PROJECT_DIR
WINDOW_VAR_FORMAT = "%Y-%m-%d %H:%M:%S"
# The namespace of person ids; the dbt macro `person_uuid` uses the same bytes.
PERSON_NAMESPACE = uuid.UUID("d0c017c8-e238-539a-8891-518496f1c1c2")


class DbtRunError(RuntimeError):
    """A dbt invocation failed; the message lists the nodes that errored or failed."""


def person_uuid(org_id: str, distinct_id: str) -> str:
    """The person_id of the person founded by ``distinct_id``: the UUIDv5 the models compute."""
    return str(uuid.uuid5(PERSON_NAMESPACE, f"{org_id}:{distinct_id}"))


def window_vars(start: datetime, end: datetime) -> dict[str, str]:
    """The dbt vars of the received-time window ``[start, end)``, naive UTC (aware input is
    converted)."""
    start, end = _naive_utc(start), _naive_utc(end)
    if start >= end:
        raise ValueError(f"window start {start} must be before its end {end}")
    return {
        "window_start": start.strftime(WINDOW_VAR_FORMAT),
        "window_end": end.strftime(WINDOW_VAR_FORMAT),
    }


def dbt_env(layout: Layout) -> dict[str, str]:
    """The environment variables a dbt process (or dbtRunner call) for ``layout`` needs."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if venv_bin not in path.split(os.pathsep):
        path = os.pathsep.join([venv_bin, path]) if path else venv_bin
    return {
        "LOOM_DATA_DIR": str(layout.data_dir.resolve()),
        # Empty means "the default under the data directory" (warehouse.layout.Layout.lake), so
        # a lake placed explicitly elsewhere in this process's environment is not picked up.
        "LOOM_LAKE_CATALOG": layout.lake_catalog or "",
        "LOOM_LAKE_DATA_PATH": layout.lake_data_path or "",
        "DBT_PROJECT_DIR": str(PROJECT_DIR),
        "DBT_PROFILES_DIR": str(PROFILES_DIR),
        "PATH": path,
    }


def prepare_warehouse(layout: Layout) -> None:
    """Create the empty raw tables dbt's sources point at, so a fresh lake builds."""
    con = connect_pipeline(layout)
    try:
        for stream in STREAMS:
            ensure_raw_table(con, stream)
    finally:
        con.close()


def run_dbt(
    args: Sequence[str],
    *,
    layout: Layout | None = None,
    vars: Mapping[str, object] | None = None,
    target_path: Path | None = None,
    quiet: bool = True,
    check: bool = True,
) -> dbtRunnerResult:
    """Run ``dbt <args>`` in-process against ``layout``'s warehouse; returns dbt's result.

    ``target_path`` keeps manifests and compiled SQL apart from other runs (tests use their own);
    with ``check`` a failed invocation raises :class:`DbtRunError`.
    """
    from dbt.cli.main import dbtRunner  # imported lazily: importing dbt takes seconds

    layout = layout or Layout.from_settings()
    invocation = [*(["--quiet"] if quiet else []), *args]
    if vars:
        invocation += ["--vars", json.dumps(dict(vars))]
    env = dbt_env(layout)
    if target_path is not None:
        env["DBT_TARGET_PATH"] = str(target_path)
        env["DBT_LOG_PATH"] = str(target_path / "logs")
    with _environment(env):
        try:
            result = dbtRunner().invoke(invocation)
        finally:
            _close_dbt_connection()
    if check and not result.success:
        raise DbtRunError(_failure_message(args, result))
    return result


def build(
    layout: Layout | None = None,
    *,
    window: tuple[datetime, datetime] | None = None,
    select: str | None = None,
    exclude: str | None = None,
    target_path: Path | None = None,
) -> dbtRunnerResult:
    """``dbt build`` (models, data tests and unit tests) for one window, or everything."""
    layout = layout or Layout.from_settings()
    prepare_warehouse(layout)
    args = [
        "build",
        *(["--select", select] if select else []),
        *(["--exclude", exclude] if exclude else []),
    ]
    return run_dbt(
        args,
        layout=layout,
        vars=window_vars(*window) if window else None,
        target_path=target_path,
    )


@click.command(
    "dbt",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt(args: tuple[str, ...]) -> None:
    """Run dbt on the Loom project and warehouse: ``loom dbt build``, ``loom dbt docs generate``."""
    layout = Layout.from_settings()
    prepare_warehouse(layout)
    result = run_dbt(args, layout=layout, quiet=False, check=False)
    sys.exit(0 if result.success else 1)


def _close_dbt_connection() -> None:
    # dbt-duckdb keeps its DuckDB connection open between in-process invocations (its `keep_open`
    # default). Close it once the invocation is over: the next invocation may be for another lake
    # (the tests build several), and an idle attach would hold the catalog open.
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
        DuckDBConnectionManager.close_all_connections()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _failure_message(args: Sequence[str], result: dbtRunnerResult) -> str:
    lines = [f"dbt {' '.join(args)} failed"]
    if result.exception is not None:
        lines.append(str(result.exception))
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in {"error", "fail", "runtime error"}:
            node = getattr(node_result, "node", None)  # run-operation results have none
            where = node.unique_id if node is not None else " ".join(args)
            lines.append(f"{where}: {node_result.message}")
    return "\n".join(lines)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
