"""Windows older than the 30-day session retention answer from the forever-kept aggregates, with
the same numbers they had before their sessions were pruned; a prune is visible as soon as it
finishes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import dagster as dg
import httpx
import pytest

from dagster_project.runner import materialize_hours
from tests.dagster_project.utils.pipeline import loom_data_dir
from tests.ingest_api.read.utils.answers import without_snapshot
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from tests.utils.serving import wait_until_serving_latest_publish
from warehouse import dbt
from warehouse.layout import Layout

pytestmark = pytest.mark.slow

OLD_WINDOW = {"start_date": "2026-10-01", "end_date": "2026-10-02"}
RECENT_WINDOW = {"start_date": "2026-11-20", "end_date": "2026-11-21"}
OLD_SESSIONS_HOUR = datetime(2026, 10, 1, 10)  # when the old sessions' starts were received


def _answers(client: httpx.Client, project: int) -> dict[str, object]:
    base = f"/api/projects/{project}"
    asked = {
        "old releases": (f"{base}/releases", OLD_WINDOW),
        "old detail": (f"{base}/releases/1.2.2", OLD_WINDOW),
        "recent releases": (f"{base}/releases", RECENT_WINDOW),
        "whole history": (f"{base}/releases", {}),
        "trend by day": (f"{base}/health/trend", {"interval": "day"}),
        "trend by week": (f"{base}/health/trend", {"interval": "week"}),
    }
    # The numbers, whichever publish they are read from (the prune publishes a new one).
    return {
        name: without_snapshot(client.get(path, params=params).json())
        for name, (path, params) in asked.items()
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
    # An API already serving the copy, as readers would be when the daily retention runs.
    serving = api_on(copy_of_built)
    headers = Tenants.headers(built.tenants.key_a)
    with httpx.Client(base_url=serving.base_url, headers=headers, timeout=30) as client:
        sessions_url = f"/api/projects/{project}/sessions"
        assert len(client.get(sessions_url, params=old_sessions).json()["sessions"]) == 10
        assert client.get(f"{sessions_url}/old-0000").status_code == 200

        # The seed's retention: individual sessions older than 30 days (before 2026-10-21,
        # counted from the pipeline's clock on 2026-11-20) are deleted; the aggregates stay. The
        # prune publishes its own snapshot: no pipeline run follows it here.
        dbt.run_dbt(
            ["run-operation", "prune_sessions", "--args", "{days: 30}"], layout=copy_of_built
        )
        old_detail = _when_gone(client, f"{sessions_url}/old-0000")
        after = _answers(client, project)
        remaining = client.get(sessions_url, params=old_sessions).json()

        # `loom run --hour 2026-10-01T10:00`: the hour's raw rows are loaded and built again,
        # and published; retention keeps them out of the sessions.
        with loom_data_dir(copy_of_built.data_dir):
            [rerun] = materialize_hours([OLD_SESSIONS_HOUR], dg.DagsterInstance.ephemeral())
        assert rerun.success, rerun.progress_line()
        wait_until_serving_latest_publish(serving.server.config.app.state.marts, copy_of_built)
        after_rerun = _answers(client, project)
        rerun_detail = client.get(f"{sessions_url}/old-0000")
        rerun_remaining = client.get(sessions_url, params=old_sessions).json()

    assert old_detail.status_code == 404
    assert remaining["sessions"] == []  # the old sessions themselves are gone ...
    assert after == before  # ... and every window answers as before
    assert after["old releases"]["releases"][0]["total_users"] == 20
    assert (rerun_detail.status_code, rerun_remaining["sessions"]) == (404, [])
    assert after_rerun == before


def _when_gone(client: httpx.Client, path: str, timeout: float = 15) -> httpx.Response:
    """The answer to ``path`` once it is a 404: the API follows a new publish within about a
    second (it polls for one, then attaches it)."""
    deadline = time.monotonic() + timeout
    while (response := client.get(path)).status_code == 200:
        assert time.monotonic() < deadline, f"{path} still answers 200 after {timeout} s"
        time.sleep(0.2)
    return response
