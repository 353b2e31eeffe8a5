"""The dashboard's alerts panel in headless Chromium: it lists the project's rules with their
states, and when the pipeline host judges a rule critical (the real evaluation on the published
snapshot, recorded in the registry) the open page shows it through the live stream, without a
reload, the row marked."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from tests.ingest_api.utils.dashboard_page import open_page
from warehouse.alert_evaluation import evaluate_rules
from warehouse.alert_store import AlertStore
from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.published import kept_publishes_of

pytestmark = pytest.mark.slow

RULE = {
    "name": "Crash-free sessions, last 30 days",
    "metric": "crash_free_session_rate",
    "window_hours": 720,
    "critical_threshold": 99.99,
    "min_sessions": 1,
}


def row(rule_id: str) -> str:
    return f"document.querySelector('#alert-{rule_id}')"


def test_the_panel_lists_the_rules_and_follows_their_states_live(
    built: Built, copy_of_built: Layout, api_on: Callable[[Layout], RunningApi]
) -> None:
    layout, tenants = copy_of_built, built.tenants
    api = api_on(layout)
    headers = Tenants.headers(tenants.key_a)
    alerts = f"{api.base_url}/api/projects/{tenants.project_a}/alerts"
    rule_id = httpx.post(alerts, json=RULE, headers=headers).json()["id"]
    page = open_page()
    try:
        page.log_in(api.base_url, tenants.key_a)
        page.wait("document.body.dataset.state === 'ready'")
        page.wait("document.querySelector('#live').dataset.state === 'live'")
        cells = f"[...{row(rule_id)}.cells].map((td) => td.textContent)"
        name, condition, state, value, since = page.do("eval", expression=cells)
        assert (name, state, value, since) == (RULE["name"], "ok", "not judged yet", "—")
        assert condition == (
            "crash-free sessions < 99.99% over 720 h, every environment, every release,"
            " at least 1 sessions"
        )

        # The pipeline host judges the rule on the published snapshot.
        publish = kept_publishes_of(layout).newest()
        assert publish is not None
        with AlertStore.open(layout) as store, connect_reader(layout, publish.snapshot_id) as con:
            [result] = evaluate_rules(
                con, store, store.rules_behind(publish.snapshot_id), publish, api.base_url
            )
        assert result.event is not None and result.judgement is not None

        page.wait(f"{row(rule_id)}.dataset.state === 'critical'")
        page.wait(f"{row(rule_id)}.cells[3].textContent.includes('{result.judgement.release}')")
        assert page.do("eval", expression=f"{row(rule_id)}.classList.contains('changed')")
        [listed] = httpx.get(alerts, headers=headers).json()["alerts"]
        shown = page.do("eval", expression=f"{row(rule_id)}.cells[3].textContent")
        assert (
            shown
            == f"{listed['value']}% ({listed['value_release']}, {listed['value_environment']})"
        )

        # The webhook's link opens the dashboard on the rule's environment, the rule marked, and
        # choosing the environment again keeps the mark in the URL.
        page.do("goto", url=result.event.payload["link"])
        page.wait("document.body.dataset.state === 'ready'")
        assert page.do("eval", expression=f"{row(rule_id)}.classList.contains('changed')")
        assert page.do("eval", expression="document.querySelector('#environment').value") == (
            result.judgement.environment
        )
        assert page.do("eval", expression="location.hash") == (
            f"#alert={rule_id}&environment={result.judgement.environment}"
        )
    finally:
        page.do("goto", url="about:blank")
        page.close()
