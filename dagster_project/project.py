"""The dbt project as dagster-dbt sees it, and the environment dbt runs in (warehouse.dbt)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtProject

from warehouse.dbt import PROJECT_DIR, dbt_env
from warehouse.layout import Layout

# The venv's dbt, whether or not the venv is on PATH (tests run `.venv/bin/pytest` directly),
# through the launcher that makes it die with the pipeline process (warehouse/dbt_launcher.py).
DBT_EXECUTABLE = str(Path(sys.executable).with_name("loom-dbt"))
MANIFEST_INPUTS = ("models", "macros", "tests", "analyses", "seeds", "snapshots")

dbt_project = DbtProject(project_dir=PROJECT_DIR)


@contextmanager
def dbt_environment(layout: Layout) -> Iterator[None]:
    """``warehouse.dbt.dbt_env`` for as long as dbt is being started: dagster-dbt hands this
    process's environment to dbt, and its manifest preparer looks for ``dbt`` on PATH."""
    overrides = dbt_env(layout)
    previous = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def manifest_is_stale(project: DbtProject) -> bool:
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    inputs = [project.project_dir / "dbt_project.yml"] + [
        path
        for folder in MANIFEST_INPUTS
        for path in (project.project_dir / folder).rglob("*")
        if path.is_file()
    ]
    return any(path.stat().st_mtime > built for path in inputs)


def prepare_manifest(project: DbtProject) -> None:
    """Parse the project when its manifest is missing or older than its files: a fresh clone or an
    edited model. (dagster-dbt's `prepare_if_dev` reparses on every load under `dagster dev`; the
    staleness check gives the same freshness without a parse per code-server start.)"""
    if manifest_is_stale(project):
        with dbt_environment(Layout.from_settings()):
            project.preparer.prepare(project)
