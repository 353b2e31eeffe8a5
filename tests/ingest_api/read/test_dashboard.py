"""The release-health dashboard in headless Chromium, against the API under uvicorn on the read
suite's built warehouse (a private copy): log in, read the releases table and compare it with
the API's answers, then post a crashed session through the ingest API and run the pipeline (a
real dbt build of the hour it landed in, then a publish), and watch the row and the chart change
on the open page, without a reload. The key must never show up in a URL, a log line or the
page's HTML. With ``LOOM_UPDATE_SCREENSHOT=1`` the screenshot goes to docs/ for the README."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn

from dagster_project.runner import landed_hours
from ingest_api.main import create_app
from ingest_api.server import uvicorn_config
from tests.ingest_api.ingest.utils.server import wait_healthy
from tests.ingest_api.read.utils.warehouse import (
    DBT_TESTS,
    Built,
    RunningApi,
    Tenants,
    load_and_publish,
)
from tests.ingest_api.utils.dashboard_page import Page, open_page
from tests.utils.network import free_port
from warehouse import dbt
from warehouse.layout import Layout, naive_utc
from warehouse.registry import Registry
from warehouse.settings import Settings

pytestmark = pytest.mark.slow

SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "release-health-dashboard.png"

# The releases table, as the page shows it: one {column: text} per row, and whether it is the
# highlighted worst one.
TABLE = """[...document.querySelectorAll('#releases tbody tr')].map((tr) => ({
  worst: tr.classList.contains('worst'),
  ...Object.fromEntries([...tr.cells].map((td) => [td.dataset.key, td.textContent])),
}))"""
SESSION_IDS = "[...document.querySelectorAll('#sessions tbody tr')].map((tr) => tr.dataset.session)"
DATA_AS_OF = "document.querySelector('#data-as-of')"
SESSION_DETAIL = """Object.fromEntries([...document.querySelectorAll('#session-detail dt')].map(
  (dt) => [dt.textContent, dt.nextElementSibling.textContent]))"""
CAPTION = "document.querySelector('#health-caption').textContent"
ROW_TEXT = "document.querySelector('#releases tr[data-release=\"1.2.3\"]')?.textContent ?? ''"
CRASHED = {
    "start": {
        "session_id": "dashboard-crash-1",
        "distinct_id": "dashboard_user",
        "release": "1.2.3",
        "environment": "production",
        "platform": "javascript",
        "started_at": "2026-11-20T14:00:00Z",
        "sample_rate": 1.0,
    },
    "end": {
        "session_id": "dashboard-crash-1",
        "status": "crashed",
        "error_count": 1,
        "crash_count": 1,
        "ended_at": "2026-11-20T14:05:00Z",
        "duration_ms": 300_000,
    },
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Page]:
    opened = open_page()
    yield opened
    opened.close()


@pytest.fixture
def page(browser: Page, api_on: Callable[[Layout], RunningApi]) -> Iterator[Page]:
    """The browser's page, left for a blank one after the test, before the test's servers stop
    (it depends on them): its stream closes, and no subscription outlives the test."""
    yield browser
    browser.do("goto", url="about:blank")


class LogLines(logging.Handler):
    """Every line the server logs meanwhile: its access log (at INFO, whatever the test server's
    level) and everything reaching the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.access = logging.getLogger("uvicorn.access")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> LogLines:
        self.level_before = self.access.level
        self.access.setLevel(logging.INFO)
        for logger in (self.access, logging.getLogger()):
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in (self.access, logging.getLogger()):
            logger.removeHandler(self)
        self.access.setLevel(self.level_before)


def shown(release: dict) -> dict[str, object]:
    """A release of the API as the table must show it."""

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}%"

    def duration(ms: int | None) -> str:
        if ms is None:
            return "—"
        minutes, seconds = divmod(round(ms / 1000), 60)
        return (
            f"{minutes}m {seconds:02d}s"
            if minutes < 60
            else f"{minutes // 60}h {minutes % 60:02d}m"
        )

    return {
        "worst": release["release"] == "1.2.2",
        "release": release["release"],
        "crash_free_session_rate": percent(release["crash_free_session_rate"]),
        "crash_free_user_rate": percent(release["crash_free_user_rate"]),
        "total_sessions": f"{release['total_sessions']:,}",
        "total_users": f"{release['total_users']:,}",
        "error_rate": percent(release["error_rate"]),
        "avg_duration_ms": duration(release["avg_duration_ms"]),
        "adoption_rate": percent(release["adoption_rate"]),
        "current_adoption_rate": percent(release["current_adoption_rate"]),
        "peak_adoption_rate": percent(release["peak_adoption_rate"]),
        "adoption_stage": release["adoption_stage"],
        "first_seen": release["first_seen"][:16].replace("T", " "),
        "last_seen": release["last_seen"][:16].replace("T", " "),
    }


def numbers(table: list[dict[str, object]]) -> list[tuple[object, ...]]:
    keys = ("release", "crash_free_session_rate", "crash_free_user_rate")
    return [(*(row[k] for k in keys), row["total_sessions"], row["total_users"]) for row in table]


def api_table(client: httpx.Client, project: int) -> list[dict[str, object]]:
    """What the table must show for production, sorted as the page sorts it (most sessions)."""
    listed = client.get(f"/api/projects/{project}/releases", params={"environment": "production"})
    rows = []
    for release in listed.json()["releases"]:
        detail = client.get(
            f"/api/projects/{project}/releases/{release['release']}",
            params={"environment": "production"},
        ).json()
        rows.append(shown({**release, **detail}))
    return sorted(rows, key=lambda row: -int(str(row["total_sessions"]).replace(",", "")))


def trend_caption(client: httpx.Client, project: int, environment: str = "production") -> str:
    last = client.get(
        f"/api/projects/{project}/health/trend",
        params={"interval": "day", "environment": environment},
    ).json()
    point = last["trend"][-1]
    return (
        f"{environment}, day of {point['timestamp'][:16].replace('T', ' ')}:"
        f" {point['crash_free_session_rate']:.2f}% of sessions and"
        f" {point['crash_free_user_rate']:.2f}% of users crash-free"
        f" ({point['total_sessions']:,} sessions)."
    )


@pytest.mark.timeout(240)
def test_the_dashboard_shows_the_apis_numbers_and_follows_a_pipeline_run_live(
    page: Page,
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    tmp_path: Path,
) -> None:
    layout, tenants = copy_of_built, built.tenants
    project = tenants.project_a
    api = api_on(layout)
    reader = httpx.Client(base_url=api.base_url, headers=Tenants.headers(tenants.key_a))
    with LogLines() as logged, reader:
        page.log_in(api.base_url, tenants.key_a)
        page.wait("document.body.dataset.state === 'ready'")
        page.wait("document.querySelector('#live').dataset.state === 'live'")

        # The page shows the key's project and production, with the API's numbers; 1.2.2 has the
        # lowest crash-free session rate and is highlighted.
        assert page.do("eval", expression="document.querySelector('#environment').value") == (
            "production"
        )
        before = api_table(reader, project)
        assert page.do("eval", expression=TABLE) == before
        # The dataset's worked example: 1.2.3 has 9,550 sessions (50 crashed) → 99.48%, and 550
        # users (50 crashed) → 90.91%; 1.2.2 has 650 sessions (10 crashed) → 98.46%, 65 users
        # (10 crashed) → 84.62%. On 2026-11-20 production had 10,000 sessions of 595 users (the
        # chart is the environment's: staging's 10 sessions of qa are not in it).
        assert numbers(before) == [
            ("1.2.3", "99.48%", "90.91%", "9,550", "550"),
            ("1.2.2", "98.46%", "84.62%", "650", "65"),
        ]
        # Which data it shows: the snapshot every answer names (published before data times
        # were recorded), and how long ago.
        answered = reader.get(f"/api/projects/{project}/releases").headers
        shown_snapshot = page.do("eval", expression=f"{DATA_AS_OF}.dataset.snapshot")
        assert shown_snapshot == answered["Loom-Snapshot-Id"]
        assert re.fullmatch(
            rf"published ({answered['Loom-Published-At'][:10]} )?"
            rf"{answered['Loom-Published-At'][11:19]} UTC \(\d+ (s|min|h) ago\);"
            " data time unknown",
            page.do("eval", expression=f"{DATA_AS_OF}.textContent"),
        )
        caption_before = page.do("eval", expression=CAPTION)
        assert (
            caption_before
            == trend_caption(reader, project)
            == (
                "production, day of 2026-11-20 00:00: 99.50% of sessions and 91.60% of users"
                " crash-free (10,000 sessions)."
            )
        )
        screenshot = (
            SCREENSHOT
            if os.environ.get("LOOM_UPDATE_SCREENSHOT") == "1"
            else tmp_path / SCREENSHOT.name
        )

        # A crashed session arrives: the live stream puts it at the top of the sessions table.
        page.do("eval", expression="window.notReloaded = true")
        hours_before = set(landed_hours(layout))
        with httpx.Client(base_url=api.base_url, headers=Tenants.headers(tenants.write_key_a)) as w:
            assert w.post("/api/sessions/start", json=CRASHED["start"]).status_code == 200
            assert w.post("/api/sessions/end", json=CRASHED["end"]).status_code == 200
        page.wait(
            "document.querySelector('#sessions tbody tr')?.dataset.session === 'dashboard-crash-1'"
            " && document.querySelector('#sessions tbody tr .status').textContent === 'crashed'"
        )

        # The pipeline runs the hour the session landed in and publishes it.
        new_hours = sorted(set(landed_hours(layout)) - hours_before)
        window = (new_hours[0], new_hours[-1] + timedelta(hours=1))
        data_as_of = naive_utc(datetime.now(UTC)).replace(microsecond=0) - timedelta(seconds=2)
        snapshot = load_and_publish(
            layout,
            lambda: dbt.build(
                layout, window=window, exclude=DBT_TESTS, target_path=tmp_path / "dbt-target"
            ),
            data_as_of,
        )

        # release.health_changed updates the row, then the chart, on the same page: 1.2.3 gains
        # one crashed session and one crashed user: 9,551 sessions, 51 crashed → 99.47%;
        # 551 users, 51 crashed → 90.74%.
        page.wait(f"({ROW_TEXT}).includes('99.47%')")
        # The page says the data is now that run's, and its age counts up by itself.
        page.wait(f"{DATA_AS_OF}.dataset.snapshot === '{snapshot}'")
        age = re.compile(rf"data as of {data_as_of:%H:%M:%S} UTC \((\d+) s ago\)")
        shown_age = age.fullmatch(page.do("eval", expression=f"{DATA_AS_OF}.textContent"))
        assert shown_age is not None
        page.wait(
            f"/\\((\\d+) s ago/.exec({DATA_AS_OF}.textContent)?.[1] > {shown_age[1]}",
            timeout_ms=5_000,
        )
        after = api_table(reader, project)
        assert numbers(after) == [
            ("1.2.3", "99.47%", "90.74%", "9,551", "551"),
            ("1.2.2", "98.46%", "84.62%", "650", "65"),
        ]
        # The day's trend: 10,001 sessions, 51 crashed → 99.49%; 596 users, 51 crashed → 91.44%.
        caption_after = trend_caption(reader, project)
        assert caption_after == (
            "production, day of 2026-11-20 00:00: 99.49% of sessions and 91.44% of users"
            " crash-free (10,001 sessions)."
        )
        page.wait(f"({CAPTION}) === {json.dumps(caption_after)}")
        assert page.do("eval", expression=TABLE) == after
        assert page.do("eval", expression="window.notReloaded") is True
        page.do("screenshot", path=str(screenshot))

        # The status filter asks the API; a row's detail comes from the warehouse now.
        crashed = reader.get(
            f"/api/projects/{project}/sessions", params={"status": "crashed", "limit": 50}
        ).json()["sessions"]
        assert [s["id"] for s in crashed[:2]] == ["dashboard-crash-1", "s123-0049"]
        page.do("click", selector="#status-filter button[data-status=crashed]")
        page.wait(f"({SESSION_IDS}).length === 50 && ({SESSION_IDS})[1] === 's123-0049'")
        assert page.do("eval", expression=SESSION_IDS) == [s["id"] for s in crashed]
        page.do("click", selector="#sessions tbody tr[data-session=dashboard-crash-1]")
        page.wait("!document.querySelector('#session-detail').hidden")
        assert page.do("eval", expression=SESSION_DETAIL) == {
            "session": "dashboard-crash-1",
            "status": "crashed",
            "release": "1.2.3",
            "environment": "production",
            "person": crashed[0]["person_id"],
            "platform": "javascript",
            "errors": "1",
            "crashes": "1",
            "duration": "5m 00s",
            "started (UTC)": "2026-11-20 14:00",
            "ended (UTC)": "2026-11-20 14:05",
        }
        assert screenshot.stat().st_size > 30_000

        # The key is in sessionStorage and nowhere else.
        key = tenants.key_a
        assert page.do("eval", expression="sessionStorage.getItem('loom.dashboard.key')") == key
        assert key not in page.do("html")
        activity = page.do("log")
        assert activity["errors"] == []
        # Nothing from the network but the page's own origin (the chart library is vendored),
        # which its policy enforces, form submissions included.
        assert [url for url in activity["requested"] if not url.startswith(api.base_url)] == []
        policy = httpx.get(f"{api.base_url}/dashboard").headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "form-action 'none'" in policy
        assert not [url for url in activity["requested"] if key in url]
        assert not [line for line in activity["console"] if key in line]
    assert any("/api/projects/" in line for line in logged.lines)  # the access log was captured
    assert not [line for line in logged.lines if key in line]


ERROR = "document.querySelector('#error').textContent"


@pytest.mark.timeout(120)
def test_the_page_says_in_words_why_it_shows_nothing(
    page: Page,
    api: RunningApi,
    built: Built,
    api_on: Callable[[Layout], RunningApi],
    tmp_path: Path,
) -> None:
    tenants = built.tenants
    page.log_in(api.base_url, "loom_analytics_rw_not-a-key")
    page.wait("document.body.dataset.state === 'login' && !document.querySelector('#error').hidden")
    assert page.do("eval", expression=ERROR) == (
        "This key was not accepted (unknown API key). Log in with a valid read key."
    )

    page.log_in(api.base_url, tenants.write_key_a)
    page.wait(f"({ERROR}).startsWith('This is a write key')")
    assert page.do("eval", expression="sessionStorage.getItem('loom.dashboard.key')") is None

    # Another org's project answers like one that does not exist: back to the login.
    page.log_in(api.base_url, tenants.key_a, tenants.project_b)
    page.wait("document.body.dataset.state === 'login' && !document.querySelector('#error').hidden")
    assert page.do("eval", expression=ERROR) == (
        f"Project {tenants.project_b} was not found: it does not exist, or it belongs to another"
        " organisation than this key's."
    )

    # A new install, before the pipeline's first run.
    fresh = Layout(tmp_path / "fresh")
    with Registry.open(fresh) as registry:
        key = registry.create_key("newco", "app", "rw").key
    page.log_in(api_on(fresh).base_url, key)
    page.wait("document.body.dataset.state === 'error'")
    assert page.do("eval", expression=ERROR) == (
        "Nothing has been published yet: the pipeline has not completed its first run."
        " This page tries again every minute."
    )
    assert page.do("eval", expression="document.querySelector('#dashboard').hidden") is True


def serve(layout: Layout, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """The app as `loom serve` runs it, stopping within a second even with streams open: a
    stopped server drops them, as a restart or a crash would."""
    settings = Settings(data_dir=layout.data_dir, port=port)
    server = uvicorn.Server(
        uvicorn_config(
            settings, app=create_app(settings), log_level="critical", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_healthy(f"http://127.0.0.1:{port}")
    return server, thread


def stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=15)
    assert not thread.is_alive()


@pytest.mark.timeout(120)
def test_the_page_reconnects_to_the_stream_after_a_drop(
    page: Page, built: Built, copy_of_built: Layout
) -> None:
    tenants = built.tenants
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    first = serve(copy_of_built, port)
    try:
        page.log_in(base_url, tenants.key_a)
        page.wait("document.querySelector('#live').dataset.state === 'live'")
        assert page.do("eval", expression="document.body.dataset.loads") == "1"
    finally:
        stop(*first)
    page.wait("document.querySelector('#live').dataset.state === 'waiting'")

    second = serve(copy_of_built, port)
    try:
        # Back on the stream, and everything fetched again (events may have been missed).
        page.wait("document.querySelector('#live').dataset.state === 'live'")
        page.wait("document.body.dataset.loads === '2'")
        with httpx.Client(base_url=base_url, headers=Tenants.headers(tenants.write_key_a)) as w:
            assert w.post("/api/sessions/start", json=CRASHED["start"]).status_code == 200
        page.wait(
            "document.querySelector('#sessions tbody tr')?.dataset.session === 'dashboard-crash-1'"
        )
        assert (
            page.do(
                "eval",
                expression="document.querySelector('#sessions tbody tr .status').textContent",
            )
            == "active"
        )
    finally:
        stop(*second)


ENVIRONMENT = "document.querySelector('#environment').value"
ENVIRONMENTS = "[...document.querySelector('#environment').options].map((o) => o.value)"
SESSION_ENVIRONMENTS = (
    "[...new Set([...document.querySelectorAll('#sessions tbody tr')].map((tr) => tr.cells[3]"
    ".textContent))]"
)
# Where the releases table ends against its card and the page against the window, in pixels.
LAYOUT = """(() => {
  const card = document.querySelector('#releases').parentElement
  const lastSeen = document.querySelector('#releases th[data-key="last_seen"]')
  const cut = lastSeen.getBoundingClientRect().right - card.getBoundingClientRect().right
  return {
    page_overflow: document.documentElement.scrollWidth - window.innerWidth,
    table_overflow: card.scrollWidth - card.clientWidth,
    last_seen_cut: Math.max(0, Math.round(cut)),
  }
})()"""
FITS = {"page_overflow": 0, "table_overflow": 0, "last_seen_cut": 0}


def choose(page: Page, environment: str) -> None:
    page.do(
        "eval",
        expression=f"(() => {{ const s = document.querySelector('#environment');"
        f" s.value = {json.dumps(environment)}; s.dispatchEvent(new Event('change')) }})()",
    )
    page.wait(f"document.body.dataset.state === 'ready' && ({ENVIRONMENT}) === '{environment}'")


def trend_environments(page: Page, base_url: str) -> list[str | None]:
    """The environment of every health/trend request the page made so far, in order."""
    requested = page.do("log")["requested"]
    return [
        parse_qs(urlsplit(url).query).get("environment", [None])[0]
        for url in requested
        if url.startswith(base_url) and "/health/trend" in url
    ]


@pytest.mark.timeout(180)
def test_the_dashboard_opens_on_production_and_filters_every_panel_by_environment(
    page: Page, experiment_api: RunningApi, experiment_built: Built
) -> None:
    """On the experiment build, staging has 20,014 sessions against production's 10,200
    (newcomer_dataset.py), and releases and session ids 200 characters long."""
    tenants, base = experiment_built.tenants, experiment_api.base_url
    project = tenants.project_a
    reader = httpx.Client(base_url=base, headers=Tenants.headers(tenants.key_a), timeout=30)
    with reader:
        page.log_in(base, tenants.key_a)
        page.wait("document.body.dataset.state === 'ready'")
        page.wait("document.querySelector('#live').dataset.state === 'live'")

        # Production, although staging is the busiest (listed first), and said in the URL.
        assert page.do("eval", expression=ENVIRONMENTS)[:2] == ["staging", "production"]
        assert page.do("eval", expression=ENVIRONMENT) == "production"
        assert page.do("eval", expression="location.hash") == "#environment=production"
        # Every panel is production's: the table, the chart (its trend request and caption), the
        # recent sessions.
        assert page.do("eval", expression=TABLE) == api_table(reader, project)
        assert trend_environments(page, base) == ["production"]
        assert page.do("eval", expression=CAPTION) == trend_caption(reader, project)
        assert page.do("eval", expression=SESSION_ENVIRONMENTS) == ["production"]
        assert page.do("eval", expression=LAYOUT) == FITS  # at 1,400 px

        # A session starting in staging is not production's; one in production shows up live.
        with httpx.Client(base_url=base, headers=Tenants.headers(tenants.write_key_a)) as w:
            for environment in ("staging", "production"):
                start = {**CRASHED["start"], "session_id": f"live-{environment}"}
                start["environment"] = environment
                assert w.post("/api/sessions/start", json=start).status_code == 200
        page.wait(
            "document.querySelector('#sessions tbody tr')?.dataset.session === 'live-production'"
        )
        assert "live-staging" not in page.do("eval", expression=SESSION_IDS)

        # Staging: every panel follows, and the URL says so.
        choose(page, "staging")
        assert page.do("eval", expression="location.hash") == "#environment=staging"
        staging = reader.get(
            f"/api/projects/{project}/releases", params={"environment": "staging"}
        ).json()["releases"]
        table = page.do("eval", expression=TABLE)
        assert sorted(row["release"] for row in table) == sorted(r["release"] for r in staging)
        assert trend_environments(page, base)[-1] == "staging"
        assert page.do("eval", expression=CAPTION) == trend_caption(reader, project, "staging")
        assert page.do("eval", expression=SESSION_ENVIRONMENTS) == ["staging"]
        # a 200-character release or session id is cut, not the page
        assert page.do("eval", expression=LAYOUT) == FITS

        # The page loaded anew (the key is in the tab's sessionStorage) opens the environment its
        # URL names.
        page.do("goto", url="about:blank")
        page.do("goto", url=f"{base}/#environment=staging")
        page.wait("document.body.dataset.state === 'ready' && document.body.dataset.loads === '1'")
        assert page.do("eval", expression=ENVIRONMENT) == "staging"
        assert page.do("eval", expression=SESSION_ENVIRONMENTS) == ["staging"]
        requested = page.do("log")["requested"]
        assert not [url for url in requested if tenants.key_a in url]
        assert tenants.key_a not in page.do("eval", expression="location.href")
