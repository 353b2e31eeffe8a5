"""The ``loom`` command, the one place that composes the packages: each subcommand (and each
service ``loom up`` starts) lives next to the component it drives and is named here by
``"module:attribute"``, imported only when it runs, so ``loom keys`` never pays for importing
Dagster."""

from __future__ import annotations

import atexit
import gc
import importlib
from typing import Any

import click

# name -> "module:attribute" of a click command or group
SUBCOMMANDS: dict[str, str] = {
    "serve": "ingest_api.cli:serve",
    "keys": "ingest_api.cli:keys",
    "bootstrap": "ingest_api.cli:bootstrap",
    "up": "loom.stack:up",
    "run": "dagster_project.cli:run",
    "demo": "loom.demo:demo",
    "dbt": "warehouse.dbt:dbt",
    "sql": "warehouse.sql_shell:sql",
    "upgrade": "warehouse.upgrade:upgrade_command",
    "doctor": "warehouse.doctor:doctor",
}

# What `loom up` starts: "module:attribute" of a function (Settings, Layout) -> Service.
SERVICES: tuple[str, ...] = (
    "ingest_api.service:api_service",
    "dagster_project.service:dagster_service",
)


def resolve(target: str) -> Any:
    """The attribute a ``"module:attribute"`` target names, its module imported now."""
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        return None if target is None else resolve(target)


@click.group(cls=LazyGroup)
def main() -> None:
    """Loom Warehouse: ingest API, hourly pipeline and release-health marts."""
    # Spare the exit's collection over every live object (Dagster's, dbt's): the process is ending.
    atexit.register(gc.freeze)
