"""Query parameters of the read API over real HTTP: unknown ones are 400s on every GET route (the
routes enumerated from the app itself), GET validation errors do not speak of storing, health/trend
filters by environment and release, and ``event_name`` in any form it was sent matches every event
stored under it."""

from __future__ import annotations

import httpx
import orjson
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from ingest_api.read.schemas import EventPage, HealthTrend
from tests.ingest_api.read.utils.experiment_dataset import GOAL_DISPLAY_NAME, GOAL_EVENT
from tests.ingest_api.read.utils.routes import REQUIRED_QUERY, route_url
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants

pytestmark = pytest.mark.slow


def get_routes(api: RunningApi) -> list[str]:
    """The path of every GET route of the app, through the routers it includes."""
    return [
        route.path
        for route in iter_route_contexts(api.server.config.app.routes)
        if isinstance(route.original_route, APIRoute) and "GET" in (route.methods or ())
    ]


def test_every_get_route_names_an_unknown_query_parameter_in_a_400(
    api: RunningApi, built: Built
) -> None:
    paths = get_routes(api)
    # /healthz, keys/me, persons: 2, events, export, experiments, funnel, releases: 2, trend,
    # sessions: 3 (the stream included: refused before it starts)
    assert len(paths) >= 14
    answers = {}
    headers = Tenants.headers(built.tenants.key_a)
    with httpx.Client(base_url=api.base_url, headers=headers, timeout=30) as client:
        for path in paths:
            url = route_url(path, built.tenants.project_a)
            params = {**REQUIRED_QUERY.get(path, {}), "evironment": "staging"}
            response = client.get(url, params=params)
            answers[path] = (response.status_code, response.json())

    takes_environment = "unknown query parameter 'evironment'; this route takes: "
    for path, (status, body) in answers.items():
        assert status == 400, path
        assert body["detail"] == "1 invalid field(s)", path
        [error] = body["errors"]
        assert (error["index"], error["field"], error["type"]) == (
            None,
            "query.evironment",
            "unknown_parameter",
        ), path
        assert error["reason"].startswith(takes_environment), path
    # what each route does take is listed, so the typo can be fixed
    trend = answers["/api/projects/{project_id}/health/trend"][1]["errors"][0]["reason"]
    assert trend == takes_environment + (
        "as_of, end_date, environment, interval, release, start_date"
    )
    assert answers["/healthz"][1]["errors"][0]["reason"] == takes_environment + "none"


def test_several_unknown_parameters_are_each_named_once(client_a: httpx.Client) -> None:
    response = client_a.get("/api/analytics/events?limt=5&evnt_name=x&limt=6&limit=2")

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [
        "query.limt",
        "query.evnt_name",
    ]


def test_get_validation_errors_do_not_say_nothing_was_stored(
    client_a: httpx.Client, built: Built
) -> None:
    read = client_a.get("/api/analytics/events", params={"limit": 0})
    written = client_a.post("/api/analytics/capture", json={"event": "x"})

    assert (read.status_code, read.json()["detail"]) == (400, "1 invalid field(s)")
    assert written.status_code == 400
    assert written.json()["detail"] == "1 invalid field(s); nothing was stored"


def trend(client: httpx.Client, project_id: int, **params: str) -> list[tuple]:
    response = client.get(f"/api/projects/{project_id}/health/trend", params=params)
    assert response.status_code == 200, response.text
    HealthTrend.model_validate(response.json())
    return [
        (
            point["timestamp"],
            point["total_sessions"],
            point["crash_free_session_rate"],
            point["crash_free_user_rate"],
        )
        for point in response.json()["trend"]
    ]


OCT_1, NOV_20 = "2026-10-01T00:00:00Z", "2026-11-20T00:00:00Z"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # Both environments mixed: 1.2.2 (450) + 1.2.3 production (9,550) + staging (10) sessions,
        # 50 crashed; users 20 old (10 crashed), 100 user_ (50 crashed, the rest weigh 1 / 0.1),
        # 45 legacy and qa: (595 + 1 - 50) / 596.
        ({}, [(OCT_1, 200, 95.0, 50.0), (NOV_20, 10_010, 99.5, 91.61)]),
        # staging alone: qa's 10 sessions, none crashed
        ({"environment": "staging"}, [(NOV_20, 10, 100.0, 100.0)]),
        (
            {"environment": "staging", "interval": "hour"},
            [("2026-11-20T10:00:00Z", 10, 100.0, 100.0)],
        ),
        # production alone: 9,950 of 10,000 sessions, (595 - 50) / 595 users
        ({"environment": "production"}, [(OCT_1, 200, 95.0, 50.0), (NOV_20, 10_000, 99.5, 91.6)]),
        # the seed's worked example: 9,550 sessions, 99.48%; users (550 - 50) / 550
        ({"environment": "production", "release": "1.2.3"}, [(NOV_20, 9_550, 99.48, 90.91)]),
        ({"release": "1.2.2"}, [(OCT_1, 200, 95.0, 50.0), (NOV_20, 450, 100.0, 100.0)]),
        ({"release": "1.2.2", "start_date": "2026-11-01"}, [(NOV_20, 450, 100.0, 100.0)]),
        ({"environment": "development"}, []),
    ],
)
def test_health_trend_filters_by_environment_and_release(
    client_a: httpx.Client, built: Built, params: dict, expected: list[tuple]
) -> None:
    assert trend(client_a, built.tenants.project_a, **params) == expected


def test_an_empty_environment_is_a_400_not_every_environment(
    client_a: httpx.Client, built: Built
) -> None:
    response = client_a.get(
        f"/api/projects/{built.tenants.project_a}/health/trend", params={"environment": ""}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "query.environment"


def test_another_orgs_trend_filters_see_only_their_project(
    client_b: httpx.Client, built: Built
) -> None:
    # org B: five 1.2.3 production sessions, one crashed; alice is one user who crashed
    assert trend(client_b, built.tenants.project_b, environment="production") == [
        (NOV_20, 5, 80.0, 0.0)
    ]


@pytest.fixture
def experiment_client(experiment_api: RunningApi, experiment_built: Built) -> httpx.Client:
    headers = Tenants.headers(experiment_built.tenants.key_a)
    with httpx.Client(base_url=experiment_api.base_url, headers=headers, timeout=30) as client:
        yield client


# The goal events of experiment_dataset.py (uuids by position there), newest first: c3 on 11-30,
# then on 11-22 t3 11:06, t4 10:37, t1 10:34, c1 10:30, c2 09:00; c1's and t3's were sent as
# `purchase_completed`, the others as `Purchase Completed`.
PURCHASES_NEWEST_FIRST = [
    ("x10", GOAL_DISPLAY_NAME),
    ("x20", None),
    ("x23", GOAL_DISPLAY_NAME),
    ("x15", GOAL_DISPLAY_NAME),
    ("x03", None),
    ("x04", GOAL_DISPLAY_NAME),
]
# The name as sent, the stored name, and another spelling that normalizes to it: each finds all
# six, however each was sent (comparing with event_display_name found only the four sent so).
NAME_FORMS = [GOAL_DISPLAY_NAME, GOAL_EVENT, "purchase-completed"]


@pytest.mark.parametrize("event_name", NAME_FORMS)
def test_event_name_matches_every_event_stored_under_it(
    experiment_client: httpx.Client, experiment_built: Built, event_name: str
) -> None:
    page = experiment_client.get("/api/analytics/events", params={"event_name": event_name}).json()

    EventPage.model_validate(page)
    org = experiment_built.tenants.org_a
    assert [(e["uuid"], e["event"], e["event_display_name"]) for e in page["events"]] == [
        (f"{org}-{n}", GOAL_EVENT, display) for n, display in PURCHASES_NEWEST_FIRST
    ]


@pytest.mark.parametrize("event_name", NAME_FORMS)
def test_export_event_name_matches_every_event_stored_under_it(
    experiment_client: httpx.Client, experiment_built: Built, event_name: str
) -> None:
    params = {"start_date": "2026-11-22", "end_date": "2026-12-01", "event_name": event_name}
    response = experiment_client.get("/api/analytics/export", params=params)

    rows = [orjson.loads(line) for line in response.content.splitlines()]
    org = experiment_built.tenants.org_a
    assert [(row["uuid"], row["event_display_name"]) for row in rows] == [
        (f"{org}-{n}", display) for n, display in PURCHASES_NEWEST_FIRST[::-1]
    ]


def test_events_without_a_display_name_carry_null(client_a: httpx.Client) -> None:
    events = client_a.get("/api/analytics/events").json()["events"]

    assert len(events) == 9  # 7 events, $identify and $set
    assert {event["event_display_name"] for event in events} == {None}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (
            "/api/analytics/funnel",
            {"steps": ["a", "b"], "breakdown_flag": "x\x00y"},
            "query.breakdown_flag",
        ),
        ("/api/analytics/events", {"distinct_id": "a\x00b"}, "query.distinct_id"),
        ("/api/analytics/persons/a%00b", {}, "path.distinct_id"),
        ("/api/analytics/experiments/flag%1F", {}, "path.flag_key"),
    ],
)
def test_a_control_character_in_a_filter_is_a_400_not_a_500(
    api: RunningApi, built: Built, path: str, params: dict, field: str
) -> None:
    """It can match no stored value, and a NUL in a filter constant failed DuckLake's file
    pruning (a 500, found by schemathesis)."""
    headers = Tenants.headers(built.tenants.key_a)
    response = httpx.get(f"{api.base_url}{path}", params=params, headers=headers, timeout=30)

    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == (field, "control_character")
