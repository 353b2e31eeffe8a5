"""Shared fixtures: every test gets its own data directory through ``LOOM_DATA_DIR``."""

from __future__ import annotations

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
