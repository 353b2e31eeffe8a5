"""Every use of Dagster's and dagster-dbt's internals, in one place: WORKAROUNDS written for
dagster 1.13.27 and dagster-dbt 0.29.27 (tests/test_workaround_pins.py fails when either moves,
naming what to check again; it also fails on such an import anywhere else but
``event_storage.py``, marked below).

Each name below is what Dagster or dagster-dbt itself uses but does not export. Why each is here:

* ``partition_range_tags``: a run over a range of hourly partitions (a backfill run, a
  micro-batch across the hour's turn) is asked for with two tags; ``RunRequest`` reads them but
  Dagster exports their names only from ``dagster._core.storage.tags``; ``partitions_of_run``
  reads them back (with the single partition's tag) for the pipeline's alerts.
* ``RunLauncher``, ``LaunchRunContext``, ``CheckRunHealthResult``, ``WorkerStatus``,
  ``ConfigurableClass``, ``ConfigurableClassData``: the base classes and types a custom run
  launcher implements (Dagster documents custom launchers configured in dagster.yaml, and its own
  Docker and Kubernetes launchers import the same names).
* ``execute_run_in_this_process``: what ``dagster api execute_run`` does for one run, called in
  the warm run worker (dagster_project/run_worker.py) instead of a new interpreter per run, so a
  micro-batch pays no imports: a one-event micro-batch's run takes 2.1 s, 0.09 of a quiet hour's
  ``loom run`` (bench/results/freshness.md).
* ``DbtCoreCliEventMessage``, ``get_asset_check_key_for_test``,
  ``get_updated_cli_invocation_params_for_context``, ``DBT_INDIRECT_SELECTION_ENV``: what
  dagster-dbt's ``DbtCliResource.cli`` does with a dbt child process, done with dbt run in the
  step's own process (dagster_project/assets/dbt.py): no interpreter start and no parse per run
  (the manifest parsed once, warehouse/dbt.py), a killed run takes its dbt along.
* ``event_storage.py`` (a module of its own, subclassing ``SqliteEventLogStorage``): a batch of a
  run's materializations stored in one transaction, through engines kept open. A 30-day backfill
  took 309 s with Dagster's storage, 60 s with this one; a quiet hour 18.7 s -> 12.9 s with it
  and the lake's statistics fix (docs/benchmarks.md, "Hourly runs and backfills").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dagster._core.launcher import (  # noqa: F401 - re-exported for run_launcher.py
    CheckRunHealthResult,
    LaunchRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from dagster._serdes import (  # noqa: F401 - re-exported for run_launcher.py
    ConfigurableClass,
    ConfigurableClassData,
)
from dagster_dbt.asset_utils import (  # noqa: F401 - re-exported for assets/dbt.py
    DBT_INDIRECT_SELECTION_ENV,
    get_asset_check_key_for_test,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage  # noqa: F401 - for assets/dbt.py

if TYPE_CHECKING:
    from dagster import DagsterInstance


def partition_range_tags(first_key: str, last_key: str) -> dict[str, str]:
    """Tags of a run over the partitions ``first_key``..``last_key`` (inclusive)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first_key, ASSET_PARTITION_RANGE_END_TAG: last_key}


def partitions_of_run(tags: Mapping[str, str]) -> str | None:
    """The partition a run was asked for, or its range as ``first..last``; None for neither."""
    first, last = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    return tags.get(PARTITION_NAME_TAG) or (f"{first}..{last}" if first and last else None)


def execute_run_in_this_process(run_id: str, instance: DagsterInstance) -> None:
    """Execute a launched run here, as ``dagster api execute_run`` does in a new process:
    its events go to the instance, a failure is recorded as the run's, and an interrupt
    (SIGINT, SIGTERM) cancels it."""
    from dagster._cli.api import _execute_run_command_body
    from dagster._utils.interrupts import capture_interrupts

    with capture_interrupts():
        _execute_run_command_body(
            run_id, instance, write_stream_fn=lambda _event: None, set_exit_code_on_failure=False
        )
