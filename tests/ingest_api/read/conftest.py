"""One warehouse built for the whole read-API suite: the hand-built dataset (``dataset.py``) landed,
loaded into ``raw.*``, built by a real ``dbt build`` and published; then the API under uvicorn on
a loopback port. Tests that change the warehouse (pruning, a second run) work on a copy."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from ingest_api.read.rendering import dumps
from ingest_api.read.snapshots import snapshot_fields
from tests.ingest_api.read.utils.dataset import land_dataset
from tests.ingest_api.read.utils.experiment_dataset import land_experiment
from tests.ingest_api.read.utils.newcomer_dataset import post_newcomer_data
from tests.ingest_api.read.utils.warehouse import (
    DBT_TESTS,
    Built,
    RunningApi,
    Tenants,
    load_and_publish,
    start_api,
)
from tests.utils.network import CLIENT_SSL_CONTEXT
from warehouse import dbt
from warehouse.layout import Layout
from warehouse.published import kept_publishes_of
from warehouse.registry import Registry


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


@pytest.fixture(scope="session")
def published(built: Built) -> dict[str, object]:
    """The ``snapshot`` field of every answer read from ``built``, as JSON."""
    newest = kept_publishes_of(built.layout).newest()
    assert newest is not None
    return orjson.loads(dumps(snapshot_fields(newest)))


@pytest.fixture
def copy_of_built(built: Built, tmp_path: Path) -> Layout:
    """A private copy of the built data directory, for tests that change the warehouse."""
    shutil.copytree(built.layout.data_dir, tmp_path / "data")
    return Layout(tmp_path / "data")


@pytest.fixture(scope="session")
def experiment_built(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The dataset plus an experiment and a funnel (``experiment_dataset.py``) and what a new
    user sent through the ingest API (``newcomer_dataset.py``), built again on a copy: the tests
    of the other routes keep their numbers."""
    root = tmp_path_factory.mktemp("read_api_experiment")
    shutil.copytree(built.layout.data_dir, root / "data")
    layout = Layout(root / "data")
    tenants = built.tenants
    land_experiment(layout, tenants.org_a, tenants.project_a, tenants.org_b, tenants.project_b)
    ingest = start_api(layout)
    try:
        post_newcomer_data(ingest.base_url, tenants.write_key_a)
    finally:
        ingest.stop()
    load_and_publish(
        layout, lambda: dbt.build(layout, exclude=DBT_TESTS, target_path=root / "dbt-target")
    )
    return Built(layout, tenants)


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
    with httpx.Client(
        base_url=api.base_url, headers=headers, timeout=30, verify=CLIENT_SSL_CONTEXT
    ) as client:
        yield client


@pytest.fixture
def client_b(api: RunningApi, built: Built) -> Iterator[httpx.Client]:
    headers = Tenants.headers(built.tenants.key_b)
    with httpx.Client(
        base_url=api.base_url, headers=headers, timeout=30, verify=CLIENT_SSL_CONTEXT
    ) as client:
        yield client
