"""The ``loom`` command. Each subcommand lives next to the component it drives and is imported
only when it runs, so ``loom keys`` never pays for importing Dagster."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group
SUBCOMMANDS: dict[str, str] = {
    "serve": "ingest_api.cli:serve",
    "keys": "ingest_api.cli:keys",
    "bootstrap": "ingest_api.cli:bootstrap",
    "up": "warehouse.stack:up",
    "run": "dagster_project.cli:run",
    "demo": "bench.demo:demo",
    "dbt": "warehouse.dbt:dbt",
    "sql": "warehouse.sql_shell:sql",
    "upgrade": "warehouse.upgrade:upgrade_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup)
def main() -> None:
    """Loom Warehouse: ingest API, hourly pipeline and release-health marts."""
