"""schemathesis over every operation of the app's OpenAPI, against uvicorn on a published
warehouse, with an rw key (so read routes answer for real): never a 5xx, every status code and
body as declared, and whatever violates the schema rejected (validation and schema agree).

Not checked: that every schema-valid request is accepted (``positive_data_acceptance``). Some
rules span fields and cannot be written in OpenAPI (an alias must differ from its distinct_id,
an ``$identify`` needs ``properties.$anon_distinct_id``, a display name must normalize to an
event name, properties at most 1 MB as JSON); those are 4xx by design and tested one by one in
``tests/ingest_api/test_validation.py``.

Excluded: the live stream (``/sessions/stream``), which answers 200 and then never ends, so a
generated request would never complete; ``test_auth_matrix.py`` and ``test_stream.py`` call it.

The schema is the app's own, built at import so that pytest can list one test per operation
(schemathesis's fixture-based loader does not run under pytest 9); the first test checks that
the server serves exactly this schema.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    NegativeDataRejectionConfig,
)
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ingest_api.main import create_app
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants, start_api
from warehouse.layout import Layout
from warehouse.settings import Settings

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 12
# Nothing is written there: building the app and its OpenAPI touches no file.
OPENAPI = create_app(Settings(data_dir=Path("/nonexistent/loom-openapi"))).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI).exclude(path_regex=r"/sessions/stream$")
# Too many events in one request is refused as 413 Payload Too Large, a rejection too.
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=[*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
)


@dataclass(frozen=True)
class ContractApi:
    api: RunningApi
    headers: dict[str, str]
    project_id: int


@pytest.fixture(scope="module")
def contract_api(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContractApi]:
    """The API on a copy of the published warehouse: generated ingest requests land there."""
    data_dir = tmp_path_factory.mktemp("contract") / "data"
    shutil.copytree(built.layout.data_dir, data_dir)
    running = start_api(Layout(data_dir))
    yield ContractApi(running, Tenants.headers(built.tenants.key_a), built.tenants.project_a)
    running.stop()


def test_the_server_serves_the_schema_under_test(contract_api: ContractApi) -> None:
    assert httpx.get(f"{contract_api.api.base_url}/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_keeps_its_contract(
    case: schemathesis.Case, contract_api: ContractApi
) -> None:
    project_id = (case.path_parameters or {}).get("project_id")
    if isinstance(project_id, int) and not isinstance(project_id, bool) and 1 <= project_id < 2**63:
        # A random valid id is a 404 before any query runs: ask about the key's own project.
        # Invalid ids (negative cases) stay, to be rejected.
        case.path_parameters["project_id"] = contract_api.project_id
    case.call_and_validate(
        base_url=contract_api.api.base_url,
        headers=contract_api.headers,
        timeout=30,
        excluded_checks=[positive_data_acceptance],
    )
