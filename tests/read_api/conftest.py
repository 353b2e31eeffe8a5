"""One warehouse built for the whole read-API suite: the hand-built dataset (``dataset.py``) landed,
loaded into ``raw.*``, built by a real ``dbt build`` and published; then the API under uvicorn on
a loopback port. Tests that change the warehouse (pruning, a second run) work on a copy."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from ingest_api.main import create_app
from tests.read_api.dataset import land_dataset
from tests.read_api.experiment_dataset import land_experiment
from warehouse import dbt
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.published import publish
from warehouse.raw_load import load_landed
from warehouse.registry import Registry
from warehouse.settings import Settings

DBT_TESTS = "resource_type:test resource_type:unit_test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def load_and_publish(layout: Layout, build: Callable[[], object]) -> int:
    """Load every landed hour into raw.*, run ``build`` (dbt), publish; the snapshot id."""
    load_landed(layout)
    build()
    with connect_pipeline(layout) as con:
        return publish(con)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("read_api")
    layout = Layout(root / "data")
    with Registry.open(layout) as registry:
        key_a = registry.create_key("acme", "web", "rw")
        write_a = registry.create_key("acme", "web", "write")
        key_b = registry.create_key("globex", "shop", "rw")
    tenants = Tenants(
        key_a.record.org_id,
        key_a.record.project_id,
        key_a.key,
        write_a.key,
        key_b.record.org_id,
        key_b.record.project_id,
        key_b.key,
    )
    land_dataset(layout, tenants.org_a, tenants.project_a, tenants.org_b, tenants.project_b)
    # The marts only: dbt's own tests belong to the dbt suite and would double this build's time.
    load_and_publish(
        layout, lambda: dbt.build(layout, exclude=DBT_TESTS, target_path=root / "dbt-target")
    )
    return Built(layout, tenants)


@pytest.fixture
def copy_of_built(built: Built, tmp_path: Path) -> Layout:
    """A private copy of the built data directory, for tests that change the warehouse."""
    shutil.copytree(built.layout.data_dir, tmp_path / "data")
    return Layout(tmp_path / "data")


@pytest.fixture(scope="session")
def experiment_built(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The dataset plus an experiment and a funnel (``experiment_dataset.py``), built again on a
    copy: the tests of the other routes keep their numbers."""
    root = tmp_path_factory.mktemp("read_api_experiment")
    shutil.copytree(built.layout.data_dir, root / "data")
    layout = Layout(root / "data")
    tenants = built.tenants
    land_experiment(layout, tenants.org_a, tenants.project_a, tenants.org_b, tenants.project_b)
    load_and_publish(
        layout, lambda: dbt.build(layout, exclude=DBT_TESTS, target_path=root / "dbt-target")
    )
    return Built(layout, tenants)


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


@pytest.fixture(scope="session")
def api(built: Built) -> Iterator[RunningApi]:
    running = start_api(built.layout)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def experiment_api(experiment_built: Built) -> Iterator[RunningApi]:
    running = start_api(experiment_built.layout)
    yield running
    running.stop()


@pytest.fixture
def api_on() -> Iterator[Callable[[Layout], RunningApi]]:
    """Start an API on another data directory; stopped after the test."""
    started: list[RunningApi] = []

    def start(layout: Layout) -> RunningApi:
        started.append(start_api(layout))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def client_a(api: RunningApi, built: Built) -> Iterator[httpx.Client]:
    headers = Tenants.headers(built.tenants.key_a)
    with httpx.Client(base_url=api.base_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def client_b(api: RunningApi, built: Built) -> Iterator[httpx.Client]:
    headers = Tenants.headers(built.tenants.key_b)
    with httpx.Client(base_url=api.base_url, headers=headers, timeout=30) as client:
        yield client
