"""Assets: raw loads per stream, the dbt project, lake compaction and the published snapshot."""

import warnings

import dagster as dg

# BackfillPolicy is flagged beta; we use it on purpose (a backfill is one wide run) and do not want
# the warning on every `loom run` and code-server start. Set here, before any asset is declared.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
