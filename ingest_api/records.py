"""Turn validated requests into landed records (the columns of :mod:`warehouse.streams`).

Tenancy is applied here and only here: ``org_id`` and ``project_id`` come from the API key in
the :class:`Receipt`, never from the body.

Timestamps land in UTC with a ``Z`` suffix; a time sent without an offset is taken as UTC.

Far-future rule: a timestamp more than ``LOOM_FUTURE_TIMESTAMP_TOLERANCE_HOURS`` ahead of the
server's clock comes from a broken client clock, so the record gets the server's receive time
instead and keeps the value it sent in ``properties.$sent_timestamp`` (sessions have no
properties; their far-future times are replaced the same way).

This is the per-event hot path of the API: plain dicts, and one ``orjson.dumps`` per record
(which also writes the datetimes).
"""

from __future__ import annotations

import uuid as uuid_module
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from pydantic import SecretStr

from ingest_api.landing import Chunk, Target
from ingest_api.schemas import (
    IDENTITY_EVENTS,
    LINKED_ID,
    AliasRequest,
    CaptureEvent,
    IdentifyRequest,
    PostHogEvent,
    SessionEnd,
    SessionStart,
    SetRequest,
    TrackEvent,
    normalize_event_name,
)
from warehouse.layout import floor_hour
from warehouse.registry import ApiKey

# Sessions get a uuid derived from (org, session_id, kind), so a retried start or end lands with
# the same uuid and the models count it once.
SESSION_NAMESPACE = UUID("5d0c3f5e-6a57-4d8e-9a43-3f1f8b1a6c2e")
DUMPS_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; pydantic keeps the offset a client sent, and none means UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC) if moment.utcoffset() else moment


def iso(moment: datetime) -> str:
    return orjson.dumps(moment, option=DUMPS_OPTIONS)[1:-1].decode()


@dataclass(frozen=True, slots=True)
class Receipt:
    """Who sent a request, when it arrived and from where."""

    org_id: str
    project_id: int
    received_at: datetime  # aware UTC
    ip: SecretStr | None
    future_tolerance: timedelta

    @classmethod
    def of(
        cls, key: ApiKey, received_at: datetime, ip: str | None, tolerance_hours: float
    ) -> Receipt:
        return cls(
            key.org_id,
            key.project_id,
            received_at,
            SecretStr(ip) if ip else None,
            timedelta(hours=tolerance_hours),
        )


class Records:
    """The records of one request, serialized and grouped by landing file."""

    def __init__(self, receipt: Receipt, source: str) -> None:
        self.receipt = receipt
        self.source = source
        self.count = 0
        self._org_id, self._project_id, self._ip = receipt.org_id, receipt.project_id, receipt.ip
        self._received_at = receipt.received_at
        self._latest = receipt.received_at + receipt.future_tolerance
        self._received = iso(receipt.received_at)
        self._lines: dict[str, list[bytes]] = defaultdict(list)

    def chunks(self) -> list[Chunk]:
        hour = floor_hour(self._received_at)
        return [
            Chunk(Target(stream, self.receipt.org_id, hour), b"\n".join(lines) + b"\n", len(lines))
            for stream, lines in self._lines.items()
        ]

    def _common(self, uuid: str | None) -> dict[str, Any]:
        return {
            "uuid": uuid or str(uuid_module.uuid4()),
            "org_id": self._org_id,
            "project_id": self._project_id,
            "received_at": self._received,
            "source": self.source,
            "ip": self._ip.get_secret_value() if self._ip is not None else None,
        }

    def _land(self, stream: str, record: dict[str, Any]) -> str:
        self._lines[stream].append(orjson.dumps(record, option=DUMPS_OPTIONS))
        self.count += 1
        return record["uuid"]

    def _when(self, sent: datetime | None) -> datetime:
        """The timestamp to land under the far-future rule; server time when none was sent."""
        if sent is None:
            return self._received_at
        sent = utc(sent)
        return self._received_at if sent > self._latest else sent

    # -- events and identity operations ------------------------------------------------------

    def event(
        self,
        name: str,
        display_name: str | None,
        distinct_id: str | None,
        properties: dict[str, Any],
        timestamp: datetime | None,
        uuid: str | None,
        environment: str = "production",
        anonymous_id: str | None = None,
        device_id: str | None = None,
        session_id: str | None = None,
    ) -> str:
        """One event; PostHog's identity events ($identify, $create_alias, ...) go to identities."""
        when = self._when(timestamp)
        if timestamp is not None and when is self._received_at:  # far future: keep what was sent
            properties = {**properties, "$sent_timestamp": iso(utc(timestamp))}
        kind = IDENTITY_EVENTS.get(name)
        if kind is not None:
            linked = LINKED_ID.get(name)
            return self.identity(
                kind,
                name,
                distinct_id,
                properties.get(linked) if linked else None,
                properties.get("$set"),
                properties.get("$set_once"),
                properties,
                when,
                uuid,
                environment,
            )
        record = self._common(uuid)
        record["environment"] = environment
        record["event"] = name
        record["event_display_name"] = display_name
        record["distinct_id"] = distinct_id
        record["anonymous_id"] = anonymous_id
        record["device_id"] = device_id
        record["session_id"] = session_id
        record["properties"] = properties
        record["timestamp"] = when
        return self._land("events", record)

    def identity(
        self,
        kind: str,
        event: str,
        distinct_id: str | None,
        other_id: str | None,
        set_: dict[str, Any] | None,
        set_once: dict[str, Any] | None,
        properties: dict[str, Any],
        timestamp: datetime | None,
        uuid: str | None,
        environment: str,
    ) -> str:
        record = self._common(uuid)
        record["environment"] = environment
        record["kind"] = kind
        record["event"] = event
        record["distinct_id"] = distinct_id
        record["other_id"] = other_id
        record["set"] = set_
        record["set_once"] = set_once
        record["properties"] = properties
        record["timestamp"] = self._when(timestamp)
        return self._land("identities", record)

    def native_event(self, item: CaptureEvent) -> str:
        return self._client_event(item, item.event, None, item.distinct_id)

    def track_event(self, item: TrackEvent) -> str:
        name, display_name = normalize_event_name(item.event)
        # An event without distinct_id belongs to whichever id the client did send.
        distinct_id = item.distinct_id or item.anonymous_id or item.device_id
        return self._client_event(item, name, display_name, distinct_id)

    def _client_event(
        self,
        item: CaptureEvent | TrackEvent,
        name: str,
        display_name: str | None,
        distinct_id: str | None,
    ) -> str:
        """An SDK event (native or track): the rest of its fields land as sent."""
        return self.event(
            name,
            display_name,
            distinct_id,
            item.properties,
            item.timestamp,
            item.uuid,
            item.environment,
            item.anonymous_id,
            item.device_id,
            item.session_id,
        )

    def posthog_event(self, item: PostHogEvent) -> str:
        name, display_name = normalize_event_name(item.event)
        session_id = item.properties.get("$session_id")
        return self.event(
            name,
            display_name,
            item.distinct_id,
            item.properties,
            item.timestamp,
            item.uuid,
            session_id=session_id if isinstance(session_id, str) else None,
        )

    def identify(self, body: IdentifyRequest) -> str:
        return self.identity(
            "identify", "identify", body.distinct_id, body.anonymous_id, body.properties, None,
            {}, body.timestamp, body.uuid, body.environment,
        )  # fmt: skip

    def alias(self, body: AliasRequest) -> str:
        return self.identity(
            "alias", "alias", body.distinct_id, body.alias, None, None,
            {}, body.timestamp, body.uuid, body.environment,
        )  # fmt: skip

    def set_properties(self, body: SetRequest) -> str:
        return self.identity(
            "set", "set", body.distinct_id, None, body.properties, body.set_once,
            {}, body.timestamp, body.uuid, body.environment,
        )  # fmt: skip

    # -- sessions ----------------------------------------------------------------------------

    def session_uuid(self, session_id: str, kind: str) -> str:
        name = f"{self.receipt.org_id}\x1f{session_id}\x1f{kind}"
        return str(uuid_module.uuid5(SESSION_NAMESPACE, name))

    def session_start(self, body: SessionStart) -> str:
        record = self._common(self.session_uuid(body.session_id, "start"))
        record.update(
            kind="start",
            session_id=body.session_id,
            distinct_id=body.distinct_id,
            release=body.release,
            environment=body.environment,
            platform=body.platform,
            started_at=self._when(body.started_at),
            sample_rate=body.sample_rate,
            status=None,
            error_count=None,
            crash_count=None,
            ended_at=None,
            duration_ms=None,
        )
        return self._land("sessions", record)

    def session_end(self, body: SessionEnd) -> str:
        record = self._common(self.session_uuid(body.session_id, "end"))
        record.update(
            kind="end",
            session_id=body.session_id,
            distinct_id=None,
            release=None,
            environment=None,
            platform=None,
            started_at=None,
            sample_rate=None,
            status=body.status,
            error_count=body.error_count,
            crash_count=body.crash_count,
            ended_at=self._when(body.ended_at),
            duration_ms=body.duration_ms,
        )
        return self._land("sessions", record)
