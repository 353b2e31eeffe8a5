"""A release-health alert end to end: a rule created over HTTP, sessions posted through the API
under uvicorn, the real micro-batch job building and publishing them, the real alert sensors
judging the rule and posting to a real webhook receiver on loopback, and the project's live
stream carrying the changes of state."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest
import uvicorn

from dagster_project.alerts import alert_deliveries_sensor, release_health_alerts_sensor
from dagster_project.partitions import MICRO_BATCH_JOB
from dagster_project.resources import WarehouseResource
from dagster_project.runner import materialize_range
from ingest_api.main import create_app
from ingest_api.server import uvicorn_config
from tests.ingest_api.ingest.utils.server import wait_healthy
from tests.ingest_api.read.utils.sse import Message, SseReader
from tests.utils.alerts import CRASH_FREE_PRODUCTION
from tests.utils.network import free_port
from tests.utils.webhook_receiver import HANG, Receiver, webhook_receiver
from warehouse.layout import floor_hour
from warehouse.registry import Registry
from warehouse.settings import get_settings

pytestmark = pytest.mark.slow

TIMEOUT_S = 1.5
RETRY_S = 0.3
RULE = CRASH_FREE_PRODUCTION


@dataclass
class Stack:
    base_url: str
    project_id: int
    headers: dict[str, str]
    instance: dg.DagsterInstance
    receiver: Receiver
    posted: int = 0

    def post_sessions(self, count: int, status: str, environment: str = "production") -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:
            for _ in range(count):
                self.posted += 1
                session = f"ses-{self.posted}"
                now = datetime.now(UTC).isoformat()
                start = {
                    "session_id": session,
                    "distinct_id": f"user-{self.posted}",
                    "release": "2.0.0",
                    "environment": environment,
                    "platform": "python",
                    "started_at": now,
                }
                end = {
                    "session_id": session,
                    "status": status,
                    "crash_count": int(status == "crashed"),
                    "ended_at": now,
                    "duration_ms": 1000,
                }
                assert client.post("/api/sessions/start", json=start).status_code == 200
                assert client.post("/api/sessions/end", json=end).status_code == 200

    def micro_batch(self) -> None:
        hour = floor_hour(datetime.now(UTC))
        run = materialize_range(hour, hour, self.instance, job_name=MICRO_BATCH_JOB)
        assert run.success, run.progress_line()

    def tick(self, sensor: dg.SensorDefinition) -> object:
        with dg.build_sensor_context(
            instance=self.instance, resources={"warehouse": WarehouseResource()}
        ) as context:
            return sensor(context)

    def evaluate(self) -> None:
        """The evaluation sensor's tick after a publish: every rule judged on it."""
        result = self.tick(release_health_alerts_sensor)
        assert isinstance(result, dg.SensorResult), result

    def deliver(self) -> float:
        """One tick of the deliveries sensor; how long it took."""
        started = time.monotonic()
        self.tick(alert_deliveries_sensor)
        return time.monotonic() - started

    def rule(self) -> dict:
        response = httpx.get(
            f"{self.base_url}/api/projects/{self.project_id}/alerts", headers=self.headers
        )
        [rule] = response.json()["alerts"]
        return rule

    def history(self) -> list[dict]:
        url = f"{self.base_url}/api/projects/{self.project_id}/alerts/history"
        return httpx.get(url, headers=self.headers).json()["history"]


@pytest.fixture
def stack(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # The pipeline host's settings (the sensors read them) and the API's are the same variables.
    monkeypatch.setenv("LOOM_ALERT_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("LOOM_ALERT_WEBHOOK_TIMEOUT_SECONDS", str(TIMEOUT_S))
    monkeypatch.setenv("LOOM_ALERT_RETRY_SECONDS", str(RETRY_S))
    monkeypatch.setenv("LOOM_PORT", str(free_port()))
    get_settings.cache_clear()
    settings = get_settings()
    # Whole hours are judged: a test that would straddle the hour's turn waits for it instead.
    now = datetime.now(UTC)
    left = floor_hour(now) + timedelta(hours=1) - now.replace(tzinfo=None)
    if left < timedelta(minutes=4):
        time.sleep(left.total_seconds() + 1)
    with Registry.open() as registry:
        key = registry.create_key("alerting", "app", "rw")
    server = uvicorn.Server(uvicorn_config(settings, app=create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://{settings.host}:{settings.port}"
    wait_healthy(base_url)
    with webhook_receiver() as receiver, dg.DagsterInstance.ephemeral() as instance:
        yield Stack(
            base_url,
            key.record.project_id,
            {"Authorization": f"Bearer {key.key}"},
            instance,
            receiver,
        )
    server.should_exit = True
    thread.join(timeout=15)
    get_settings.cache_clear()


def alert_events(reader: SseReader, expected: int = 0, wait_s: float = 10.0) -> list[Message]:
    """The alert events the stream sends, until ``expected`` came, or, expecting none, for two
    of the API's relays (one a second)."""
    deadline = time.monotonic() + (wait_s if expected else 2.5)
    seen: list[Message] = []
    while (left := deadline - time.monotonic()) > 0 and (not expected or len(seen) < expected):
        try:
            message = reader.next(timeout=left)
        except queue.Empty:
            break
        if message.event and message.event.startswith("alert."):
            seen.append(message)
    return seen


def test_a_rule_fires_once_when_the_rate_drops_and_resolves_once_it_recovers(stack: Stack) -> None:
    created = httpx.post(
        f"{stack.base_url}/api/projects/{stack.project_id}/alerts",
        json={**RULE, "webhook_url": stack.receiver.url},
        headers=stack.headers,
    )
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    reader = SseReader(
        f"{stack.base_url}/api/projects/{stack.project_id}/sessions/stream", stack.headers
    ).start()
    try:
        assert reader.next(skip_comments=False).comment == "subscribed"

        # 20 healthy sessions and 2 crashes: 90.91 % crash-free, below 99 %: critical. The
        # receiver answers 500 first: the delivery is retried and lands once.
        stack.post_sessions(20, "exited")
        stack.post_sessions(2, "crashed")
        stack.micro_batch()
        stack.receiver.answer_next(500)
        stack.evaluate()
        [triggered] = alert_events(reader, expected=1)
        assert triggered.event == "alert.triggered"
        assert triggered.data["state"] == "critical" and triggered.data["value"] == 90.91
        assert triggered.data["previous_state"] == "ok"
        stack.deliver()
        time.sleep(RETRY_S * 1.5)
        stack.deliver()
        stack.deliver()
        bodies = stack.receiver.bodies()
        assert [body["state"] for body in bodies] == ["critical", "critical"]  # 500, then 200
        assert bodies[1] == triggered.data
        assert bodies[1]["release"] == "2.0.0" and bodies[1]["environment"] == "production"
        assert bodies[1]["window"]["hours"] == 1 and bodies[1]["rule"]["id"] == rule_id
        assert bodies[1]["link"].endswith(f"/dashboard#alert={rule_id}&environment=production")
        [entry] = stack.history()
        assert entry["webhook"]["status"] == "delivered" and entry["webhook"]["attempts"] == 2

        # Still below: another run, no second notification.
        stack.post_sessions(3, "exited")
        stack.micro_batch()
        stack.evaluate()
        stack.deliver()
        assert stack.rule()["state"] == "critical" and stack.rule()["value"] == 92.0
        assert alert_events(reader) == [] and len(stack.receiver.bodies()) == 2

        # Recovered: 198 of 200 crash-free is 99 %, back at the threshold: resolved, once. The
        # receiver hangs on the first attempt: the tick ends at the delivery's timeout.
        stack.post_sessions(175, "exited")
        stack.micro_batch()
        stack.receiver.answer_next(HANG)
        stack.evaluate()
        [resolved] = alert_events(reader, expected=1)
        assert resolved.event == "alert.resolved" and resolved.data["state"] == "resolved"
        assert resolved.data["value"] == 99.0
        assert stack.deliver() < TIMEOUT_S + 1.0
        time.sleep(RETRY_S * 1.5)
        stack.deliver()
        stack.deliver()
        assert [body["state"] for body in stack.receiver.bodies()[2:]] == ["resolved", "resolved"]
        latest = stack.history()[0]
        assert latest["event"] == "alert.resolved"
        assert latest["webhook"]["status"] == "delivered" and latest["webhook"]["attempts"] == 2
        assert stack.rule()["state"] == "resolved"
    finally:
        reader.close()
