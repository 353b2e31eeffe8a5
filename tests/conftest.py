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


# Session fixtures that build a warehouse through the pipeline: the tests using one run on the
# same xdist worker, which builds it once.
SHARED_WAREHOUSES = ("in_order", "built")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # With `--dist loadgroup`, a module's tests stay together (their module fixtures are built
    # once), except that the tests of a shared warehouse all go where it is built.
    for item in items:
        shared = [name for name in SHARED_WAREHOUSES if name in getattr(item, "fixturenames", ())]
        group = shared[0] if shared else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The app's lifespan calls gc.freeze() (a server-process optimisation); in-process test apps
    # would otherwise leave DuckDB objects uncollected at exit, and nanobind reports them as leaks
    # after pytest's summary line.
    gc.unfreeze()
    gc.collect()
