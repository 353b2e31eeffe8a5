"""The dbt project as dagster-dbt sees it: its manifest, parsed in-process by warehouse.dbt."""

from __future__ import annotations

from pathlib import Path

from dagster_dbt import DbtProject

from warehouse.dbt import PARSE_TARGET, PROJECT_DIR, parsed_manifest, project_mtime

# The manifest the pipeline runs from is the one the assets are defined with.
dbt_project = DbtProject(project_dir=PROJECT_DIR, target_path=PARSE_TARGET.relative_to(PROJECT_DIR))


def prepare_manifest() -> Path:
    """Parse the project when its manifest is missing or older than its files: a fresh clone or
    an edited model. (dagster-dbt's `prepare_if_dev` reparses on every load under `dagster dev`;
    the staleness check gives the same freshness without a parse per code-server start.)"""
    manifest = dbt_project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < project_mtime():
        parsed_manifest()
    return manifest
