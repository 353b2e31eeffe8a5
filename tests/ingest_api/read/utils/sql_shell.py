"""`loom sql` run the way an analyst runs it."""

from __future__ import annotations

from click.testing import CliRunner, Result

from warehouse.layout import Layout
from warehouse.settings import get_settings
from warehouse.sql_shell import sql


def invoke(layout: Layout, *args: str, stdin: str | None = None) -> Result:
    """``loom sql`` in this process, on ``layout``'s data directory."""
    get_settings.cache_clear()  # the command reads LOOM_DATA_DIR through the cached settings
    try:
        return CliRunner().invoke(
            sql, list(args), input=stdin, env={"LOOM_DATA_DIR": str(layout.data_dir)}
        )
    finally:
        get_settings.cache_clear()


def loom_sql(layout: Layout, *args: str, stdin: str | None = None) -> str:
    """What it prints on stdout (which snapshot it reads goes to stderr)."""
    result = invoke(layout, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout
