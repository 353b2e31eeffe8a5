"""Every use of Dagster's internals (``dagster._…``), in one place, for the pinned dagster 1.13.27.

Each name below is what Dagster itself uses but does not export; a test
(tests/dagster_project/test_framework_workarounds.py) fails when the pin moves, naming what to
check again. Why each is here:

* ``partition_range_tags``: a run over a range of hourly partitions (a backfill run, a
  micro-batch across the hour's turn) is asked for with two tags; ``RunRequest`` reads them but
  Dagster exports their names only from ``dagster._core.storage.tags``; ``partitions_of_run``
  reads them back (with the single partition's tag) for the pipeline's alerts.
* ``RunLauncher``, ``LaunchRunContext``, ``CheckRunHealthResult``, ``WorkerStatus``,
  ``ConfigurableClass``, ``ConfigurableClassData``: the base classes and types a custom run
  launcher implements (Dagster documents custom launchers configured in dagster.yaml, and its own
  Docker and Kubernetes launchers import the same names).
* ``execute_run_in_this_process``: what ``dagster api execute_run`` does for one run, called in
  the warm run worker (dagster_project/run_worker.py) instead of a new interpreter per run: a
  micro-batch's fixed cost fell from ~8 s to ~3 s (docs/benchmarks.md, "Freshness").
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

if TYPE_CHECKING:
    from dagster import DagsterInstance

PINNED_DAGSTER = "1.13.27"


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
