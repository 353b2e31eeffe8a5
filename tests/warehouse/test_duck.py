"""Every connection loads DuckDB's signed extension binaries: a process has each binary's
signature checked once, and checks it again when the file changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from warehouse import duck
from warehouse.layout import Layout


def signature_checked(layout: Layout) -> bool:
    with duck.unattached_connection(layout) as con:
        [(unsigned_allowed,)] = con.execute(
            "SELECT current_setting('allow_unsigned_extensions')"
        ).fetchall()
    return not unsigned_allowed


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a process that has loaded no extension yet."""
    monkeypatch.setattr(duck, "_CHECKED_BINARIES", set())


@pytest.mark.usefixtures("fresh_process")
def test_the_first_connection_checks_the_signatures_later_ones_trust_them_until_one_changes(
    layout: Layout,
) -> None:
    # One test, not two: touching the binary while another worker ran the first half made its
    # second connection check again.
    assert signature_checked(layout)
    assert not signature_checked(layout)
    assert not signature_checked(layout)

    binary = next(
        path.resolve()
        for path in duck.extension_directory(layout).rglob("ducklake.duckdb_extension")
    )
    stat = binary.stat()
    try:
        os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert signature_checked(layout)
        assert not signature_checked(layout)
    finally:
        os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.usefixtures("fresh_process")
def test_a_lake_needing_an_extension_not_checked_yet_gets_the_check(
    layout: Layout, tmp_path: Path
) -> None:
    assert signature_checked(layout)  # ducklake and sqlite
    on_postgres = Layout(tmp_path / "other", "postgres:dbname=lake host=127.0.0.1")

    assert duck.duckdb_config(on_postgres)["allow_unsigned_extensions"] is False
    assert duck.duckdb_config(layout)["allow_unsigned_extensions"] is True
