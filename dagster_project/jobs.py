"""The hourly pipeline job: every asset of the project for one received hour, with the checks
an hour evaluates: the raw loads' quarantine checks and the dbt tests tagged ``hourly``. The other
dbt tests are left to the daily ``data_tests`` job; a run plans (and Dagster records) only the
checks it runs."""

from __future__ import annotations

import dagster as dg

from dagster_project.assets.dbt import HOURLY_CHECKS
from dagster_project.assets.raw import raw_assets
from dagster_project.instance import WRITER_TAG
from dagster_project.resources import WAREHOUSE_POOL

HOURLY_JOB = "hourly_pipeline"
WRITER_TAGS = {WRITER_TAG: WAREHOUSE_POOL}

hourly_pipeline = dg.define_asset_job(
    HOURLY_JOB,
    selection=dg.AssetSelection.all().without_checks()
    | dg.AssetSelection.checks_for_assets(*raw_assets)
    | dg.AssetSelection.checks(*HOURLY_CHECKS),
    tags=WRITER_TAGS,
    description="Load one received hour into raw.*, build the dbt marts for it, publish them.",
)
