"""A warehouse of its own for a test: a data directory, a Dagster instance, and runs through the
project's real hourly job (dagster_project.runner, as `loom run` does)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg

from dagster_project.runner import HourRun, materialize_hours
from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.settings import environment


def loom_data_dir(data_dir: Path) -> AbstractContextManager[None]:
    """Point LOOM_DATA_DIR (what the resources, dbt's profile and the settings read) at a dir."""
    return environment({"LOOM_DATA_DIR": str(data_dir)})


@dataclass
class PipelineWarehouse:
    """A data directory and Dagster instance of its own, run through the real hourly job."""

    layout: Layout
    instance: dg.DagsterInstance

    @classmethod
    def create(cls, data_dir: Path) -> PipelineWarehouse:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(Layout(data_dir.resolve()), dg.DagsterInstance.ephemeral())

    def run(self, *hours: datetime) -> list[HourRun]:
        with loom_data_dir(self.layout.data_dir):
            runs = materialize_hours(hours, self.instance)
        failed = [run for run in runs if not run.success]
        assert not failed, failed[0].progress_line()
        return runs

    def query(
        self, sql: str, parameters: list | None = None, snapshot: int | None = None
    ) -> list[tuple]:
        """Rows of ``sql`` against the lake (read-only): its latest state, or a snapshot."""
        with connect_reader(self.layout, snapshot=snapshot) as con:
            return con.execute(sql, parameters or []).fetchall()

    def rows(
        self, sql: str, parameters: list | None = None, snapshot: int | None = None
    ) -> list[dict]:
        with connect_reader(self.layout, snapshot=snapshot) as con:
            cursor = con.execute(sql, parameters or [])
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def marts(self, snapshot: int | None = None) -> dict[str, list[dict]]:
        """Every relation of the analytics schema, rows sorted: the state analysts see."""
        names = [
            name
            for (name,) in self.query(
                "select table_name from information_schema.tables where table_catalog ="
                " 'warehouse' and table_schema = 'analytics' order by table_name",
                snapshot=snapshot,
            )
        ]
        return {
            name: sorted(self.rows(f"select * from analytics.{name}", snapshot=snapshot), key=repr)
            for name in names
        }
