"""Whatever a client sends, the answer is never a 5xx and a rejected request lands nothing."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest_api.ingest.utils.server import Api, Tenant, landed

ROUTES = [
    "/api/analytics/capture",
    "/api/analytics/batch",
    "/api/analytics/identify",
    "/api/analytics/alias",
    "/api/analytics/set",
    "/track",
    "/batch/",
    "/e/",
    "/api/sessions/start",
    "/api/sessions/end",
]
FIELDS = [
    "event", "distinct_id", "properties", "timestamp", "uuid", "batch", "environment", "alias",
    "anonymous_id", "session_id", "platform", "status", "sample_rate", "started_at", "$set",
]  # fmt: skip

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)
# Nearly valid events reach past the first validation error, into records and landing.
events = st.fixed_dictionaries(
    {
        "event": st.sampled_from(
            ["signed_up", "$identify", "$create_alias", "$set", "Checkout Completed"]
        ),
        "distinct_id": st.text(min_size=1, max_size=5),
        "environment": st.just("production"),
    },
    optional={
        "properties": st.dictionaries(
            st.sampled_from(["$anon_distinct_id", "alias", "$set", "x"]), json_values
        ),
        "timestamp": json_values
        | st.integers(min_value=0, max_value=10**15)
        | st.datetimes().map(str),
        "uuid": json_values | st.uuids().map(str),
        "session_id": json_values,
    },
)
shaped = (
    events
    | st.lists(events, min_size=1, max_size=3)
    | st.builds(lambda batch: {"batch": batch}, st.lists(events, max_size=3))
)
# json, not orjson: it also writes integers beyond 64 bits, which clients may send.
bodies = (json_values | shaped).map(lambda value: json.dumps(value).encode()) | st.binary(
    max_size=200
)


@pytest.mark.parametrize("route", ROUTES)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_arbitrary_bodies_get_a_non_5xx_answer(
    client: httpx.Client, api: Api, tenant: Tenant, route: str, body: bytes
) -> None:
    before = stored(api, tenant)
    response = client.post(
        f"{route}?sync=true",  # accepted records are on disk before the answer
        content=body,
        headers={**tenant.headers, "Content-Type": "application/json"},
    )

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["detail"]
        assert stored(api, tenant) == before


def stored(api: Api, tenant: Tenant) -> int:
    return sum(
        len(landed(api.layout, s, tenant.org_id)) for s in ("events", "identities", "sessions")
    )
