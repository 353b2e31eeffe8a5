"""When a record happened, as the SDK's own ingestion would say: PostHog's ``parseEventTimestamp``
for PostHog events, Relay's clock-drift correction for Sentry sessions, and Loom's rule for its own
routes. Each answer carries the ingestion warnings (PostHog's term) of the corrections and
fallbacks it made, which land beside the record (``Records``) and are counted in
``analytics.ingestion_warnings``.

The rules, and where Loom differs from PostHog and Relay: docs/ingest-api.md, "Event time".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ingest_api.ingest.schemas.fields import Timestamp

TIMESTAMP = TypeAdapter(Timestamp)
# Relay corrects a clock only when it is at least this far off: less is network latency and small
# drift, and 55 minutes still catches a wrong time zone (relay-server's MINIMUM_CLOCK_DRIFT).
MINIMUM_CLOCK_DRIFT = timedelta(minutes=55)
# PostHog reads ``sent_at`` in the query (posthog-js's ``_``) as milliseconds, and ignores a value
# from before 2021: an older SDK's seconds.
EARLIEST_QUERY_SENT_AT = datetime(2021, 1, 1, tzinfo=UTC)
SHOWN_CHARACTERS = 200  # of a value quoted in a warning

FUTURE = "event_timestamp_in_future"
INVALID = "ignored_invalid_timestamp"
CLOCK_DRIFT = "clock_drift"


@dataclass(frozen=True, slots=True)
class IngestionWarning:
    """A correction or fallback applied to one field of a record."""

    kind: str
    field: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resolved:
    moment: datetime
    warnings: tuple[IngestionWarning, ...] = ()
    clamped: datetime | None = None  # the future time replaced by the receive time


def shown(value: Any) -> Any:
    """A value as a warning quotes it: text cut short, anything else as it was."""
    return value[:SHOWN_CHARACTERS] if isinstance(value, str) else value


def parse(value: Any) -> tuple[datetime | None, str]:
    """``value`` as Loom's timestamps read it (ISO 8601 or unix milliseconds, from 1970), or None
    and why not."""
    try:
        return TIMESTAMP.validate_python(value), ""
    except ValidationError as error:
        return None, error.errors(include_url=False)[0]["msg"]


def _invalid(field: str, value: Any, reason: str) -> IngestionWarning:
    return IngestionWarning(
        INVALID, field, {"field": field, "value": shown(value), "reason": reason}
    )


def _future(now: datetime, tolerance: timedelta, moment: datetime, details: dict) -> Resolved:
    """PostHog's and Loom's last rule: a time more than ``tolerance`` ahead of the server's is a
    broken clock, so the record gets the receive time."""
    if moment - now <= tolerance:
        return Resolved(moment)
    warning = IngestionWarning(FUTURE, "timestamp", {**details, "now": now, "result": moment})
    return Resolved(now, (warning,), clamped=moment)


def query_sent_at(query: Any) -> Any:
    """The send time posthog-js puts in the query (``sent_at``, or ``_`` before), when it is one
    PostHog reads: integer milliseconds of 2021 or later. Else None, silently, as PostHog."""
    text = query.get("sent_at") or query.get("_")
    if not text or not text.isdigit():
        return None
    try:
        moment = datetime.fromtimestamp(int(text) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return text if moment >= EARLIEST_QUERY_SENT_AT else None


def posthog(
    timestamp: Any,
    sent_at: Any,
    offset: Any,
    ignore_sent_at: Any,
    now: datetime,
    tolerance: timedelta,
) -> Resolved:
    """PostHog's ``parseEventTimestamp``, rule for rule:

    1. ``sent_at`` (the batch's, else the query's) counts unless ``$ignore_sent_at``; an invalid
       one is ignored with a warning;
    2. a ``timestamp`` with a ``sent_at`` is corrected for the client's clock:
       ``now + (timestamp - sent_at)``; without one it is taken as sent;
    3. an ``offset`` (milliseconds before sending, posthog-js's batches) then gives
       ``now - offset`` (unless a timestamp was taken as sent);
    4. neither: ``now``;
    5. more than ``tolerance`` (23 h) in the future: ``now``, with a warning;
    6. invalid (or outside what the warehouse stores): ``now``, with a warning.
    """
    warnings: list[IngestionWarning] = []
    sent: datetime | None = None
    if sent_at and not ignore_sent_at:
        sent, reason = parse(sent_at)
        if sent is None:
            warnings.append(_invalid("sent_at", sent_at, reason))
    moment, field, value, reason = now, "timestamp", timestamp, ""
    taken_as_sent = False
    if timestamp:
        moment, reason = parse(timestamp)
        taken_as_sent = moment is None or sent is None
        if not taken_as_sent:
            moment = _shifted(now, moment - sent)
            reason = "" if moment is not None else "out of bounds once corrected by sent_at"
    if offset and not taken_as_sent:
        field, value = "offset", offset
        moment = _before(now, offset)
        reason = "" if moment is not None else "not a number of milliseconds in bounds"
    if moment is None:
        return Resolved(now, (*warnings, _invalid(field, value, reason)))
    details = {"timestamp": shown(timestamp), "sent_at": shown(sent_at), "offset": shown(offset)}
    resolved = _future(now, tolerance, moment, details)
    return Resolved(resolved.moment, (*warnings, *resolved.warnings), resolved.clamped)


def _shifted(now: datetime, skew: timedelta) -> datetime | None:
    try:
        moment = now + skew
    except OverflowError:
        return None
    return moment if moment.year >= 1970 else None


def _before(now: datetime, offset: Any) -> datetime | None:
    if isinstance(offset, bool) or not isinstance(offset, int | float):
        return None
    try:
        return _shifted(now, -timedelta(milliseconds=offset))
    except (OverflowError, ValueError):
        return None


def loom(sent: datetime | None, field: str, now: datetime, tolerance: timedelta) -> Resolved:
    """Loom's own routes: the time sent (validated already), else ``now``; a far-future one is
    ``now``, with a warning."""
    if sent is None:
        return Resolved(now)
    resolved = _future(now, tolerance, sent, {field: sent})
    warnings = tuple(
        IngestionWarning(warning.kind, field, warning.details) for warning in resolved.warnings
    )
    return Resolved(resolved.moment, warnings, resolved.clamped)


@dataclass(frozen=True, slots=True)
class EnvelopeClock:
    """What a Sentry envelope's ``sent_at`` says about the SDK's clock: how far it is behind the
    server's (negative: ahead), when that is at least ``MINIMUM_CLOCK_DRIFT`` (Relay's rule),
    else None; and the warning of an invalid ``sent_at``, which is ignored (Relay refuses the
    envelope)."""

    sent_at: Any
    drift: timedelta | None
    warnings: tuple[IngestionWarning, ...]

    @classmethod
    def of(cls, sent_at: Any, now: datetime) -> EnvelopeClock:
        if sent_at is None:
            return cls(None, None, ())
        sent, reason = parse(sent_at)
        if sent is None:
            return cls(sent_at, None, (_invalid("sent_at", sent_at, reason),))
        drift = now - sent
        return cls(sent_at, drift if abs(drift) >= MINIMUM_CLOCK_DRIFT else None, ())

    def correct(self, moment: datetime, field: str) -> Resolved:
        """``moment`` less the drift, with a warning, as Relay records one (``clock_drift``) on
        the events it corrects."""
        if self.drift is None:
            return Resolved(moment, self.warnings)
        details = {
            "sdk_time": shown(self.sent_at),
            "drift_seconds": self.drift.total_seconds(),
            field: moment,
        }
        warning = IngestionWarning(CLOCK_DRIFT, field, details)
        return Resolved(_shifted(moment, self.drift) or moment, (*self.warnings, warning))
