"""The pipeline run hour by hour in order, shared by the tests that only read its result."""

from __future__ import annotations

from dataclasses import dataclass

from tests.dagster_project.utils.pipeline import PipelineWarehouse


@dataclass
class InOrder:
    warehouse: PipelineWarehouse
    first_runs: list
    after_h1: dict
    after_h1_again: dict
    after_h2: dict
    loom_run_output: str
