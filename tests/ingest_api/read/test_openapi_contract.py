"""schemathesis over every operation of the app's OpenAPI, against uvicorn on a published
warehouse, with an rw key (so read routes answer for real): never a 5xx, every status code and
body as declared, whatever violates the schema rejected, and whatever the schema allows accepted
(validation and schema agree both ways: the schema states every limit the server enforces, such
as 2,000 events a request, a 365-day conversion window, timestamps from 1970, integers written
``670.0``).

Some rules span fields or formats and cannot be written in OpenAPI (:data:`UNSTATEABLE`: an alias
must differ from its distinct_id, an ``$identify`` needs ``properties.$anon_distinct_id``, a
display name must normalize to an event name, properties at most 1 MB as JSON, a Sentry
envelope's format, an end after its start, a cursor the API gave out); a schema-valid request
rejected for one of those alone passes, and each is tested on its own (e.g.
``tests/ingest_api/ingest/test_validation.py``).

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
from schemathesis.core.transport import Response
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


# The rules the schema cannot state, as a rejection names them: the error type of an ingest
# route's body, or the detail of a read route's 400.
UNSTATEABLE = {
    "alias": "an alias must differ from its distinct_id",
    "identity": "an identity event needs the id it links",
    "event_property": "what models extract from properties of some events holds no control "
    "character ($feature_flag of $feature_flag_called)",
    "properties": "integers inside properties fit 64 bits, at any depth",
    "event_name": "a display name must normalize to an event name (names sent natively follow "
    "the schema's pattern)",
    "properties_too_large": "properties at most 1 MB as JSON",
    "envelope": "a Sentry envelope's format (bytes to OpenAPI)",
    "must be after start_date": "a window ends after it starts",
    "not a cursor this API returned": "a cursor is what the API gave out",
}


def rejected_for_an_unstateable_rule(response: Response) -> bool:
    if response.status_code not in (400, 413):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") or []
    if errors:
        return all(error["type"] in UNSTATEABLE for error in errors)
    return any(rule in str(body.get("detail")) for rule in UNSTATEABLE)


@schemathesis.check
def schema_valid_requests_are_accepted(
    ctx: schemathesis.CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """schemathesis's positive_data_acceptance, but for the rules the schema cannot state."""
    if rejected_for_an_unstateable_rule(response):
        return None
    return positive_data_acceptance(ctx, response, case)


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
        additional_checks=[schema_valid_requests_are_accepted],
    )
