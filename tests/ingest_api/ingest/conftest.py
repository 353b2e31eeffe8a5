"""Fixtures for the ingest API tests: a real uvicorn server on loopback, tenants, landed records."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from ingest_api.main import create_app
from ingest_api.server import uvicorn_config
from tests.ingest_api.ingest.utils.server import (
    Api,
    ServerProcess,
    Tenant,
    wait_healthy,
)
from tests.utils.network import CLIENT_SSL_CONTEXT, free_port
from warehouse.layout import Layout
from warehouse.registry import Registry
from warehouse.settings import Settings


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One ingest API under uvicorn in a background thread, shared by the tests that only need
    HTTP; each test isolates its data with its own tenant (org)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("api") / "data", port=free_port())
    config = uvicorn_config(settings, app=create_app(settings), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://{settings.host}:{settings.port}"
    wait_healthy(base_url)
    yield Api(base_url, Layout.from_settings(settings), settings)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def registry(api: Api) -> Iterator[Registry]:
    with Registry.open(api.layout) as opened:
        yield opened


@pytest.fixture
def new_tenant(registry: Registry, request: pytest.FixtureRequest) -> Callable[..., Tenant]:
    """A fresh org (named after the test) with a key; its records land apart from others'."""
    counter = iter(range(1000))

    def make(kind: str = "write", org: str | None = None) -> Tenant:
        org_name = org or f"{request.node.name}-{next(counter)}"
        created = registry.create_key(org_name, "web", kind)  # type: ignore[arg-type]
        return Tenant(created.key, created.record)

    return make


@pytest.fixture
def tenant(new_tenant: Callable[..., Tenant]) -> Tenant:
    return new_tenant()


@pytest.fixture
def client(api: Api) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=30, verify=CLIENT_SSL_CONTEXT) as opened:
        yield opened


@pytest.fixture
def server_process(data_dir: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, free_port(), tmp_path / "server.log")
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.kill()
        server.process.wait()
