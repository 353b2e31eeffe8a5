"""One Loom API (ingest and read, the app ``loom serve`` runs) under uvicorn on loopback, on the
test's own data directory, with an org and a key of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from ingest_api.main import create_app
from ingest_api.server import uvicorn_config
from tests.end_to_end.utils.loom import RunningLoom
from tests.ingest_api.ingest.utils.server import wait_healthy
from tests.utils.network import free_port
from warehouse.layout import Layout
from warehouse.registry import Registry
from warehouse.settings import Settings


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
