"""Dagster definitions of the Loom pipeline: ``dagster dev -m dagster_project``."""

import warnings

import dagster as dg

# BackfillPolicy is flagged beta; we use it on purpose (a backfill is one wide run) and do not want
# the warning on every `loom run` and code-server start.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

from dagster_project.definitions import defs  # noqa: E402

__all__ = ["defs"]
