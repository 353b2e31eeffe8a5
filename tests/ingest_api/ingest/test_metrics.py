"""``/metrics`` on a real uvicorn server, parsed with ``prometheus_client.parser``: the counters
move by exactly the requests and records sent, by route, org and reason; orgs past the limit
share one label; the landing writer's files, bytes, flushes and failures are counted; the
pipeline's metrics file is exposed as written."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from dagster_project.pipeline_metrics import empty_state, write_metrics
from ingest_api.main import create_app
from ingest_api.metrics import ApiMetrics
from ingest_api.server import uvicorn_config
from tests.ingest_api.ingest.utils.server import wait_healthy
from tests.utils.network import free_port
from warehouse.layout import Layout
from warehouse.registry import Registry
from warehouse.settings import Settings

BATCH = "/api/analytics/batch"
Samples = dict[tuple[str, frozenset], float]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Layout]]:
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), metrics_max_orgs=1)
    uvicorn_server = uvicorn.Server(
        uvicorn_config(settings, app=create_app(settings), log_level="warning")
    )
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    base_url = f"http://{settings.host}:{settings.port}"
    wait_healthy(base_url)
    yield base_url, Layout.from_settings(settings)
    uvicorn_server.should_exit = True
    thread.join(timeout=15)


def scrape(base_url: str) -> Samples:
    response = httpx.get(f"{base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_the_counters_move_by_exactly_the_requests_sent(server: tuple[str, Layout]) -> None:
    base_url, layout = server
    with Registry.open(layout) as registry:
        first = registry.create_key("first", "web", "write")
        second = registry.create_key("second", "web", "write")
    org = first.record.org_id
    events = [{"event": "signed_up", "distinct_id": "u1"}, {"event": "paid", "distinct_id": "u1"}]
    bad = [{"event": "ok", "distinct_id": "u"}, {"event": "", "distinct_id": "u"}, {"event": "x"}]
    before = scrape(base_url)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(3):
            accepted = client.post(BATCH, json={"batch": events}, headers=auth(first.key))
            assert accepted.status_code == 200
        rejected = client.post(BATCH, json={"batch": bad}, headers=auth(first.key))
        assert rejected.status_code == 400
        for _ in range(2):
            assert (
                client.post(BATCH, json={"batch": events}, headers=auth("nope")).status_code == 401
            )
        assert (
            client.post(BATCH, json={"batch": events}, headers=auth(second.key)).status_code == 200
        )
    after = scrape(base_url)

    requests, records = "loom_ingest_requests_total", "loom_ingest_records_total"
    ok = {"route": BATCH, "outcome": "accepted", "reason": ""}
    assert moved(before, after, requests, org=org, **ok) == 3
    assert moved(before, after, records, org=org, **ok) == 6
    [reason] = {error["type"] for error in rejected.json()["errors"][:1]}
    no = {"route": BATCH, "outcome": "rejected"}
    assert moved(before, after, requests, org=org, reason=reason, **no) == 1
    assert moved(before, after, records, org=org, reason=reason, **no) == 2  # items 1 and 2
    assert moved(before, after, requests, org="none", reason="unauthorized", **no) == 2
    # Only one org gets a label of its own here (LOOM_METRICS_MAX_ORGS=1).
    assert moved(before, after, requests, org="other", **ok) == 1
    assert moved(before, after, records, org="other", **ok) == 2

    http = "loom_http_requests_total"
    assert moved(before, after, http, route=BATCH, method="POST", status="200") == 4
    assert moved(before, after, http, route=BATCH, method="POST", status="400") == 1
    assert moved(before, after, http, route=BATCH, method="POST", status="401") == 2
    latency = "loom_http_request_duration_seconds_count"
    assert moved(before, after, latency, route=BATCH, method="POST") == 7
    # Durable requests: each was flushed (one file each) before its answer.
    assert moved(before, after, "loom_landing_files_total", stream="events") == 4
    assert moved(before, after, "loom_landing_bytes_total", stream="events") > 0
    assert moved(before, after, "loom_landing_flush_duration_seconds_count") == 4
    assert after[("loom_landing_buffer_records", frozenset())] == 0
    # No org id a client sent ever becomes a label: only the two registered orgs' and none.
    orgs = {dict(labels).get("org") for name, labels in after if name == requests}
    assert orgs <= {org, "other", "none"}


def test_the_pipelines_metrics_file_is_exposed_as_written(server: tuple[str, Layout]) -> None:
    base_url, layout = server
    assert not any(name.startswith("loom_pipeline") for name, _ in scrape(base_url))
    state = empty_state()
    state["runs"]["micro_batch|success"] = 41
    state["last"]["micro_batch"] = [3.5, 1, 1_700_000_000.0]
    state["quarantined"]["events"] = 2
    write_metrics(state, layout.pipeline_metrics_path)
    samples = scrape(base_url)
    job = frozenset({"job": "micro_batch"}.items())
    assert samples[("loom_pipeline_last_run_duration_seconds", job)] == 3.5
    assert samples[("loom_pipeline_last_run_success", job)] == 1
    runs = frozenset({"job": "micro_batch", "status": "success"}.items())
    assert samples[("loom_pipeline_runs_total", runs)] == 41
    events = frozenset({"stream": "events"}.items())
    assert samples[("loom_pipeline_quarantined_records_total", events)] == 2


def test_a_full_disk_is_counted_by_reason(tmp_path: Path) -> None:
    metrics = ApiMetrics(max_orgs=10, pipeline_metrics=tmp_path / "none.prom")
    metrics.failed(OSError(errno.ENOSPC, "No space left on device"))
    metrics.failed(OSError(errno.ENOSPC, "No space left on device"))
    metrics.failed(OSError(errno.EIO, "Input/output error"))
    value = metrics.registry.get_sample_value
    assert value("loom_landing_write_failures_total", {"reason": "disk_full"}) == 2
    assert value("loom_landing_write_failures_total", {"reason": "eio"}) == 1


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
