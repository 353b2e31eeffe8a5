"""One Loom API (ingest and read, the app ``loom serve`` runs) under uvicorn on loopback, on the
test's own data directory, with an org and a key of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from ingest_api.main import create_app
from ingest_api.server import uvicorn_config
from tests.ingest_api.conftest import free_port, wait_healthy
from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.published import NoSnapshotError, latest_published
from warehouse.registry import Registry
from warehouse.settings import Settings


@dataclass(frozen=True)
class RunningLoom:
    base_url: str
    app: FastAPI
    layout: Layout
    key: str
    org_id: str
    project_id: int

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def wait_until_serving_latest_publish(self, timeout: float = 30) -> None:
        """The API follows new publishes within about a second (``PublishedMarts``); wait until
        it answers from the one the pipeline just made."""
        with connect_reader(self.layout) as con:
            published = latest_published(con)
        assert published is not None, "the pipeline published nothing"
        deadline = time.monotonic() + timeout
        while self._serving() != published:
            assert time.monotonic() < deadline, f"the API never switched to snapshot {published}"
            time.sleep(0.1)

    def _serving(self) -> int | None:
        try:
            return self.app.state.marts.snapshot_id()
        except NoSnapshotError:  # until its follower has seen the first publish
            return None


@pytest.fixture
def loom(data_dir: Path) -> Iterator[RunningLoom]:
    settings = Settings(data_dir=data_dir, port=free_port())
    layout = Layout.from_settings(settings)
    with Registry.open(layout) as registry:
        created = registry.create_key("exactness", "app", "rw")
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(settings, app=app, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://{settings.host}:{settings.port}"
    wait_healthy(base_url)
    yield RunningLoom(
        base_url,
        app,
        layout,
        created.key,
        created.record.org_id,
        created.record.project_id,
    )
    server.should_exit = True
    thread.join(timeout=15)
