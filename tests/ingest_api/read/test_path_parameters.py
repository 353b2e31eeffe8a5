"""Every path parameter of the read API takes what ingest accepts for it: ``/``, a literal ``%2F``
and ``+``, spaces, unicode and the longest value (200 characters), each percent-encoded by the
client as any HTTP client encodes a path segment. The values were posted through the ingest API
(``newcomer_dataset.py``); the lists show them, and each one fetches."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from ingest_api.read.schemas import ExperimentResults, Person, ReleaseDetail, SessionDetail
from tests.ingest_api.read.utils.newcomer_dataset import (
    BUSY_RELEASE,
    DISTINCT_IDS,
    FLAG_KEYS,
    LONGEST,
    RELEASES,
    SESSION_IDS,
)
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from warehouse.dbt import person_uuid

pytestmark = pytest.mark.slow


def segment(value: str) -> str:
    """``value`` as one path segment: ``/`` → ``%2F``, ``%`` → ``%25``, space → ``%20``…"""
    return quote(value, safe="")


@pytest.fixture
def client(experiment_api: RunningApi, experiment_built: Built) -> Iterator[httpx.Client]:
    headers = Tenants.headers(experiment_built.tenants.key_a)
    with httpx.Client(base_url=experiment_api.base_url, headers=headers, timeout=30) as client:
        yield client


def test_the_values_are_what_ingest_accepts_at_most() -> None:
    for values in (DISTINCT_IDS, SESSION_IDS, RELEASES, FLAG_KEYS):
        assert max(len(value) for value in values) == LONGEST
        assert any("/" in value for value in values)


@pytest.mark.parametrize("distinct_id", DISTINCT_IDS)
def test_a_person_by_any_distinct_id(
    client: httpx.Client, experiment_built: Built, distinct_id: str
) -> None:
    response = client.get(f"/api/analytics/persons/{segment(distinct_id)}")

    assert response.status_code == 200, response.text
    person = Person.model_validate(response.json())
    assert person.distinct_ids == [distinct_id]
    assert person.person_id == person_uuid(experiment_built.tenants.org_a, distinct_id)


@pytest.mark.parametrize(("n", "session_id"), list(enumerate(SESSION_IDS)))
def test_a_session_by_any_id(
    client: httpx.Client, experiment_built: Built, n: int, session_id: str
) -> None:
    base = f"/api/projects/{experiment_built.tenants.project_a}/sessions"
    listed = client.get(base, params={"environment": "staging"}).json()["sessions"]
    response = client.get(f"{base}/{segment(session_id)}")

    assert session_id in [session["id"] for session in listed]
    assert response.status_code == 200, response.text
    session = SessionDetail.model_validate(response.json()).session
    assert (session.id, session.release, session.environment, session.status) == (
        session_id,
        RELEASES[n],
        "staging",
        "exited",
    )


@pytest.mark.parametrize("release", RELEASES)
def test_a_release_by_any_name(client: httpx.Client, experiment_built: Built, release: str) -> None:
    base = f"/api/projects/{experiment_built.tenants.project_a}/releases"
    listed = client.get(base, params={"environment": "staging"}).json()["releases"]
    response = client.get(f"{base}/{segment(release)}", params={"environment": "staging"})

    assert release in [row["release"] for row in listed]
    assert response.status_code == 200, response.text
    detail = ReleaseDetail.model_validate(response.json())
    # one session each; the busy release's was sampled at 1 in 20,000
    sessions = 20_000 if release == BUSY_RELEASE else 1
    assert (detail.release, detail.environment, detail.total_sessions) == (
        release,
        "staging",
        sessions,
    )


@pytest.mark.parametrize("flag_key", FLAG_KEYS)
def test_an_experiment_by_any_flag_key(client: httpx.Client, flag_key: str) -> None:
    response = client.get(f"/api/analytics/experiments/{segment(flag_key)}")

    assert response.status_code == 200, response.text
    results = ExperimentResults.model_validate(response.json())
    assert results.flag_key == flag_key
    assert [(v.variant, v.persons) for v in results.variants] == [("test", 1)]


def test_an_unknown_id_with_a_slash_is_the_routes_own_404(
    client: httpx.Client, experiment_built: Built
) -> None:
    """Not the router's bare ``{"detail": "Not Found"}``, which says nothing about the id."""
    project = experiment_built.tenants.project_a
    for path in (
        "/api/analytics/persons/no%2Fone",
        f"/api/projects/{project}/sessions/no%2Fsuch",
        f"/api/projects/{project}/releases/no%2Fsuch",
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert "no/" in response.json()["detail"], path
