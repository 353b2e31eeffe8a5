"""Sends a phase of the plan through the real ``posthog`` SDK and the session endpoints, and logs
what each acknowledged request carried, in the PostHog terms the warehouse documents: the log is
all the oracle (:mod:`.oracle`) sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson
from posthog import Posthog

from tests.end_to_end.utils.scenario import (
    Alias,
    Capture,
    Identify,
    Operation,
    PlannedEvent,
    PlannedSession,
    RawBatch,
    SessionEnd,
    SessionStart,
    SetProperties,
)


@dataclass(frozen=True)
class SentEvent:
    seq: int
    uuid: str | None  # None: the server made it
    event: str
    distinct_id: str
    timestamp: datetime


@dataclass(frozen=True)
class SentLink:
    """A ``$identify`` or ``$create_alias``: from the event's distinct_id to the other id."""

    uuid: str
    event: str
    distinct_id: str
    other_id: str
    timestamp: datetime


@dataclass(frozen=True)
class SentPropertySet:
    uuid: str
    distinct_id: str
    properties: dict[str, Any]
    timestamp: datetime


@dataclass(frozen=True)
class SentSessionStart:
    session_id: str
    distinct_id: str
    release: str
    environment: str
    started_at: datetime
    sample_rate: float


@dataclass(frozen=True)
class SentSessionEnd:
    session_id: str
    status: str
    crash_count: int
    error_count: int
    duration_ms: int


@dataclass
class SentLog:
    """Every acknowledged record, retries included, in the order they were acknowledged."""

    events: list[SentEvent] = field(default_factory=list)
    links: list[SentLink] = field(default_factory=list)
    property_sets: list[SentPropertySet] = field(default_factory=list)
    session_starts: list[SentSessionStart] = field(default_factory=list)
    session_ends: list[SentSessionEnd] = field(default_factory=list)

    def records_per_stream(self) -> dict[str, int]:
        """How many records each landing stream got (identify, alias and set are identities)."""
        return {
            "events": len(self.events),
            "identities": len(self.links) + len(self.property_sets),
            "sessions": len(self.session_starts) + len(self.session_ends),
        }


class Sender:
    def __init__(self, base_url: str, key: str, log: SentLog) -> None:
        self.key = key
        self.log = log
        # sync_mode: each call is one request, answered once the API has the record on disk.
        self.posthog = Posthog(key, host=base_url, sync_mode=True, gzip=True)
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def close(self) -> None:
        self.posthog.shutdown()
        self.http.close()

    def send(self, operations: list[Operation]) -> None:
        for operation in operations:
            self.send_one(operation)

    def send_one(self, operation: Operation) -> None:
        match operation:
            case Capture(event):
                self.capture(event)
            case RawBatch(events):
                self.raw_batch(events)
            case Identify(uuid, distinct_id, anon_distinct_id, at):
                # posthog-python has no identify(): this is the event posthog-js sends for it.
                sent = self.posthog.capture(
                    "$identify",
                    distinct_id=distinct_id,
                    properties={"$anon_distinct_id": anon_distinct_id},
                    timestamp=at,
                    uuid=uuid,
                )
                self.acknowledged(sent, uuid)
                self.log.links.append(
                    SentLink(uuid, "$identify", distinct_id, anon_distinct_id, at)
                )
            case Alias(uuid, previous_id, distinct_id, at):
                sent = self.posthog.alias(
                    previous_id=previous_id, distinct_id=distinct_id, timestamp=at, uuid=uuid
                )
                self.acknowledged(sent, uuid)
                # posthog-python sends the alias as an event of previous_id with
                # properties.alias = distinct_id.
                self.log.links.append(SentLink(uuid, "$create_alias", previous_id, distinct_id, at))
            case SetProperties(uuid, distinct_id, properties, at):
                sent = self.posthog.set(
                    distinct_id=distinct_id, properties=properties, timestamp=at, uuid=uuid
                )
                self.acknowledged(sent, uuid)
                self.log.property_sets.append(SentPropertySet(uuid, distinct_id, properties, at))
            case SessionStart(session):
                self.post("/api/sessions/start", start_body(session))
                self.log.session_starts.append(
                    SentSessionStart(
                        session.session_id,
                        session.distinct_id,
                        session.release,
                        session.environment,
                        session.started_at,
                        session.sample_rate,
                    )
                )
            case SessionEnd(session):
                body = end_body(session)
                self.post("/api/sessions/end", body)
                self.log.session_ends.append(
                    SentSessionEnd(
                        session.session_id,
                        body["status"],
                        body["crash_count"],
                        body["error_count"],
                        body["duration_ms"],
                    )
                )

    def capture(self, event: PlannedEvent) -> None:
        sent = self.posthog.capture(
            event.name,
            distinct_id=event.distinct_id,
            properties=event.properties,
            timestamp=event.at,
            uuid=event.uuid,
        )
        self.acknowledged(sent, event.uuid)
        self.log.events.append(
            SentEvent(event.seq, event.uuid, event.name, event.distinct_id, event.at)
        )

    def raw_batch(self, events: tuple[PlannedEvent, ...]) -> None:
        body = {
            "api_key": self.key,
            "batch": [
                {
                    "event": event.name,
                    "distinct_id": event.distinct_id,
                    "properties": event.properties,
                    "timestamp": event.at.isoformat(),
                }
                for event in events
            ],
        }
        self.post("/batch/", body)
        self.log.events.extend(
            SentEvent(event.seq, None, event.name, event.distinct_id, event.at) for event in events
        )

    def post(self, path: str, body: dict[str, Any]) -> None:
        # Serialized here, not by httpx: a retry must send the very same bytes.
        response = self.http.post(
            path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, f"POST {path}: {response.status_code} {response.text}"

    @staticmethod
    def acknowledged(sent_uuid: str | None, uuid: str) -> None:
        """The SDK returns the event's uuid once its request succeeded, None when it failed."""
        assert sent_uuid == uuid, f"the posthog SDK could not send event {uuid}"


def start_body(session: PlannedSession) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "distinct_id": session.distinct_id,
        "release": session.release,
        "environment": session.environment,
        "platform": session.platform,
        "started_at": session.started_at.isoformat(),
        "sample_rate": session.sample_rate,
    }


def end_body(session: PlannedSession) -> dict[str, Any]:
    crashed, errored = session.status == "crashed", session.status == "errored"
    return {
        "session_id": session.session_id,
        "status": session.status,
        "error_count": 1 if errored else 0,
        "crash_count": 1 if crashed else 0,
        "ended_at": session.ended_at.isoformat(),
        "duration_ms": int((session.ended_at - session.started_at).total_seconds() * 1000),
    }
