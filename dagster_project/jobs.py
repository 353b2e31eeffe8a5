"""The hourly pipeline job: every asset of the project for one received hour."""

from __future__ import annotations

import dagster as dg

from dagster_project.instance import WRITER_TAG
from dagster_project.resources import WAREHOUSE_POOL

HOURLY_JOB = "hourly_pipeline"
WRITER_TAGS = {WRITER_TAG: WAREHOUSE_POOL}

hourly_pipeline = dg.define_asset_job(
    HOURLY_JOB,
    selection=dg.AssetSelection.all(),
    tags=WRITER_TAGS,
    description="Load one received hour into raw.*, build the dbt marts for it, publish them.",
)
