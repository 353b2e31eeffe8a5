"""Every answer says which data it reflects, and can be asked as of an earlier time: every read
route carries the snapshot it was read from (headers, and the body's ``snapshot`` field), and
``?as_of=`` and ``loom sql --at`` answer from the publish made at or before that time, through
uvicorn and the real CLI, on real publishes."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from ingest_api.query_parameters import query_parameter_names
from tests.ingest_api.read.utils.routes import REQUIRED_QUERY, route_url
from tests.ingest_api.read.utils.sql_shell import invoke, loom_sql
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.published import Publish, kept_publishes_of, publish

RELEASE_123 = "/api/projects/{project}/releases/1.2.3"
SESSIONS_123 = (
    "select total_sessions from analytics.release_health"
    " where org_id = '{org}' and release = '1.2.3' and environment = 'production'"
)


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def test_every_read_route_says_which_snapshot_it_answered_from(
    api: RunningApi, client_a: httpx.Client, built: Built, published: dict
) -> None:
    # The read routes are those that take as_of: enumerated from the app, so a new one is checked.
    reads = [
        context.path
        for context in iter_route_contexts(api.server.config.app.routes)
        if isinstance(context.original_route, APIRoute)
        and "as_of" in query_parameter_names(context.original_route.dependant)
    ]
    assert len(reads) == 11
    for path in reads:
        url = route_url(path, built.tenants.project_a)
        response = client_a.get(url, params=REQUIRED_QUERY.get(path, {}))
        assert response.status_code == 200, (path, response.text)
        headers = (
            response.headers["Loom-Snapshot-Id"],
            response.headers["Loom-Published-At"],
            response.headers.get("Loom-Data-As-Of"),
        )
        assert headers == (str(published["id"]), published["published_at"], None), path
        if path != "/api/analytics/export":  # a stream of events: the headers say it
            assert response.json()["snapshot"] == published, path
    # A 404 is an answer from the snapshot too.
    missing = client_a.get("/api/analytics/persons/nobody")
    assert (missing.status_code, missing.headers["Loom-Snapshot-Id"]) == (404, str(published["id"]))


@pytest.fixture
def two_publishes(built: Built, copy_of_built: Layout) -> tuple[Publish, Publish]:
    """The suite's publish, then a second one where 1.2.3 in production has 100 more sessions."""
    first = kept_publishes_of(copy_of_built).newest()
    with connect_pipeline(copy_of_built) as pipeline:
        pipeline.execute(
            "UPDATE warehouse.analytics.release_health SET total_sessions = total_sessions + 100"
            " WHERE org_id = ? AND release = '1.2.3' AND environment = 'production'",
            [built.tenants.org_a],
        )
        publish(pipeline, datetime(2026, 11, 20, 14))
    second = kept_publishes_of(copy_of_built).newest()
    assert first is not None and second is not None and second.snapshot_id > first.snapshot_id
    return first, second


def test_the_api_answers_as_of_a_time_from_the_publish_current_then(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    two_publishes: tuple[Publish, Publish],
) -> None:
    first, second = two_publishes
    api = api_on(copy_of_built)
    path = RELEASE_123.format(project=built.tenants.project_a)
    headers = Tenants.headers(built.tenants.key_a)
    between = first.published_at + (second.published_at - first.published_at) / 2

    def sessions_as_of(as_of: str | None) -> tuple[int, int]:
        response = httpx.get(
            api.base_url + path, headers=headers, params={"as_of": as_of} if as_of else {}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert int(response.headers["Loom-Snapshot-Id"]) == body["snapshot"]["id"]
        return body["snapshot"]["id"], body["total_sessions"]

    then, now = (first.snapshot_id, 9550), (second.snapshot_id, 9650)
    assert sessions_as_of(_iso(first.published_at)) == then  # at the publish itself
    assert sessions_as_of(_iso(between)) == then
    # The same moment written with an offset.
    assert sessions_as_of((between + timedelta(hours=2)).isoformat() + "+02:00") == then
    assert sessions_as_of(_iso(second.published_at)) == now
    assert sessions_as_of(_iso(second.published_at + timedelta(days=365))) == now  # the future
    assert sessions_as_of(None) == now

    too_old = httpx.get(
        api.base_url + path,
        headers=headers,
        params={"as_of": _iso(first.published_at - timedelta(seconds=1))},
    )
    assert too_old.status_code == 410
    [error] = too_old.json()["errors"]
    assert (error["field"], error["type"]) == ("as_of", "time_not_kept")
    assert (
        f"the oldest publish kept is from {first.published_at:%Y-%m-%dT%H:%M:%SZ}"
        in (error["reason"])
    )


def test_loom_sql_at_a_time_reads_the_publish_current_then(
    built: Built, copy_of_built: Layout, two_publishes: tuple[Publish, Publish]
) -> None:
    first, second = two_publishes
    query = SESSIONS_123.format(org=built.tenants.org_a)

    def sessions_at(*at: str) -> int:
        _, value = list(csv.reader(io.StringIO(loom_sql(copy_of_built, "-c", query, "--csv", *at))))
        return int(value[0])

    assert sessions_at("--at", _iso(first.published_at)) == 9550
    assert sessions_at("--at", _iso(second.published_at)) == 9650
    assert sessions_at() == 9650
    attach = loom_sql(copy_of_built, "--print-attach", "--at", _iso(first.published_at))
    assert attach.startswith(f"-- published snapshot {first.snapshot_id} (")
    assert f"SNAPSHOT_VERSION {first.snapshot_id}," in attach

    too_old = invoke(copy_of_built, "-c", query, "--at", "2020-01-01")
    assert too_old.exit_code == 1
    assert f"the oldest publish kept is from {first.published_at:%Y-%m-%dT%H:%M:%SZ}" in (
        too_old.output
    )
    not_a_time = invoke(copy_of_built, "-c", query, "--at", "yesterday")
    assert not_a_time.exit_code == 2 and "not an ISO 8601 time" in not_a_time.output
