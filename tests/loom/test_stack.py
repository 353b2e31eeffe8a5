"""``loom up``: the local stack ``make up`` starts. On a fresh data directory it fills the
dashboard with the demo's day (a one-shot ``loom demo --api`` child); once anything has landed,
it leaves the data alone. With nobody running anything, a crashed session posted to it reaches
the live stream's release health within seconds: the micro-batch sensor builds it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from loom.stack import is_first_start
from tests.ingest_api.ingest.utils.server import LOOM, wait_healthy
from tests.ingest_api.read.utils.sse import Message, SseReader
from tests.ingest_api.utils.dashboard_page import open_page
from tests.utils.network import free_port
from warehouse.layout import Layout

# Sessions per release the demo's day adds up to, sampling-adjusted (its traffic is seeded).
DEMO_SESSIONS = {"1.0.0": 449, "1.1.0": 413, "1.2.0": 380}
DEMO_BUILT_WITHIN_S = 240
# The bound on what `make test` shows: with a short cadence, a crashed session posted to
# the API is in release.health_changed within this long, with no run started by hand.
HEALTH_CHANGED_WITHIN_S = 30
MICRO_BATCH_SECONDS = 5
HOUR = datetime(2026, 11, 20, 14)

RELEASES_SHOWN = """Object.fromEntries([...document.querySelectorAll('#releases tbody tr')].map(
  (tr) => [tr.dataset.release, tr.querySelector('[data-key=total_sessions]').textContent]))"""
CHART_LEGENDS = """['#health-chart', '#adoption-chart'].map((chart) =>
  document.querySelector(`${chart} canvas`) ? document.querySelector(chart).textContent : '')"""


def wait_for_demo_releases(
    base_url: str, keys: dict, process: subprocess.Popen, log_path: Path
) -> None:
    """Until the API serves what the demo task built and published: the
    releases route answers 503 (nothing published) until then, and could show a partial build
    for a moment should the schedule run an hour the demo is still posting to."""
    deadline = time.monotonic() + DEMO_BUILT_WITHIN_S
    url = f"{base_url}/api/projects/{keys['project_id']}/releases"
    headers = {"Authorization": f"Bearer {keys['rw_key']}"}
    shown: dict[str, int] | str = "nothing yet"
    while time.monotonic() < deadline and process.poll() is None:
        response = httpx.get(url, headers=headers, timeout=10)
        assert response.status_code in (200, 503), response.text  # 503: nothing published yet
        if response.status_code == 200:
            shown = {r["release"]: r["total_sessions"] for r in response.json()["releases"]}
            if shown == DEMO_SESSIONS:
                return
        time.sleep(1)
    output = [line for line in log_path.read_text().splitlines() if '"POST /' not in line]
    raise AssertionError(
        f"the API showed {shown}, not the demo's {DEMO_SESSIONS}; loom up's output, its access"
        " log's POSTs left out, ends with:\n" + "\n".join(output[-40:])
    )


def release_row(base_url: str, keys: dict, release: str) -> dict:
    response = httpx.get(
        f"{base_url}/api/projects/{keys['project_id']}/releases",
        headers={"Authorization": f"Bearer {keys['rw_key']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return next(row for row in response.json()["releases"] if row["release"] == release)


def crash_reaches_the_stream(base_url: str, keys: dict, crashed_sessions: int) -> Message:
    """Post a crashed session of release 1.2.0 and wait for the stream's release.health_changed
    counting it (``crashed_sessions`` in all): the sensor's micro-batch loads, builds and
    publishes it, and the API follows."""
    project = keys["project_id"]
    stream = SseReader(
        f"{base_url}/api/projects/{project}/sessions/stream",
        {"Authorization": f"Bearer {keys['rw_key']}"},
    ).start()
    try:
        stream.until(lambda message: message.comment == "subscribed")
        posted = time.monotonic()
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with httpx.Client(base_url=base_url, headers={"X-API-Key": keys["write_key"]}) as api:
            start = {
                "session_id": "crash-after-demo",
                "distinct_id": "late-user",
                "release": "1.2.0",
                "platform": "javascript",
                "started_at": now,
            }
            end = {"session_id": "crash-after-demo", "status": "crashed", "crash_count": 1}
            assert api.post("/api/sessions/start", json=start).status_code == 200
            assert api.post("/api/sessions/end", json=end).status_code == 200
        changed = stream.until(
            lambda message: (
                message.event == "release.health_changed" and message.data["release"] == "1.2.0"
            ),
            timeout=HEALTH_CHANGED_WITHIN_S,
        )[-1]
        assert time.monotonic() - posted <= HEALTH_CHANGED_WITHIN_S
        return changed
    finally:
        stream.close()


@pytest.mark.slow
def test_first_loom_up_shows_the_demos_releases_follows_new_crashes_and_stops_on_ctrl_c(
    data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LOOM_DATA_DIR": str(data_dir),
        "LOOM_PORT": str(port),
        "LOOM_DAGSTER_PORT": str(free_port()),  # whatever else `up` starts stays off shared ports
        "LOOM_MICRO_BATCH_SECONDS": str(MICRO_BATCH_SECONDS),
    }
    log_path = tmp_path / "up.log"  # a file: a pipe nobody reads would block the children
    with log_path.open("wb") as log:
        process = subprocess.Popen([*LOOM, "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(base_url, process=process)
        keys = json.loads((data_dir / "demo-keys.json").read_text())
        wait_for_demo_releases(base_url, keys, process, log_path)

        page = open_page()
        try:
            page.log_in(base_url, keys["rw_key"])
            page.wait(
                f"document.querySelectorAll('#releases tbody tr').length === {len(DEMO_SESSIONS)}"
            )
            assert page.do("eval", expression=RELEASES_SHOWN) == {
                release: f"{sessions:,}" for release, sessions in DEMO_SESSIONS.items()
            }
            page.wait(f"({CHART_LEGENDS}).every((legend) => legend.includes('1.2.0'))")
        finally:
            page.close()
        before = release_row(base_url, keys, "1.2.0")
        changed = crash_reaches_the_stream(base_url, keys, before["crashed_sessions"] + 1)
        assert changed.data["total_sessions"] == before["total_sessions"] + 1
        assert changed.data["crash_free_session_rate"] < before["crash_free_session_rate"]
        process.send_signal(signal.SIGINT)  # to `loom up` only: it must stop its children itself
        process.wait(timeout=60)
    finally:
        if process.poll() is None:  # the test failed midway: still stop the children via `up`
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    output = log_path.read_text()
    assert process.returncode == 0, output[-2000:]
    assert keys["write_key"] in output and keys["rw_key"] in output
    assert "demo data: done" in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/healthz", timeout=1)


def test_only_an_untouched_data_directory_gets_the_demo(layout: Layout) -> None:
    assert is_first_start(layout)
    landed = layout.hour_dir("events", "org_1", HOUR) / "part-1.ndjson"
    landed.parent.mkdir(parents=True)
    landed.write_text("{}\n")
    assert layout.landed_hours("events") == {HOUR}
    assert not is_first_start(layout)


def test_a_data_directory_with_a_lake_gets_no_demo(layout: Layout) -> None:
    layout.lake.prepare()  # what the first pipeline run does before anything else
    assert not is_first_start(layout)
