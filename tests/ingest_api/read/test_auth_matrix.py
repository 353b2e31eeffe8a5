"""Every read route by every kind of credential, enumerated from the app's own routes: a read route
added later is in this matrix without anyone listing it, and fails it until it authenticates.

Org A owns the data the routes are asked about. Org B's rw key is valid, but for org A's data:
a project route answers 404 (exactly like a missing project), an org route answers with org B's
own data only (or 404), and no answer carries anything of org A."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.ingest_api.read.utils.routes import REQUIRED_QUERY, route_url
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from warehouse.dbt import person_uuid
from warehouse.registry import Registry

pytestmark = pytest.mark.slow
CREDENTIALS = (
    "none",
    "malformed",
    "unknown",
    "revoked",
    "write key",
    "another org's rw key",
    "own rw key",
)
# Only org A has these: none may appear in an answer given to org B.
ORG_A_ONLY_IDS = ("anon-1", "bob", "old_0", "user_0", "legacy_0")


def read_routes(app: FastAPI) -> list[str]:
    """The path of every GET under /api/ (the ingest routes are all POSTs), through the routers
    the app includes."""
    return [
        route.path
        for route in iter_route_contexts(app.routes)
        if "GET" in (route.methods or ()) and (route.path or "").startswith("/api/")
    ]


@pytest.fixture(scope="module")
def credentials(built: Built) -> Iterator[dict[str, dict[str, str]]]:
    tenants = built.tenants
    with Registry.open(built.layout) as registry:
        revoked = registry.create_key("acme", "web", "rw")
        registry.revoke(revoked.record.key_id)
    yield {
        "none": {},
        "malformed": {"Authorization": f"Token {tenants.key_a}"},  # a valid key, wrong scheme
        "unknown": Tenants.headers("loom_analytics_rw_" + "0" * 32),
        "revoked": Tenants.headers(revoked.key),
        "write key": Tenants.headers(tenants.write_key_a),
        "another org's rw key": Tenants.headers(tenants.key_b),
        "own rw key": Tenants.headers(tenants.key_a),
    }


def get(client: httpx.Client, url: str, params: dict, headers: dict) -> tuple[int, str]:
    """The status and body; for a stream, the status and its first bytes only."""
    with client.stream("GET", url, params=params, headers=headers) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, next(response.iter_text())
        return response.status_code, response.read().decode(errors="replace")


def expected(path: str, credential: str) -> set[int]:
    if credential in ("none", "malformed", "unknown", "revoked"):
        return {401}
    if credential == "write key":
        return {403}
    if credential == "another org's rw key":
        # A project of another org is 404; an org route answers for the caller's own org,
        # where org A's distinct_id may not exist.
        return {404} if "{project_id}" in path else {200, 404}
    return {200}


def test_every_read_route_answers_every_credential_as_it_must(
    api: RunningApi, built: Built, credentials: dict[str, dict[str, str]]
) -> None:
    tenants = built.tenants
    org_a_markers = [
        tenants.org_a,
        *ORG_A_ONLY_IDS,
        *(person_uuid(tenants.org_a, distinct_id) for distinct_id in ORG_A_ONLY_IDS),
    ]
    paths = read_routes(api.server.config.app)
    # persons: 2, events, export, experiments, funnel, releases: 2, trend, sessions: 3, keys/me
    assert len(paths) >= 13
    mismatches, leaks = [], []
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        for path in paths:
            url = route_url(path, tenants.project_a)
            params = REQUIRED_QUERY.get(path, {})
            for credential in CREDENTIALS:
                status, body = get(client, url, params, credentials[credential])
                if status not in expected(path, credential):
                    mismatches.append((path, credential, status, body[:120]))
                if credential == "another org's rw key" and status == 200:
                    leaks += [(path, marker) for marker in org_a_markers if marker in body]

    assert mismatches == []
    assert leaks == []
