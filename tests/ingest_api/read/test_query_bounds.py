"""Every integer parameter is bounded to what its query can take: a 400 naming it, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.ingest_api.read.utils.warehouse import Built, RunningApi

pytestmark = pytest.mark.slow

BIGINT_MAX = 2**63 - 1


def integer_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The integer alternatives of a parameter's schema (``int | None`` is an ``anyOf``)."""
    if schema.get("type") == "integer":
        return [schema]
    return [found for option in schema.get("anyOf", []) for found in integer_schemas(option)]


def test_every_integer_parameter_of_every_operation_declares_its_bounds(api: RunningApi) -> None:
    spec = httpx.get(f"{api.base_url}/openapi.json").json()
    parameters = [
        (f"{method.upper()} {path}", parameter["name"], schema)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        for schema in integer_schemas(parameter["schema"])
    ]

    assert {name for _, name, _ in parameters} >= {"limit", "offset", "project_id"}
    unbounded = [
        (operation, name)
        for operation, name, schema in parameters
        if "minimum" not in schema or schema.get("maximum", BIGINT_MAX + 1) > BIGINT_MAX
    ]
    assert unbounded == []


def test_an_offset_beyond_a_bigint_is_a_400_naming_it(client_a: httpx.Client) -> None:
    too_far = client_a.get("/api/analytics/persons", params={"offset": BIGINT_MAX + 1})
    farthest = client_a.get("/api/analytics/persons", params={"offset": BIGINT_MAX})

    assert too_far.status_code == 400, too_far.text
    assert [(e["field"], e["type"]) for e in too_far.json()["errors"]] == [
        ("query.offset", "less_than_equal")
    ]
    assert farthest.status_code == 200
    assert farthest.json()["persons"] == [] and farthest.json()["next_offset"] is None


@pytest.mark.parametrize(
    ("route", "name"),
    [
        ("/api/analytics/persons", "limit"),
        ("/api/analytics/events", "limit"),
        ("/api/projects/{p}/sessions", "limit"),
    ],
)
def test_huge_page_sizes_are_400s(
    client_a: httpx.Client, built: Built, route: str, name: str
) -> None:
    response = client_a.get(route.format(p=built.tenants.project_a), params={name: 2**64})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == f"query.{name}"


def test_a_project_id_beyond_a_bigint_is_a_400(client_a: httpx.Client) -> None:
    response = client_a.get(f"/api/projects/{2**63}/releases")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "path.project_id"
