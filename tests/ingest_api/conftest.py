"""Fixtures for the ingest API tests: a real uvicorn server on loopback, tenants, landed records."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn

from ingest_api.main import create_app
from ingest_api.server import uvicorn_config
from warehouse.layout import PART_GLOB, Layout
from warehouse.registry import ApiKey, Registry
from warehouse.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(
    base_url: str, timeout: float = 60.0, process: subprocess.Popen | None = None
) -> None:
    """Generous: on a machine shared with other test runs, a cold start can take many seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{base_url} did not become healthy")


@dataclass(frozen=True)
class Api:
    base_url: str
    layout: Layout
    settings: Settings


@dataclass(frozen=True)
class Tenant:
    key: str
    record: ApiKey

    @property
    def org_id(self) -> str:
        return self.record.org_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


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
    with httpx.Client(base_url=api.base_url, timeout=30) as opened:
        yield opened


def landed(layout: Layout, stream: str, org_id: str | None = None) -> list[dict]:
    """Every visible landed record of a stream (of one org), in file order."""
    org = org_id or "*"
    records = []
    for path in sorted(layout.stream_dir(stream).glob(f"org_id={org}/date=*/hour=*/{PART_GLOB}")):
        records.extend(orjson.loads(line) for line in path.read_bytes().splitlines())
    return records


def wait_for_records(
    layout: Layout, stream: str, org_id: str, count: int, timeout: float
) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        records = landed(layout, stream, org_id)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


LOOM = [sys.executable, "-c", "from warehouse.cli import main; main(prog_name='loom')"]


@dataclass
class ServerProcess:
    """``loom serve`` in a subprocess, its output collected in a file."""

    data_dir: Path
    port: int
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**os.environ, "LOOM_DATA_DIR": str(self.data_dir), "LOOM_PORT": str(self.port)}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([*LOOM, "serve"], env=env, stdout=log, stderr=log)
        wait_healthy(self.base_url, process=self.process)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    @property
    def logs(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def server_process(data_dir: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, free_port(), tmp_path / "server.log")
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.kill()
        server.process.wait()
