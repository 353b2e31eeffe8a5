"""Prometheus metrics at ``/metrics`` (prometheus-client), for the operators of the API.

What is counted, and where:

* every request by route template, method and status, and its latency (:class:`MetricsMiddleware`,
  a plain ASGI middleware around the whole app);
* ingest requests and records accepted or rejected, by route, org and reason: accepted records
  are the ones handed to the landing writer; a rejected request's records are the items its 400
  names (or those a 503 could not store); the reason is the first error's type, or the status;
* the landing writer's files and bytes landed by stream, flush latency, buffer depth and failed
  writes by reason (``disk_full`` for ENOSPC and EDQUOT): it reports to :class:`ApiMetrics`;
* the age of the published snapshot and of its data (``PublishedMarts``, no query);
* the pipeline's own metrics (runs, the last run's duration and status, quarantined records),
  which the Dagster sensor writes to ``metrics/pipeline.prom`` in the data directory
  (dagster_project/pipeline_metrics.py) and this endpoint adds as they are.

Labels stay bounded: routes are templates (``/api/projects/{project_id}/releases``), statuses and
reasons come from the server's own finite sets, and an org label is an org id of an authenticated
key (never anything a client sends), for the first ``LOOM_METRICS_MAX_ORGS`` orgs seen; later
ones, and requests without a valid key, count as ``other`` and ``none``.

``/metrics`` needs no key (a scraper has none); see docs/ingest-api.md, "Metrics", for keeping it
off a public port.
"""

from __future__ import annotations

import errno
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest_api.ingest.landing import Chunk
from ingest_api.ingest.routing import IngestRoute
from warehouse.published import PublishedMarts

# A `_created` series beside every counter doubles what is scraped for nothing Prometheus needs.
disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
STATUS_REASONS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
ERROR_BODY_BYTES = 64 * 1024  # a rejection's body read for its reason; more is not an ErrorBody
log = logging.getLogger(__name__)


@dataclass
class RequestTally:
    """What one request handed to the landing writer: records by org."""

    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))


# The request being served: the writer's hand-over runs in the request's task.
current_tally: ContextVar[RequestTally | None] = ContextVar("current_tally", default=None)


class OrgLabels:
    """An org id as a label: the first ``limit`` orgs seen get their own, later ones ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: set[str] = set()

    def __call__(self, org_id: str | None) -> str:
        if org_id is None:
            return "none"
        if org_id in self._known:
            return org_id
        if len(self._known) < self._limit:
            self._known.add(org_id)
            return org_id
        return "other"


class ApiMetrics:
    """The API process's registry; also the landing writer's observer."""

    def __init__(self, max_orgs: int, pipeline_metrics: Path) -> None:
        self.registry = CollectorRegistry()
        self.org_label = OrgLabels(max_orgs)
        r = self.registry
        self.requests = Counter(
            "loom_http_requests", "Requests answered.", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "loom_http_request_duration_seconds",
            "Time to answer a request (a stream: until it ended).",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ingest_requests = Counter(
            "loom_ingest_requests",
            "Ingest requests, accepted or rejected.",
            ["route", "org", "outcome", "reason"],
            registry=r,
        )
        self.ingest_records = Counter(
            "loom_ingest_records",
            "Records accepted (handed to the landing writer) or rejected.",
            ["route", "org", "outcome", "reason"],
            registry=r,
        )
        self.landed_files = Counter(
            "loom_landing_files", "Landing files written.", ["stream"], registry=r
        )
        self.landed_bytes = Counter(
            "loom_landing_bytes", "Bytes of landing files written.", ["stream"], registry=r
        )
        self.flush_seconds = Histogram(
            "loom_landing_flush_duration_seconds",
            "Time to write, fsync and rename one flush's files.",
            buckets=FLUSH_BUCKETS,
            registry=r,
        )
        self.write_failures = Counter(
            "loom_landing_write_failures",
            "Flushes that failed, by reason (disk_full: ENOSPC or EDQUOT).",
            ["reason"],
            registry=r,
        )
        self.buffer = Gauge(
            "loom_landing_buffer_records",
            "Records acknowledged or waiting that are not on disk yet.",
            registry=r,
        )
        self._children: dict[tuple, Any] = {}
        r.register(FileCollector(pipeline_metrics))

    def follow(self, marts: PublishedMarts, pending_records: Callable[[], int]) -> None:
        self.buffer.set_function(pending_records)
        self.registry.register(PublishedCollector(marts))

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # The landing writer's reports.

    def submitted(self, chunks: list[Chunk]) -> None:
        tally = current_tally.get()
        if tally is not None:
            for chunk in chunks:
                tally.records[chunk.target.org_id] += chunk.records

    def flushed(self, chunks: list[Chunk], seconds: float) -> None:
        self.flush_seconds.observe(seconds)
        files: dict[str, set] = defaultdict(set)
        for chunk in chunks:
            files[chunk.target.stream].add(chunk.target)
            self._child(self.landed_bytes, chunk.target.stream).inc(len(chunk.payload))
        for stream, targets in files.items():
            self._child(self.landed_files, stream).inc(len(targets))

    def failed(self, error: BaseException) -> None:
        code = getattr(error, "errno", None)
        if code in DISK_FULL:
            reason = "disk_full"
        elif isinstance(code, int):
            reason = errno.errorcode.get(code, "os_error").lower()
        else:
            reason = "other"
        self._child(self.write_failures, reason).inc()

    # A finished request.

    def observe(
        self, scope: Scope, status: int, seconds: float, tally: RequestTally, error: bytes
    ) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        method = scope["method"] if scope["method"] in METHODS else "other"
        self._child(self.requests, path, method, str(status)).inc()
        self._child(self.latency, path, method).observe(seconds)
        if not isinstance(route, IngestRoute) or method != "POST":
            return
        if 200 <= status < 300:
            for org_id, records in tally.records.items():
                org = self.org_label(org_id)
                self._child(self.ingest_requests, path, org, "accepted", "").inc()
                self._child(self.ingest_records, path, org, "accepted", "").inc(records)
            if not tally.records:  # accepted with nothing to store (an empty batch)
                self._child(self.ingest_requests, path, "none", "accepted", "").inc()
            return
        key = (scope.get("state") or {}).get("api_key")
        org = self.org_label(getattr(key, "org_id", None))
        reason, items = rejection(status, error)
        records = sum(tally.records.values()) or items
        self._child(self.ingest_requests, path, org, "rejected", reason).inc()
        self._child(self.ingest_records, path, org, "rejected", reason).inc(records)


def rejection(status: int, body: bytes) -> tuple[str, int]:
    """Why a request was rejected, from its status and error body (errors.py's ErrorBody): the
    first error's type; and how many of its records were named (at least one)."""
    reason = STATUS_REASONS.get(status, str(status))
    try:
        errors = orjson.loads(body).get("errors") or []
    except (orjson.JSONDecodeError, AttributeError):
        return reason, 1
    if errors and isinstance(errors[0], dict) and isinstance(errors[0].get("type"), str):
        reason = errors[0]["type"]
    items = {error.get("index") for error in errors if isinstance(error, dict)} - {None}
    return reason, max(len(items), 1)


class MetricsMiddleware:
    """Times and counts every HTTP request; keeps a rejected ingest request's error body (small)
    to tell why."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        tally = RequestTally()
        token = current_tally.set(tally)
        status = 500
        error = bytearray()

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif status >= 400 and len(error) < ERROR_BODY_BYTES:
                error.extend(message.get("body", b"")[:ERROR_BODY_BYTES])
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            current_tally.reset(token)
            self.metrics.observe(scope, status, time.perf_counter() - started, tally, bytes(error))


class PublishedCollector:
    """How old the published snapshot this process answers from is, and its data."""

    def __init__(self, marts: PublishedMarts) -> None:
        self._marts = marts

    def collect(self) -> Iterator[Metric]:
        publish = self._marts.newest_seen()
        if publish is None:
            return
        now = datetime.now(UTC).replace(tzinfo=None)
        yield GaugeMetricFamily(
            "loom_published_snapshot_id", "The newest published snapshot.", publish.snapshot_id
        )
        yield GaugeMetricFamily(
            "loom_published_snapshot_age_seconds",
            "Time since the newest publish.",
            (now - publish.published_at).total_seconds(),
        )
        if publish.data_as_of is not None:
            yield GaugeMetricFamily(
                "loom_published_data_age_seconds",
                "Time since the newest record the newest publish holds was received (freshness).",
                (now - publish.data_as_of).total_seconds(),
            )


class FileCollector:
    """Metrics another process wrote in the text format (the pipeline's), exposed as they are."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def collect(self) -> Iterable[Metric]:
        try:
            text = self._path.read_text()
        except FileNotFoundError:
            return []
        try:
            return list(text_string_to_metric_families(text))
        except ValueError:
            log.warning("cannot parse %s; its metrics are left out", self._path)
            return []


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus's text format; no key."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
