"""One lake, many machines: a PostgreSQL catalog and a shared data path, used at the same time by
the pipeline (``loom run``), two read-API processes with data directories of their own (standing
in for two hosts) and an analyst's ``loom sql`` loop. While the catalog is down, reads answer 503
and a run fails loudly; once it is back, the run goes through, nothing fails, and every answer
equals what the same data gives on a SQLite catalog; it goes away again under open snapshots and
comes back, and the readers recover by themselves. Dagster's storage lives in the same
PostgreSQL: a standby pipeline host (a data directory of its own) sees the pipeline host's runs,
and when both run the same hour, one writes, the other waits, and the answers stay a single
run's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from dagster_project.instance import prepare_dagster_home, warehouse_instance
from ingest_api.read.events import EventFilter, list_events
from ingest_api.read.persons import list_persons
from ingest_api.read.releases import health_trend, list_releases, release_detail
from ingest_api.read.rendering import dumps
from ingest_api.read.sessions import list_sessions
from tests.ingest_api.ingest.utils.server import wait_healthy
from tests.ingest_api.read.utils.dataset import DAY, land_dataset
from tests.ingest_api.read.utils.warehouse import DBT_TESTS, load_and_publish
from tests.utils.lease import hold_lease
from tests.utils.network import free_port
from tests.utils.postgres import PostgresServer, remove, start_postgres
from warehouse import dbt
from warehouse.layout import Layout
from warehouse.published import PublishedMarts
from warehouse.registry import Registry
from warehouse.writer_lease import KEEPALIVE_BOUND_S, writer_lease

pytestmark = pytest.mark.slow

LOOM = [sys.executable, "-m", "loom"]
FIRST_HOUR, LAST_HOUR = "2026-11-20T00:00", "2026-11-20T12:00"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    remove(server)


def land_one_day(layout: Layout, org_a: str, project_a: int, org_b: str, project_b: int) -> None:
    """The read-API dataset's 2026-11-20 (its older day would make a 50-day range)."""
    land_dataset(layout, org_a, project_a, org_b, project_b)
    for old in layout.landing_dir.glob("*/org_id=*/date=*"):
        if old.name != f"date={DAY:%Y-%m-%d}":
            shutil.rmtree(old)


def hours_materialized(layout: Layout) -> dict[str, set[str]]:
    """The partitions Dagster records as materialized, for each hourly asset."""
    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    with warehouse_instance(layout) as instance:
        return {
            key.to_user_string(): set(instance.get_materialized_partitions(key))
            for key in graph.get_all_asset_keys()
            if graph.get(key).is_materializable and graph.get(key).partitions_def is not None
        }


def answers_from_queries(layout: Layout, org: str, project: int) -> dict[str, object]:
    """What the read API answers, computed by its query functions on a lake directly."""
    marts = PublishedMarts(layout)
    try:
        with marts.cursor() as cur:
            found = {
                "releases": list_releases(cur, org, project, None, None, None),
                "release": release_detail(cur, org, project, "1.2.3", None, None, None),
                "trend": health_trend(cur, org, project, "hour", None, None),
                "sessions": list_sessions(cur, org, project, None, None, 50),
                "events": list_events(cur, EventFilter(org), 50, None),
                "persons": list_persons(cur, org, 100, 0),
            }
    finally:
        marts.close()
    return orjson.loads(dumps(found))


def answers_over_http(base_url: str, key: str, project: int) -> dict[str, object]:
    """What the read API answers, without the snapshot each answer names (the catalogs differ)."""
    paths = {
        "releases": f"/api/projects/{project}/releases",
        "release": f"/api/projects/{project}/releases/1.2.3",
        "trend": f"/api/projects/{project}/health/trend?interval=hour",
        "sessions": f"/api/projects/{project}/sessions?limit=50",
        "events": "/api/analytics/events?limit=50",
        "persons": "/api/analytics/persons",
    }
    answers = {}
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30) as client:
        for name, path in paths.items():
            response = client.get(path)
            answer = response.json()
            snapshot = answer.pop("snapshot")
            assert response.headers["Loom-Snapshot-Id"] == str(snapshot["id"])
            answers[name] = answer
    return answers


class Watcher(threading.Thread):
    """Keeps calling ``poke`` until stopped, and once more after: records what each call gave, the
    last one made once whatever the caller waited for was done."""

    def __init__(self, poke: Callable[[], object], pause: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.poke = poke
        self.pause = pause
        self.seen: list[object] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            stopping = self.stop.is_set()
            try:
                self.seen.append(self.poke())
            except httpx.HTTPError as error:  # recorded, so the assertion names it
                self.seen.append(repr(error))
            if stopping:
                return
            self.stop.wait(self.pause)


def test_one_postgres_lake_serves_many_hosts(postgres: PostgresServer, tmp_path: Path) -> None:
    catalog = f"postgres:{postgres.create_database('many_hosts')}"
    shared_files = f"{tmp_path / 'shared-files'}/"
    lake_env = {"LOOM_LAKE_CATALOG": catalog, "LOOM_LAKE_DATA_PATH": shared_files}
    pipeline = Layout(tmp_path / "pipeline", catalog, shared_files)
    with Registry.open(pipeline) as registry:  # the keys live in PostgreSQL, for every host
        key_a = registry.create_key("acme", "web", "rw")
        key_b = registry.create_key("globex", "shop", "rw")
    tenants = (key_a.record.org_id, key_a.record.project_id)
    tenants += (key_b.record.org_id, key_b.record.project_id)

    # The same data on a SQLite catalog, built the plain way: the answers to match.
    reference = Layout(tmp_path / "sqlite-reference")
    land_one_day(reference, *tenants)
    load_and_publish(
        reference,
        lambda: dbt.build(reference, exclude=DBT_TESTS, target_path=tmp_path / "dbt-target"),
    )
    expected = answers_from_queries(reference, key_a.record.org_id, key_a.record.project_id)

    land_one_day(pipeline, *tenants)
    # A second pipeline host (a standby started by mistake), with its own Dagster instance.
    standby = Layout(tmp_path / "standby", catalog, shared_files)
    land_one_day(standby, *tenants)
    apis = []
    for host in ("host-1", "host-2"):
        port = free_port()
        env = {**os.environ, **lake_env, "LOOM_DATA_DIR": str(tmp_path / host)}
        env["LOOM_PORT"] = str(port)
        log = (tmp_path / f"{host}.log").open("wb")
        process = subprocess.Popen([*LOOM, "serve"], env=env, stdout=log, stderr=log)
        apis.append((process, f"http://127.0.0.1:{port}"))
    analyst_env = {**os.environ, **lake_env, "LOOM_DATA_DIR": str(tmp_path / "analyst")}
    pipeline_env = {**os.environ, **lake_env, "LOOM_DATA_DIR": str(pipeline.data_dir)}
    standby_env = {**os.environ, **lake_env, "LOOM_DATA_DIR": str(standby.data_dir)}
    project = key_a.record.project_id
    try:
        for process, base_url in apis:
            wait_healthy(base_url, process=process)

        # The catalog is down: reads answer 503 naming it, and a run fails loudly.
        postgres.stop()
        for _, base_url in apis:
            assert _read(base_url, key_a.key, project).status_code == 503
        failed = _loom_run(pipeline_env, "--hour", LAST_HOUR)
        assert failed.returncode != 0 and "FAILED" in failed.stdout, failed.stdout
        postgres.start()

        # It is back: the run goes through while both APIs and the analyst keep reading.
        # Steady but light: the 2 cores are the pipeline's first.
        pollers = [
            Watcher(lambda url=url: _read(url, key_a.key, project).status_code, pause=1.0)
            for _, url in apis
        ]
        analyst = Watcher(lambda: _loom_sql(analyst_env, key_a.record.org_id), pause=5.0)
        for watcher in (*pollers, analyst):
            watcher.start()
        run = _loom_run(pipeline_env, "--from", FIRST_HOUR, "--to", LAST_HOUR)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "13 hours, one run" in run.stdout
        # A line per hour first, whose rows add up to the run's
        hour_line = r"^2026-11-20 (\d\d):00  loaded  .*sessions ([\d,]+)"
        per_hour = re.findall(hour_line, run.stdout, re.M)
        assert [hour for hour, _ in per_hour] == [f"{h:02d}" for h in range(13)]
        (total,) = re.findall(r"one run\)  ok .* sessions ([\d,]+) rows", run.stdout)
        sessions = int(total.replace(",", ""))
        assert sessions > 0
        assert sum(int(rows.replace(",", "")) for _, rows in per_hour) == sessions
        # Every asset of the run has each of its hours materialized in Dagster's event log
        # (stored a batch at a time: dagster_project/event_storage.py).
        materialized = hours_materialized(pipeline)
        hours = {f"2026-11-20-{h:02d}:00" for h in range(13)}
        assert materialized and materialized == dict.fromkeys(materialized, hours)
        # Dagster's storage is in the catalog's PostgreSQL (schema dagster): the standby's
        # instance sees the pipeline host's run and materializations.
        assert hours_materialized(standby) == materialized
        # Its dagster.yaml is the one host's but for the storage: pools, run queue, launcher.
        shared, local = (
            yaml.safe_load((prepare_dagster_home(layout) / "dagster.yaml").read_text())
            for layout in (pipeline, reference)
        )
        storage = shared.pop("storage")["custom"]
        assert storage["config"]["postgres_url"].endswith("search_path%3Ddagster")
        assert shared == {k: v for k, v in local.items() if k != "event_log_storage"}
        time.sleep(1.5)  # the APIs answer from a publish within a second (test_freshness.py)
        for watcher in (*pollers, analyst):
            watcher.stop.set()
            watcher.join(timeout=120)

        # Nothing failed: before the publish the answer is "nothing published yet" (503 with
        # that reason), after it the run's numbers; never an error.
        for poller in pollers:
            assert set(poller.seen) <= {503, 200} and poller.seen[-1] == 200, (
                poller.seen,
                _logs(tmp_path),
            )
        assert analyst.seen and set(analyst.seen) <= {"nothing published yet", "9550"}
        assert analyst.seen[-1] == "9550"
        for _, base_url in apis:
            assert answers_over_http(base_url, key_a.key, project) == expected

        # The standby host runs the last hour again, racing the pipeline host for it: one
        # writes, the other waits for the lake's writer lease (its holder named), then writes
        # the same rows again; the answers stay a single run's.
        racing = [
            subprocess.Popen(
                [*LOOM, "run", "--hour", LAST_HOUR], env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for env in (pipeline_env, standby_env)
        ]  # fmt: skip
        outputs = [process.communicate(timeout=600)[0] for process in racing]
        assert [process.returncode for process in racing] == [0, 0], outputs
        # The one that waits sees the other's run in the storage they share, or, had it looked
        # before that run started, waits for the lease its holder took first.
        waiting = ("waiting for the lake's writer lease, held by ", "waiting for run ")
        assert sum(any(w in output for w in waiting) for output in outputs) == 1, outputs
        # Both hosts' instances list the same three runs, finished, one after the other.
        runs = [_runs(layout) for layout in (pipeline, standby)]
        assert runs[0] == runs[1] and len(runs[0]) == 3, runs
        assert {status for _, status, _, _ in runs[0]} == {"SUCCESS"}
        (_, _, _, first_end), (_, _, second_start, _) = sorted(runs[0], key=lambda r: r[2])[1:]
        assert first_end <= second_start
        for _, base_url in apis:
            assert answers_over_http(base_url, key_a.key, project) == expected
        # A holder killed (kill -9) lets go at once: PostgreSQL ends its session.
        holder = hold_lease(pipeline, "host-9 pid 99 run killed")
        holder.kill()
        holder.wait()
        started = time.monotonic()
        with writer_lease(pipeline.lake, "host-1", wait_s=KEEPALIVE_BOUND_S):
            assert time.monotonic() - started < 2.0

        # The server goes away under open snapshots and comes back: 503 meanwhile (the keys live
        # there too, so the key check is the first to say so), then the same answers again,
        # without a restart.
        postgres.stop()
        for _, base_url in apis:
            response = _read(base_url, key_a.key, project)
            assert response.status_code == 503
            assert "PostgreSQL" in response.json()["detail"]
        postgres.start()
        for _, base_url in apis:
            assert answers_over_http(base_url, key_a.key, project) == expected
    finally:
        for process, _ in apis:
            process.terminate()
            process.wait(timeout=30)


def _runs(layout: Layout) -> list[tuple[str, str, float, float]]:
    """(run id, status, start, end) of every run a host's Dagster instance lists."""
    with warehouse_instance(layout) as instance:
        records = instance.get_run_records()
    return sorted(
        (r.dagster_run.run_id, r.dagster_run.status.value, r.start_time, r.end_time)
        for r in records
    )


def _logs(tmp_path: Path) -> dict[str, str]:
    """The API hosts' output, for a failure message: a host that died says why here."""
    return {log.name: log.read_text(errors="replace")[-4000:] for log in tmp_path.glob("*.log")}


def _read(base_url: str, key: str, project: int) -> httpx.Response:
    return httpx.get(
        f"{base_url}/api/projects/{project}/releases/1.2.3",
        headers={"X-API-Key": key},
        timeout=60,
    )


def _loom_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LOOM, "run", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _loom_sql(env: dict[str, str], org_id: str) -> str:
    query = (
        "select total_sessions from analytics.release_health"
        f" where org_id = '{org_id}' and release = '1.2.3' and environment = 'production'"
    )
    result = subprocess.run(
        [*LOOM, "sql", "-c", query, "--csv"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        return (
            "nothing published yet"
            if "nothing is published yet" in result.stderr
            else (result.stderr.strip() or f"exit {result.returncode}")
        )
    return result.stdout.splitlines()[-1]
