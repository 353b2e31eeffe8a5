"""Windows older than the 30-day session retention answer from the forever-kept aggregates, with
the same numbers they had before their sessions were pruned."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.read_api.conftest import Built, RunningApi, Tenants
from warehouse import dbt
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.published import publish

pytestmark = pytest.mark.slow

OLD_WINDOW = {"start_date": "2026-10-01", "end_date": "2026-10-02"}
RECENT_WINDOW = {"start_date": "2026-11-20", "end_date": "2026-11-21"}


def _answers(client: httpx.Client, project: int) -> dict[str, object]:
    base = f"/api/projects/{project}"
    return {
        "old releases": client.get(f"{base}/releases", params=OLD_WINDOW).json(),
        "old detail": client.get(f"{base}/releases/1.2.2", params=OLD_WINDOW).json(),
        "recent releases": client.get(f"{base}/releases", params=RECENT_WINDOW).json(),
        "whole history": client.get(f"{base}/releases").json(),
        "trend by day": client.get(f"{base}/health/trend", params={"interval": "day"}).json(),
        "trend by week": client.get(f"{base}/health/trend", params={"interval": "week"}).json(),
    }


def test_pruned_windows_keep_their_numbers(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    client_a: httpx.Client,
) -> None:
    project = built.tenants.project_a
    before = _answers(client_a, project)
    old_sessions = {"release": "1.2.2", "status": "crashed", "limit": 1000}
    assert (
        len(
            client_a.get(f"/api/projects/{project}/sessions", params=old_sessions).json()[
                "sessions"
            ]
        )
        == 10
    )

    # The seed's retention: individual sessions older than 30 days (before 2026-10-21, counted
    # from the pipeline's clock on 2026-11-20) are deleted; the aggregates stay.
    dbt.run_dbt(["run-operation", "prune_sessions", "--args", "{days: 30}"], layout=copy_of_built)
    with connect_pipeline(copy_of_built) as con:
        publish(con)
    pruned = api_on(copy_of_built)

    headers = Tenants.headers(built.tenants.key_a)
    with httpx.Client(base_url=pruned.base_url, headers=headers, timeout=30) as client:
        after = _answers(client, project)
        remaining = client.get(f"/api/projects/{project}/sessions", params=old_sessions).json()
        old_detail = client.get(f"/api/projects/{project}/sessions/old-0000")

    assert remaining["sessions"] == []  # the old sessions themselves are gone ...
    assert old_detail.status_code == 404
    assert after == before  # ... and every window answers as before
    assert after["old releases"]["releases"][0]["total_users"] == 20
