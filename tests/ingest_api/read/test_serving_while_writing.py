"""Reads keep answering while the pipeline writes: the API is queried in a loop, and an analyst
keeps a connection to the published snapshot open and querying, during a real ``dbt build`` (a
separate process writing the lake) and the publish that follows it. The build never fails
because of them; every answer is the previous run's or the new run's, whole, and never an error;
once a request has seen the new run no later one sees the old; and the SSE stream announces the
releases whose health the run changed, with the new numbers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from bench.generate import write_records
from tests.ingest_api.read.utils.dataset import DAY, Session, at, session_records
from tests.ingest_api.read.utils.sse import SseReader
from tests.ingest_api.read.utils.warehouse import (
    DBT_TESTS,
    Built,
    RunningApi,
    Tenants,
    load_and_publish,
)
from warehouse.dbt import window_vars
from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.published import published_snapshot_id

pytestmark = pytest.mark.slow

NEW_HOUR = at(DAY, 13, 0)


def _new_sessions(org_id: str, project_id: int) -> list[Session]:
    # 100 more sessions of 1.2.3 in production at rate 1.0, by new_0..9; the first 10 crash.
    return [
        Session(
            org_id,
            project_id,
            f"new-{n:03d}",
            f"new_{n % 10}",
            "1.2.3",
            "production",
            at(DAY, 13, 0, 10 * n),
            1.0,
            "crashed" if n < 10 else "exited",
            crash_count=int(n < 10),
        )
        for n in range(100)
    ]


def _dbt_build_in_another_process(layout: Layout, target: Path) -> subprocess.Popen:
    loom = Path(sys.executable).parent / "loom"
    window = orjson.dumps(window_vars(NEW_HOUR, NEW_HOUR + timedelta(hours=1))).decode()
    env = {
        **os.environ,
        "LOOM_DATA_DIR": str(layout.data_dir),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [str(loom), "dbt", "build", "--vars", window, "--exclude", *DBT_TESTS.split()]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class Analyst(threading.Thread):
    """An analyst's session: one connection to the published snapshot, kept open and querying
    (the act that used to fail the pipeline with a lock error)."""

    def __init__(self, layout: Layout, snapshot: int) -> None:
        super().__init__(daemon=True)
        self.connection = connect_reader(layout, snapshot=snapshot)
        self.results: list[object] = []
        self.stop = threading.Event()

    def run(self) -> None:
        query = (
            "select release, sum(total_sessions) from warehouse.analytics.release_health"
            " group by all order by all"
        )
        while not self.stop.is_set():
            try:
                self.results.append(self.connection.execute(query).fetchall())
            except Exception as error:  # recorded, and the test fails on it
                self.results.append(error)
            self.stop.wait(0.05)
        self.connection.close()


class Poller(threading.Thread):
    """GETs ``paths`` round-robin until stopped, recording (time, path, status, body)."""

    def __init__(self, base_url: str, headers: dict[str, str], paths: list[str]) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=30)
        self.paths = paths
        self.answers: list[tuple[float, str, int, object]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for path in self.paths:
                response = self.client.get(path)
                body = response.json() if response.status_code == 200 else response.text
                self.answers.append((time.monotonic(), path, response.status_code, body))
            # A steady stream of requests, leaving the 2 cores mostly to dbt.
            self.stop.wait(0.05)
        self.client.close()


def test_reads_during_a_dbt_build_see_the_old_or_the_new_run_never_a_mix(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    tmp_path: Path,
) -> None:
    layout, tenants = copy_of_built, built.tenants
    api = api_on(layout)
    project = tenants.project_a
    paths = [
        f"/api/projects/{project}/releases",
        f"/api/projects/{project}/releases/1.2.3",
        f"/api/projects/{project}/health/trend?interval=hour&start_date=2026-11-20",
        f"/api/projects/{project}/sessions?release=1.2.3&limit=5",
    ]
    headers = Tenants.headers(tenants.key_a)
    with httpx.Client(base_url=api.base_url, headers=headers) as client:
        old = {path: client.get(path).json() for path in paths}
    stream = SseReader(f"{api.base_url}/api/projects/{project}/sessions/stream", headers).start()
    assert stream.next(skip_comments=False).comment == "subscribed"
    old_snapshot = published_snapshot_id(layout)
    assert old_snapshot is not None
    analyst = Analyst(layout, old_snapshot)
    analyst.start()

    sessions = _new_sessions(tenants.org_a, project)
    write_records(layout, "sessions", [r for s in sessions for r in session_records(s)], tag="new")
    poller = Poller(api.base_url, headers, paths)
    poller.start()

    def build() -> None:
        process = _dbt_build_in_another_process(layout, tmp_path / "dbt-target")
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output.decode()[-3000:]

    load_and_publish(layout, build)
    built_at = time.monotonic()  # published right after the build, not before
    time.sleep(1.5)  # the API answers from a publish within a second (test_freshness.py)
    poller.stop.set()
    analyst.stop.set()
    poller.join(timeout=30)
    analyst.join(timeout=30)

    with httpx.Client(base_url=api.base_url, headers=headers) as client:
        new = {path: client.get(path).json() for path in paths}
    errors = [(path, status, body) for _, path, status, body in poller.answers if status != 200]
    assert errors == []
    during_build = [answer for answer in poller.answers if answer[0] < built_at]
    assert len(during_build) >= 20, "the loop should have kept answering while dbt ran"
    assert all(body == old[path] for _, path, _, body in during_build)
    saw_new = False
    for moment, path, _, body in poller.answers:
        assert body in (old[path], new[path]), f"{path} answered neither run's result"
        is_new = body == new[path] != old[path]
        assert not (saw_new and body == old[path] != new[path]), "went back to the old run"
        assert not is_new or moment > built_at, "saw the new run before it was published"
        saw_new = saw_new or is_new
    assert saw_new
    assert published_snapshot_id(layout) != old_snapshot
    # The analyst's session stayed on its snapshot, undisturbed, and never held the run up.
    assert len(analyst.results) >= 20
    assert all(result == analyst.results[0] for result in analyst.results)

    # The new run's numbers: 1.2.3 production gains 100 sessions (10 crashed) and 10 users who
    # all crashed: 9,650 sessions, 60 crashed → 99.38%; 560 users, 60 crashed → 89.29%;
    # 9,650 of 10,300 production sessions → 93.69%. 1.2.2's adoption falls to 6.31%.
    new_123 = new[paths[1]]
    assert {k: new_123[k] for k in ("total_sessions", "crashed_sessions", "total_users")} == {
        "total_sessions": 9650,
        "crashed_sessions": 60,
        "total_users": 560,
    }
    assert (new_123["crash_free_session_rate"], new_123["crash_free_user_rate"]) == (99.38, 89.29)
    assert (new_123["adoption_rate"], new_123["last_seen"]) == (93.69, "2026-11-20T13:16:30Z")

    changed = {}
    while len(changed) < 2:
        message = stream.next(timeout=15)
        if message.event == "release.health_changed":
            changed[(message.data["release"], message.data["environment"])] = message.data
    stream.close()
    assert changed[("1.2.3", "production")] == {"project_id": project, **new_123}
    assert changed[("1.2.2", "production")]["adoption_rate"] == 6.31
