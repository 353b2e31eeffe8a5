"""Running the dbt project (``dbt_project/``) for Dagster, the tests, the benchmarks and the CLI.

dbt finds its project, its profile and the warehouse file through environment variables that
:func:`dbt_env` sets (``DBT_PROJECT_DIR``, ``DBT_PROFILES_DIR``, an absolute ``LOOM_DATA_DIR``),
so it behaves the same from any working directory. :func:`run_dbt` runs dbt in-process through
``dbtRunner``, the pipeline's runs included; ``loom dbt …`` is a passthrough to it: ``loom dbt
build``, ``loom dbt docs generate``, ``loom dbt run-operation prune_sessions --args '{days: 30}'``
(which, like a pipeline run, publishes the lake's snapshot when it succeeds).

A run is driven by a received-time window passed as dbt vars (:func:`window_vars`); without one
it processes every raw record (the incremental design: docs/warehouse-models.md). Parsing the
project is slow, and dbt parses it again whenever the vars change, that is every hour. The
window only matters when the models are compiled, after parsing, so the project is parsed once
without vars (:func:`parsed_manifest`, kept on disk for the next process until a project file
changes) and every invocation that runs nodes starts from a copy of that manifest: no parse, and
no interpreter start-up, per hourly run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import duckdb

from warehouse.dbt_workarounds import close_dbt_connection, pickled_manifest, unpickled_manifest
from warehouse.duck import connect_pipeline
from warehouse.layout import LAKE_ALIAS, Layout, naive_utc
from warehouse.published import latest_published, publish
from warehouse.raw_load import ensure_raw_tables, newest_built
from warehouse.settings import environment as settings_environment

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult
    from dbt.contracts.graph.manifest import Manifest
    from dbt_common.events.base_types import EventMsg

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
PROFILES_DIR = PROJECT_DIR
PROJECT_INPUTS = ("models", "macros", "tests", "analyses", "seeds", "snapshots")
# Where the once-per-process parse writes: its partial-parse file makes the next process's parse
# quick too.
PARSE_TARGET = PROJECT_DIR / "target" / "loom-parse"
# Commands that run nodes of an already parsed project (the others parse, or need no project).
RUNS_PARSED_PROJECT = frozenset(
    {"build", "run", "test", "seed", "snapshot", "compile", "show", "run-operation", "ls", "list"}
)
WINDOW_VAR_FORMAT = "%Y-%m-%d %H:%M:%S"
# Unit tests check the models' logic, not the hour's data: `make dbt-build` runs them, the hourly
# build does not. Of the data tests, the hourly build runs those tagged `hourly`, over the rows
# the window touched (macros/lake_workarounds/windowed_data_tests.sql); the daily `data_tests`
# job runs them all. Its manifest.json and run_results.json would be written only to be deleted
# with the run's target: Dagster records each node's result from dbt's events instead.
HOURLY_BUILD = ("build", "--no-write-json", "--exclude-resource-type", "unit_test")
HOURLY_SELECTION = ("--select", "resource_type:model tag:hourly", "--indirect-selection", "empty")
# A micro-batch builds the same models and leaves the tests to the closed hour's run.
MODELS_SELECTION = ("--select", "resource_type:model", "--indirect-selection", "empty")
# Views and table macros hold definitions, not rows: they change with the project, not with the
# hour. Each checks on its own that the lake holds what it would create
# (macros/lake_workarounds/unchanged_definitions.sql); an hourly build skips them while the lake
# records that they were built from the project as it is (:func:`definitions_current`).
DEFINITION_MATERIALIZATIONS = ("view", "table_function")
DEFINITIONS = " ".join(f"config.materialized:{name}" for name in DEFINITION_MATERIALIZATIONS)
DEFINITIONS_TABLE = f"{LAKE_ALIAS}.ops.built_definitions"
# Run-operations that change the marts readers see. Readers attach the published snapshot, so
# each publishes the lake's snapshot when it succeeds, as a pipeline run does: its change is
# visible at once, not only after the next run.
PUBLISHING_OPERATIONS = frozenset({"prune_sessions"})
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
    start, end = naive_utc(start), naive_utc(end)
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
    with connect_pipeline(layout) as con:
        ensure_raw_tables(con)


def run_dbt(
    args: Sequence[str],
    *,
    layout: Layout | None = None,
    vars: Mapping[str, object] | None = None,
    target_path: Path | None = None,
    quiet: bool = True,
    check: bool = True,
    callbacks: Sequence[Callable[[EventMsg], None]] = (),
    env: Mapping[str, str] | None = None,
) -> dbtRunnerResult:
    """Run ``dbt <args>`` in-process against ``layout``'s warehouse; returns dbt's result.

    ``target_path`` keeps compiled SQL and run results apart from other runs (tests use their
    own); ``callbacks`` receive dbt's structured events as they happen; ``env`` adds to the
    environment dbt sees. With ``check`` a failed invocation raises :class:`DbtRunError`.
    """
    from dbt.cli.main import dbtRunner  # imported lazily: importing dbt takes seconds

    layout = layout or Layout.from_settings()
    invocation = [*(["--quiet"] if quiet else []), *args]
    if vars:
        invocation += ["--vars", json.dumps(dict(vars))]
    environment = {**dbt_env(layout), **(env or {})}
    if target_path is not None:
        environment["DBT_TARGET_PATH"] = str(target_path)
        environment["DBT_LOG_PATH"] = str(target_path / "logs")
    command = next((arg for arg in args if not arg.startswith("-")), None)
    manifest = parsed_manifest() if command in RUNS_PARSED_PROJECT else None
    with settings_environment(environment):
        try:
            result = dbtRunner(manifest=manifest, callbacks=list(callbacks)).invoke(invocation)
        finally:
            close_dbt_connection()
    if check and not result.success:
        raise DbtRunError(failure_message(args, result))
    if result.success and _publishing_operation(args):
        publish_if_published_before(layout)
    return result


def _publishing_operation(args: Sequence[str]) -> bool:
    command, operation, *_ = [arg for arg in args if not arg.startswith("-")] + [None, None]
    return command == "run-operation" and operation in PUBLISHING_OPERATIONS


def publish_if_published_before(layout: Layout) -> int | None:
    """Publish the lake's snapshot, unless the pipeline never has: an operation on a lake no run
    has completed on must not be the first state readers attach. The snapshot id, or None."""
    with connect_pipeline(layout) as con:
        if latest_published(con) is None:
            return None
        # An operation changes marts, not which records they hold.
        return publish(con, newest_built(con))


_parsed: tuple[float, bytes] | None = None  # (newest project file's mtime, pickled manifest)
PICKLED_MANIFEST = PARSE_TARGET / "manifest.pickle"


def parsed_manifest() -> Manifest:
    """The project parsed without vars, once per process (again when a project file changes): a
    fresh copy each call, since running nodes marks them compiled in the manifest it is given.

    The parsed manifest is also kept on disk, pickled, for the next process (every `loom run` is
    one): loading it is much quicker than dbt's parse, even a partial one. Parsing reads no data,
    so it runs against a stand-in data directory: dbt keys its partial parse file on the rendered
    profile, which names the data directory, and with the real one every process working on
    another data directory would parse the whole project again."""
    global _parsed
    stamp = project_mtime()
    if _parsed is None or _parsed[0] != stamp:
        _parsed = (stamp, _pickled_manifest(stamp))
    return unpickled_manifest(_parsed[1])


def _pickled_manifest(stamp: float) -> bytes:
    """The pickled manifest of the project as of ``stamp``: from disk when it was parsed by this
    dbt and Python, else parsed now (and stored)."""
    from dbt.cli.main import dbtRunner
    from dbt.version import __version__ as dbt_version

    key = f"{stamp!r} dbt {dbt_version} python {sys.version}".encode()
    PARSE_TARGET.mkdir(parents=True, exist_ok=True)
    # One process parses at a time (they would write the same files); the others then load it.
    with open(PARSE_TARGET / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if PICKLED_MANIFEST.exists() and (PARSE_TARGET / "manifest.json").exists():
            stored_key, _, stored = PICKLED_MANIFEST.read_bytes().partition(b"\n")
            if stored_key == key:
                return stored
        environment = {**dbt_env(Layout(PARSE_TARGET)), "DBT_TARGET_PATH": str(PARSE_TARGET)}
        environment["DBT_LOG_PATH"] = str(PARSE_TARGET / "logs")
        with settings_environment(environment):
            result = dbtRunner().invoke(["--quiet", "parse"])
        if not result.success:
            raise DbtRunError(failure_message(["parse"], result))
        manifest = result.result
        pickled = pickled_manifest(manifest)
        scratch = PICKLED_MANIFEST.with_suffix(".tmp")
        scratch.write_bytes(key + b"\n" + pickled)
        os.replace(scratch, PICKLED_MANIFEST)
        return pickled


def project_version() -> str:
    """A digest of the dbt project's files, which the lake's views and table macros come from."""
    digest = hashlib.sha256()
    for path in sorted(_project_files()):
        digest.update(f"{path.relative_to(PROJECT_DIR)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def definitions_current(con: duckdb.DuckDBPyConnection, version: str) -> bool:
    """Whether the lake's views and table macros were built from project ``version``."""
    try:
        [(built,)] = con.execute(
            f"SELECT count(*) FROM {DEFINITIONS_TABLE} WHERE project_version = ?", [version]
        ).fetchall()
    except duckdb.CatalogException:  # no build has recorded its definitions yet
        return False
    return built > 0


def record_definitions(con: duckdb.DuckDBPyConnection, version: str) -> None:
    """Record that a build that succeeded created the definitions of project ``version``."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {DEFINITIONS_TABLE}"
        " (project_version VARCHAR NOT NULL, built_at TIMESTAMP NOT NULL)"
    )
    con.execute(
        f"INSERT INTO {DEFINITIONS_TABLE} VALUES (?, ?)", [version, naive_utc(datetime.now(UTC))]
    )


def project_mtime() -> float:
    """When a file of the dbt project last changed."""
    return max(path.stat().st_mtime for path in _project_files())


def _project_files() -> list[Path]:
    files = [PROJECT_DIR / "dbt_project.yml", PROJECT_DIR / "profiles.yml"] + [
        path for folder in PROJECT_INPUTS for path in (PROJECT_DIR / folder).rglob("*")
    ]
    return [path for path in files if path.is_file()]


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


def failure_message(args: Sequence[str], result: dbtRunnerResult) -> str:
    lines = [f"dbt {' '.join(args)} failed"]
    if result.exception is not None:
        lines.append(str(result.exception))
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in {"error", "fail", "runtime error"}:
            node = getattr(node_result, "node", None)  # run-operation results have none
            where = node.unique_id if node is not None else " ".join(args)
            lines.append(f"{where}: {node_result.message}")
    return "\n".join(lines)
