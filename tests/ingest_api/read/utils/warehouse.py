"""The read suite's built warehouse, its tenants, and read APIs serving it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import uvicorn

from ingest_api.main import create_app
from tests.utils.network import free_port
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.published import publish
from warehouse.raw_load import load_landed
from warehouse.settings import Settings

DBT_TESTS = "resource_type:test resource_type:unit_test"


@dataclass(frozen=True)
class Tenants:
    org_a: str
    project_a: int
    key_a: str  # rw
    write_key_a: str
    org_b: str
    project_b: int
    key_b: str  # rw

    @staticmethod
    def headers(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@dataclass(frozen=True)
class Built:
    layout: Layout
    tenants: Tenants


def load_and_publish(
    layout: Layout, build: Callable[[], object], data_as_of: datetime | None = None
) -> int:
    """Load every landed hour into raw.*, run ``build`` (dbt), publish (holding the records
    received up to ``data_as_of``); the snapshot id."""
    load_landed(layout)
    build()
    with connect_pipeline(layout) as con:
        return publish(con, data_as_of)


@dataclass
class RunningApi:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_api(layout: Layout) -> RunningApi:
    settings = Settings(data_dir=layout.data_dir, port=free_port())
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    return RunningApi(base_url, server, thread)
