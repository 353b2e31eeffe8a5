"""Turn validated requests into landed records (the columns of :mod:`warehouse.streams`).

Tenancy is applied here and only here: ``org_id`` and ``project_id`` come from the API key in
the :class:`Receipt`, never from the body.

Timestamps land in UTC with a ``Z`` suffix (the schemas convert them; no offset means UTC).

Every record has a ``uuid``: the client's when it sent one, else one derived from the request's
content (its org and project, the endpoint, a hash of the body and the record's position in it),
so a retried request lands with the same uuids and the models count each record once.

When a record happened is resolved by :mod:`ingest_api.ingest.event_time` (PostHog's rule for
PostHog events, Relay's clock-drift correction for Sentry sessions, Loom's for the rest): a time
more than ``LOOM_FUTURE_TIMESTAMP_TOLERANCE_HOURS`` ahead of the server's clock comes from a broken
client clock, so the record gets the server's receive time instead and keeps the value it would
have had in ``properties.$sent_timestamp`` (sessions have no properties). What the client sent
about the time lands as sent in ``client_time``, so the rule can be replayed; every correction or
fallback lands as an ``ingestion_warnings`` record beside the record it concerns, in the same
flush.

No API key lands: a record whose line holds the keys' prefix has every string holding a key
replaced by ``[Filtered]`` (:mod:`ingest_api.ingest.scrubbing`), with a ``key_filtered`` warning.

This is the per-event hot path of the API: plain dicts, and one ``orjson.dumps`` per record
(which also writes the datetimes), plus one scan of its line for the keys' prefix.
"""

from __future__ import annotations

import hashlib
import uuid as uuid_module
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from pydantic import SecretStr

from ingest_api.event_names import normalize_event_name
from ingest_api.ingest import event_time
from ingest_api.ingest.event_time import EnvelopeClock, IngestionWarning, Resolved, shown
from ingest_api.ingest.landing import Chunk, Target
from ingest_api.ingest.schemas.analytics import (
    AliasRequest,
    CaptureEvent,
    IdentifyRequest,
    SetRequest,
)
from ingest_api.ingest.schemas.fields import IDENTITY_EVENTS, LINKED_ID, SESSION_ID_PROPERTY
from ingest_api.ingest.schemas.posthog import PostHogEvent
from ingest_api.ingest.schemas.sentry import SentryAggregate, SentryAttributes, SentrySessionUpdate
from ingest_api.ingest.schemas.sessions import SessionEnd, SessionStart
from ingest_api.ingest.schemas.track import TrackEvent
from ingest_api.ingest.scrubbing import (
    FILTERED,
    KEY_PREFIX_BYTES,
    NAMED_FIELDS,
    may_hold_key,
    scrubbed,
)
from warehouse.layout import floor_hour
from warehouse.registry import ApiKey

# Sessions get a uuid derived from (org, session_id, kind), so a retried start or end lands with
# the same uuid and the models count it once.
SESSION_NAMESPACE = UUID("5d0c3f5e-6a57-4d8e-9a43-3f1f8b1a6c2e")
# Records the client sent no uuid for get one derived from the request's content.
REQUEST_NAMESPACE = UUID("0f6f4f8e-93c5-4b8e-8d1c-2b7b5e0a9c41")
# A warning's uuid is derived from its record's, its kind and field: a retry lands it once more.
WARNING_NAMESPACE = UUID("b3a5c1d2-7e4f-4a8b-9c6d-0e1f2a3b4c5d")
WARNINGS_STREAM = "ingestion_warnings"
KEY_FILTERED = "key_filtered"
PERSON_PROFILE = "$process_person_profile"
LINK_WITHOUT_PERSON = "invalid_event_when_process_person_profile_is_false"
DUMPS_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def digest(body: bytes) -> str:
    """What identifies a request's content: the same for the same body sent again."""
    return hashlib.sha256(body).hexdigest()


def iso(moment: datetime) -> str:
    return orjson.dumps(moment, option=DUMPS_OPTIONS)[1:-1].decode()


def person_profile_warnings(event: str, processes_person: Any) -> list[IngestionWarning]:
    """PostHog's warnings about ``$process_person_profile``: only a boolean counts (anything else
    processes persons), and an event that links ids may not turn it off (PostHog drops such an
    event; Loom stores it and the models apply it to no person)."""
    field = f"properties.{PERSON_PROFILE}"
    if not isinstance(processes_person, bool):
        details = {"value": shown(processes_person), "event": event}
        return [IngestionWarning("invalid_process_person_profile", field, details)]
    if not processes_person and event in LINKED_ID:
        details = {"event": event}
        return [IngestionWarning(LINK_WITHOUT_PERSON, field, details)]
    return []


def client_time(**sent: Any) -> dict[str, Any] | None:
    """What the client sent about a record's time (None when nothing)."""
    return {field: value for field, value in sent.items() if value is not None} or None


@dataclass(frozen=True, slots=True)
class Receipt:
    """Who sent a request, when it arrived, from where, and what it contained."""

    org_id: str
    project_id: int
    received_at: datetime  # aware UTC
    ip: SecretStr | None
    future_tolerance: timedelta
    content_digest: str  # of the request body (see digest): a retry of it has the same one

    @classmethod
    def of(
        cls,
        key: ApiKey,
        received_at: datetime,
        ip: str | None,
        tolerance_hours: float,
        content_digest: str | None = None,
    ) -> Receipt:
        """Without a ``content_digest`` (see :func:`digest`), the receipt's records get uuids
        no other request shares."""
        return cls(
            key.org_id,
            key.project_id,
            received_at,
            SecretStr(ip) if ip else None,
            timedelta(hours=tolerance_hours),
            content_digest or uuid_module.uuid4().hex,
        )


class Records:
    """The records of one request, serialized and grouped by landing file."""

    def __init__(self, receipt: Receipt, source: str) -> None:
        self.receipt = receipt
        self.source = source
        self.count = 0
        self._org_id, self._project_id, self._ip = receipt.org_id, receipt.project_id, receipt.ip
        self._received_at = receipt.received_at
        self._tolerance = receipt.future_tolerance
        self._received = iso(receipt.received_at)
        self._warnings: list[IngestionWarning] = []  # of the next record landed
        self._uuid_prefix = (
            f"{receipt.org_id}\x1f{receipt.project_id}\x1f{source}\x1f{receipt.content_digest}"
        )
        self._lines: dict[str, list[bytes]] = defaultdict(list)

    def chunks(self) -> list[Chunk]:
        hour = floor_hour(self._received_at)
        return [
            Chunk(Target(stream, self.receipt.org_id, hour), b"\n".join(lines) + b"\n", len(lines))
            for stream, lines in self._lines.items()
        ]

    def _common(self, uuid: str | None) -> dict[str, Any]:
        return {
            "uuid": uuid or self._content_uuid(),
            "org_id": self._org_id,
            "project_id": self._project_id,
            "received_at": self._received,
            "source": self.source,
            "ip": self._ip.get_secret_value() if self._ip is not None else None,
        }

    def _content_uuid(self) -> str:
        """The uuid of the next record, the same whenever this request's body is sent again."""
        return str(uuid_module.uuid5(REQUEST_NAMESPACE, f"{self._uuid_prefix}\x1f{self.count}"))

    def _land(self, stream: str, record: dict[str, Any]) -> str:
        line = orjson.dumps(record, option=DUMPS_OPTIONS)
        if KEY_PREFIX_BYTES in line:  # scrubbing.may_hold_key, inlined: once per record
            line = self._scrubbed(stream, record)
        self._lines[stream].append(line)
        self.count += 1
        if self._warnings:
            for warning in self._warnings:
                self._land_warning(stream, record["uuid"], warning)
            self._warnings.clear()
        return record["uuid"]

    def _scrubbed(self, stream: str, record: dict[str, Any]) -> bytes:
        """The record's line with every string holding an API key ``[Filtered]``, and a warning
        naming where they were."""
        found: list[str] = []
        clean = scrubbed(record, "", found)
        if stream == "events" and clean["event"] == FILTERED:  # still an event name
            clean["event"] = normalize_event_name(FILTERED)[0]
        if found:
            details = {"fields": found[:NAMED_FIELDS], "count": len(found)}
            self._warnings.append(IngestionWarning(KEY_FILTERED, found[0], details))
        return orjson.dumps(clean, option=DUMPS_OPTIONS)

    def _land_warning(self, stream: str, uuid: str, warning: IngestionWarning) -> None:
        """An ingestion warning about record ``uuid`` of ``stream`` (not counted as a record the
        client sent)."""
        name = f"{self._org_id}\x1f{stream}\x1f{uuid}\x1f{warning.kind}\x1f{warning.field}"
        record = {
            **self._common(str(uuid_module.uuid5(WARNING_NAMESPACE, name))),
            "ip": None,
            "record_stream": stream,
            "record_uuid": uuid,
            "kind": warning.kind,
            "field": warning.field,
            "details": warning.details,
        }
        line = orjson.dumps(record, option=DUMPS_OPTIONS)
        if may_hold_key(line):  # a value quoted in the details
            line = orjson.dumps(scrubbed(record, "", []), option=DUMPS_OPTIONS)
        self._lines[WARNINGS_STREAM].append(line)

    def _resolved(self, resolved: Resolved) -> datetime:
        """The time a record lands with; its warnings land with it."""
        if resolved.warnings:
            self._warnings.extend(resolved.warnings)
        return resolved.moment

    def _loom_time(self, sent: datetime | None, field: str) -> datetime:
        if sent is None:
            return self._received_at
        if sent - self._received_at <= self._tolerance:  # nearly always: the hot path
            return sent
        return self._resolved(event_time.loom(sent, field, self._received_at, self._tolerance))

    def _loom_time_and_sent(
        self, sent: datetime | None, field: str
    ) -> tuple[datetime, dict[str, Any] | None]:
        """Loom's own routes: the time to land, and the ``client_time`` to keep: on these routes
        the time sent is the time landed, so only the one the far-future rule replaced."""
        when = self._loom_time(sent, field)
        return when, None if sent is None or when is sent else {field: sent}

    def _sentry_time(self, clock: EnvelopeClock, sent: datetime | None, field: str) -> datetime:
        """A Sentry time less the envelope's clock drift, then under Loom's far-future rule."""
        if sent is None:
            return self._loom_time(None, field)
        return self._loom_time(self._resolved(clock.correct(sent, field)), field)

    # -- events and identity operations ------------------------------------------------------

    def event(
        self,
        name: str,
        display_name: str | None,
        distinct_id: str | None,
        properties: dict[str, Any],
        when: datetime,
        clamped: datetime | None,
        uuid: str | None,
        sent_time: dict[str, Any] | None,
        environment: str = "production",
        anonymous_id: str | None = None,
        device_id: str | None = None,
        session_id: str | None = None,
    ) -> str:
        """One event, at ``when``; ``clamped``: the far-future time it replaced. PostHog's
        identity events ($identify, $create_alias, ...) go to identities."""
        if clamped is not None:  # far future: keep the time it would have had
            properties = {**properties, "$sent_timestamp": iso(clamped)}
        if PERSON_PROFILE in properties:
            self._warnings.extend(person_profile_warnings(name, properties[PERSON_PROFILE]))
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
                sent_time,
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
        record["client_time"] = sent_time
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
        timestamp: datetime,
        uuid: str | None,
        environment: str,
        sent_time: dict[str, Any] | None,
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
        record["timestamp"] = timestamp
        record["client_time"] = sent_time
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
        when, sent = self._loom_time_and_sent(item.timestamp, "timestamp")
        return self.event(
            name,
            display_name,
            distinct_id,
            item.properties,
            when,
            None if sent is None else item.timestamp,
            item.uuid,
            sent,
            item.environment,
            item.anonymous_id,
            item.device_id,
            item.session_id,
        )

    def posthog_event(self, item: PostHogEvent, sent_at: Any) -> str:
        """A PostHog event, at the time PostHog's rule gives it (``sent_at``: the request's)."""
        name, display_name = normalize_event_name(item.event)
        session_id = item.properties.get(SESSION_ID_PROPERTY)
        resolved = event_time.posthog(
            item.timestamp,
            sent_at,
            item.offset,
            item.properties.get("$ignore_sent_at"),
            self._received_at,
            self._tolerance,
        )
        return self.event(
            name,
            display_name,
            item.distinct_id,
            item.properties,
            self._resolved(resolved),
            resolved.clamped,
            item.uuid,
            client_time(timestamp=item.timestamp, sent_at=sent_at, offset=item.offset),
            session_id=session_id if isinstance(session_id, str) else None,
        )

    def _native_identity(
        self,
        body: IdentifyRequest | AliasRequest | SetRequest,
        kind: str,
        other_id: str | None,
        set_: dict[str, Any] | None,
        set_once: dict[str, Any] | None,
    ) -> str:
        when, sent = self._loom_time_and_sent(body.timestamp, "timestamp")
        return self.identity(
            kind, kind, body.distinct_id, other_id, set_, set_once, {}, when, body.uuid,
            body.environment, sent,
        )  # fmt: skip

    def identify(self, body: IdentifyRequest) -> str:
        return self._native_identity(body, "identify", body.anonymous_id, body.properties, None)

    def alias(self, body: AliasRequest) -> str:
        return self._native_identity(body, "alias", body.alias, None, None)

    def set_properties(self, body: SetRequest) -> str:
        return self._native_identity(body, "set", None, body.properties, body.set_once)

    # -- sessions ----------------------------------------------------------------------------

    def session_uuid(self, session_id: str, kind: str) -> str:
        name = f"{self.receipt.org_id}\x1f{session_id}\x1f{kind}"
        return str(uuid_module.uuid5(SESSION_NAMESPACE, name))

    def _session_start(
        self,
        session_id: str,
        distinct_id: str | None,
        release: str | None,
        environment: str | None,
        platform: str | None,
        started_at: datetime,
        sample_rate: float,
        sent_time: dict[str, Any] | None,
    ) -> str:
        record = self._common(self.session_uuid(session_id, "start"))
        record.update(
            kind="start", session_id=session_id, distinct_id=distinct_id, release=release,
            environment=environment, platform=platform, started_at=started_at,
            sample_rate=sample_rate, status=None, error_count=None, crash_count=None,
            ended_at=None, duration_ms=None, client_time=sent_time,
        )  # fmt: skip
        return self._land("sessions", record)

    def _session_end(
        self,
        session_id: str,
        uuid_kind: str,
        status: str,
        error_count: int,
        crash_count: int,
        ended_at: datetime,
        duration_ms: int | None,
        sent_time: dict[str, Any] | None,
    ) -> str:
        record = self._common(self.session_uuid(session_id, uuid_kind))
        record.update(
            kind="end", session_id=session_id, distinct_id=None, release=None, environment=None,
            platform=None, started_at=None, sample_rate=None, status=status,
            error_count=error_count, crash_count=crash_count, ended_at=ended_at,
            duration_ms=duration_ms, client_time=sent_time,
        )  # fmt: skip
        return self._land("sessions", record)

    def session_start(self, body: SessionStart) -> str:
        started_at, sent = self._loom_time_and_sent(body.started_at, "started_at")
        return self._session_start(
            body.session_id, body.distinct_id, body.release, body.environment, body.platform,
            started_at, body.sample_rate, sent,
        )  # fmt: skip

    def session_end(self, body: SessionEnd) -> str:
        ended_at, sent = self._loom_time_and_sent(body.ended_at, "ended_at")
        return self._session_end(
            body.session_id, "end", body.status, body.error_count, body.crash_count,
            ended_at, body.duration_ms, sent,
        )  # fmt: skip

    # -- Sentry sessions ---------------------------------------------------------------------

    def sentry_session_start(
        self,
        update: SentrySessionUpdate,
        distinct_id: str | None,
        platform: str | None,
        clock: EnvelopeClock,
    ) -> str:
        """The start of a Sentry session (every update carries it; the earliest received wins).
        Sentry does not sample sessions: rate 1."""
        return self._session_start(
            update.sid, distinct_id, update.attrs.release, update.attrs.environment, platform,
            self._sentry_time(clock, update.started, "started"), 1.0,
            client_time(started=update.started, sent_at=clock.sent_at),
        )  # fmt: skip

    def sentry_session_end(self, update: SentrySessionUpdate, clock: EnvelopeClock) -> str:
        """The end a Sentry update reports. A final status gets the session's one end uuid, as a
        native end; an update with status ``ok`` (still in progress) is a provisional end, one
        uuid per update time as sent, which the models rank below any final end. An update timed
        before its session's start (a client clock that moved) is timed at the start, as Relay
        does (its start's warnings land with the start)."""
        started = clock.correct(update.started, "started").moment
        if started - self._received_at > self._tolerance:  # the far-future rule, as the start's
            started = self._received_at
        ended_at = max(self._sentry_time(clock, update.timestamp, "timestamp"), started)
        final = update.status != "ok"
        crashed = update.status == "crashed"
        return self._session_end(
            update.sid,
            "end" if final else f"update {iso(update.timestamp or ended_at)}",
            update.status,
            # Sentry counts the crash among the errors; Loom counts it as the crash alone.
            max(update.errors - crashed, 0),
            int(crashed),
            ended_at,
            None if update.duration is None else round(update.duration * 1000),
            client_time(timestamp=update.timestamp, sent_at=clock.sent_at),
        )

    def session_aggregate(
        self,
        attrs: SentryAttributes,
        bucket: SentryAggregate,
        platform: str | None,
        clock: EnvelopeClock,
    ) -> str:
        record = self._common(None)
        record.update(
            release=attrs.release,
            environment=attrs.environment,
            platform=platform,
            started_at=self._sentry_time(clock, bucket.started, "started"),
            distinct_id=bucket.did,
            exited=bucket.exited,
            errored=bucket.errored,
            abnormal=bucket.abnormal,
            crashed=bucket.crashed,
            client_time=client_time(started=bucket.started, sent_at=clock.sent_at),
        )
        return self._land("session_aggregates", record)
