"""The workarounds for framework internals and costs are written for exact versions: when one of
those versions moves, this fails and names the workarounds to check again (each file's header says
what it works around and the measurement behind it). A workaround outside the listed files fails
too, so they stay in one place per framework."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from warehouse.duck import unattached_connection
from warehouse.layout import Layout

REPO = Path(__file__).resolve().parents[1]

DBT = {"dbt-core": "1.11.16", "dbt-duckdb": "1.11.1"}
DAGSTER = {"dagster": "1.13.27", "dagster-dbt": "0.29.27"}
DAGSTER_POSTGRES = {"dagster-postgres": "0.29.27"}
LAKE = {"duckdb": "1.5.5", "ducklake": "d8a1881e"}  # ducklake: the extension's build

# Each workaround's file -> the versions it was written for.
WORKAROUND_PINS: dict[str, dict[str, str]] = {
    "dbt_project/macros/lake_workarounds/unchanged_definitions.sql": {**DBT, **LAKE},
    "dbt_project/macros/lake_workarounds/replace_all.sql": {**DBT, **LAKE},
    "dbt_project/macros/lake_workarounds/windowed_data_tests.sql": DBT,
    "warehouse/dbt_workarounds.py": DBT,
    "warehouse/maintenance.py": LAKE,
    "dagster_project/framework_workarounds.py": DAGSTER,
    "dagster_project/event_storage.py": {"dagster": DAGSTER["dagster"]},
    "dagster_project/postgres_storage.py": {**DAGSTER_POSTGRES, "dagster": DAGSTER["dagster"]},
}

# What makes a file a workaround: a framework's internals (Python), or a dbt materialization,
# incremental strategy or adapter dispatch override (SQL).
PYTHON_INTERNALS = re.compile(
    r"^\s*(from|import) (dagster\._|dagster_dbt\.(core|asset_utils)\b|pickle\b)|\._ENV\b",
    re.MULTILINE,
)
DBT_OVERRIDES = re.compile(
    r"\{%-?\s*(materialization\s|macro\s+(get_incremental_\w+_sql|\w+__\w+)\s*\()"
)


def installed_versions() -> dict[str, str]:
    names = {**DBT, **DAGSTER, **DAGSTER_POSTGRES, "duckdb": ""}
    versions = {name: importlib.metadata.version(name) for name in names}
    with unattached_connection(Layout.from_settings()) as con:
        con.execute("LOAD ducklake")
        (versions["ducklake"],) = con.execute(
            "SELECT extension_version FROM duckdb_extensions() WHERE extension_name = 'ducklake'"
        ).fetchone()
    return versions


def workarounds_to_recheck(installed: dict[str, str]) -> dict[str, list[str]]:
    """Per workaround file, each pin that differs from what is installed."""
    moved = {
        path: [
            f"{name} {pinned} -> {installed[name]}"
            for name, pinned in pins.items()
            if installed[name] != pinned
        ]
        for path, pins in WORKAROUND_PINS.items()
    }
    return {path: changes for path, changes in moved.items() if changes}


def test_the_workarounds_were_written_for_the_installed_versions(data_dir: Path) -> None:
    assert workarounds_to_recheck(installed_versions()) == {}, (
        "a pinned version moved: check each workaround named here against the new version "
        "(replace it with what the framework now offers, or re-measure it), then update its "
        "header and WORKAROUND_PINS"
    )


def test_a_moved_pin_names_the_workarounds_to_recheck() -> None:
    installed = {
        name: version for pins in WORKAROUND_PINS.values() for name, version in pins.items()
    }
    assert workarounds_to_recheck(installed) == {}
    assert workarounds_to_recheck({**installed, "dagster-dbt": "0.30.0"}) == {
        "dagster_project/framework_workarounds.py": ["dagster-dbt 0.29.27 -> 0.30.0"]
    }


@pytest.mark.parametrize("path", sorted(WORKAROUND_PINS))
def test_each_workaround_header_states_its_pinned_versions(path: str) -> None:
    text = (REPO / path).read_text()
    assert "WORKAROUND" in text and "test_workaround_pins.py" in text
    assert [version for version in WORKAROUND_PINS[path].values() if version not in text] == []


def test_workarounds_live_only_in_the_listed_files() -> None:
    found = {
        str(path.relative_to(REPO))
        for pattern, folders, glob in (
            (PYTHON_INTERNALS, ("warehouse", "dagster_project", "ingest_api", "loom"), "*.py"),
            (DBT_OVERRIDES, ("dbt_project/macros",), "*.sql"),
        )
        for folder in folders
        for path in (REPO / folder).rglob(glob)
        if pattern.search(path.read_text())
    }
    assert len(found) >= 6  # the check sees the workarounds it is meant to
    assert found - set(WORKAROUND_PINS) == set()
