"""Shared fixtures: every test gets its own data directory through ``LOOM_DATA_DIR``."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from warehouse.layout import Layout
from warehouse.settings import get_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("LOOM_DATA_DIR", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def layout(data_dir: Path) -> Layout:
    return Layout(data_dir)


# Session fixtures that build a warehouse through the pipeline or dbt.
SHARED_WAREHOUSES = ("in_order", "built")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # With `--dist loadgroup`, a module's tests stay together (their module fixtures are built
    # once), and a module any of whose tests shares a session fixture (a warehouse built through
    # the pipeline) goes where that fixture is built, whole: split, its module fixtures were
    # built once per worker, and again each time its tests came back after another module's. A
    # session fixture is known by where it is defined, not by its name: two packages' `built`
    # are two warehouses, which two workers can build at once.
    shared: dict[str, str] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        group = _shared_warehouse(item)
        if group is not None:
            shared.setdefault(module, group)
    modules = {item.nodeid: item.nodeid.split("::")[0] for item in items}
    group_of = {nodeid: shared.get(module, module) for nodeid, module in modules.items()}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group_of[item.nodeid]))
    # Groups go to the workers in this order (`--no-loadscope-reorder`: xdist would otherwise
    # send the groups with most tests first, leaving a one-test module of a minute for the end,
    # while the other worker idles). Groups holding slow tests first; the quick ones fill the end.
    slow_groups = {group_of[item.nodeid] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: group_of[item.nodeid] not in slow_groups)


def _shared_warehouse(item: pytest.Item) -> str | None:
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        definitions = info.name2fixturedefs.get(name) if info is not None else None
        if name in SHARED_WAREHOUSES and definitions and definitions[-1].scope == "session":
            return f"{definitions[-1].baseid}::{name}"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # `loom run` calls gc.freeze() (a one-run-process optimisation); run in-process (CliRunner), it
    # would otherwise leave DuckDB objects uncollected at exit, and nanobind reports them as leaks
    # after pytest's summary line.
    gc.unfreeze()
    gc.collect()
