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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The app's lifespan calls gc.freeze() (a server-process optimisation); in-process test apps
    # would otherwise leave DuckDB objects uncollected at exit, and nanobind reports them as leaks
    # after pytest's summary line.
    gc.unfreeze()
    gc.collect()
