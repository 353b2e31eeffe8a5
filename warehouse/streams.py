"""Columns of each landed stream: the record contract between the ingest API and the pipeline.

Each landing file holds one JSON object per line with exactly these keys. Timestamps are ISO 8601
in UTC with a ``Z`` suffix (``2026-01-18T12:00:00Z``, microseconds when non-zero); the warehouse
stores them as naive UTC ``TIMESTAMP``. ``uuid`` is unique per logical record: the client's own id
when the SDK sends one (so a retry lands twice with the same ``uuid`` and the models count it
once), otherwise one the server generates. Sessions use a deterministic ``uuid`` of
(org, session_id, kind) so that start and end are idempotent on ``session_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMON: dict[str, str] = {
    "uuid": "VARCHAR",
    "org_id": "VARCHAR",
    "project_id": "BIGINT",
    "received_at": "TIMESTAMP",
    "source": "VARCHAR",  # native | track | posthog | sessions | sentry
    "ip": "VARCHAR",  # client address; kept in raw data only, never logged
}

# A tracked event. Person-property updates sent with an event travel inside ``properties`` as
# ``$set`` / ``$set_once`` (PostHog's convention; top-level ones are moved there on ingest).
EVENTS: dict[str, str] = {
    **COMMON,
    "environment": "VARCHAR",
    "event": "VARCHAR",
    "event_display_name": "VARCHAR",  # the name as sent, when the compat endpoints normalized it
    "distinct_id": "VARCHAR",
    "anonymous_id": "VARCHAR",
    "device_id": "VARCHAR",
    "session_id": "VARCHAR",
    "properties": "JSON",
    "timestamp": "TIMESTAMP",
    "client_time": "JSON",  # see CLIENT_TIME
}

# An identity operation. ``distinct_id`` is the id whose person is merged *into* (it wins
# property conflicts); ``other_id`` is the anonymous id (identify) or the alias (alias).
#   kind = identify            native identify, PostHog ``$identify`` ($anon_distinct_id)
#   kind = alias               native alias, PostHog ``$create_alias`` (properties.alias)
#   kind = merge_dangerously   PostHog ``$merge_dangerously`` (properties.alias)
#   kind = set                 native set, PostHog ``$set`` events (other_id is null)
IDENTITIES: dict[str, str] = {
    **COMMON,
    "environment": "VARCHAR",
    "kind": "VARCHAR",
    "event": "VARCHAR",  # the event name as sent: $identify, $create_alias, identify, ...
    "distinct_id": "VARCHAR",
    "other_id": "VARCHAR",
    "set": "JSON",
    "set_once": "JSON",
    "properties": "JSON",
    "timestamp": "TIMESTAMP",
    "client_time": "JSON",  # see CLIENT_TIME
}

# A session start or end, from the session endpoints. An end carries only what the SDK sends at
# the end; the models merge start and end per (org_id, session_id). A Sentry session update lands
# as a start and an end; an update of a session still in progress (Sentry status ``ok``) is a
# provisional end with status ``ok``, which any other end of the session outranks (see
# fct_sessions).
SESSIONS: dict[str, str] = {
    **COMMON,
    "kind": "VARCHAR",  # start | end
    "session_id": "VARCHAR",
    "distinct_id": "VARCHAR",
    "release": "VARCHAR",
    "environment": "VARCHAR",
    "platform": "VARCHAR",  # javascript | node | rust | python
    "started_at": "TIMESTAMP",
    "sample_rate": "DOUBLE",
    "status": "VARCHAR",  # on end: exited | crashed | abnormal | errored | ok (provisional)
    "error_count": "INTEGER",
    "crash_count": "INTEGER",
    "ended_at": "TIMESTAMP",
    "duration_ms": "BIGINT",
    "client_time": "JSON",  # see CLIENT_TIME
}

# A Sentry ``sessions`` item's bucket: the sessions of one release and environment (and, when the
# SDK sends one, one distinct_id) that started in one minute, pre-aggregated by final status.
# Sentry does not sample sessions: each counts once, as an individual session at rate 1 does.
SESSION_AGGREGATES: dict[str, str] = {
    **COMMON,
    "release": "VARCHAR",
    "environment": "VARCHAR",
    "platform": "VARCHAR",
    "started_at": "TIMESTAMP",  # the bucket's minute
    "distinct_id": "VARCHAR",  # Sentry's did, when the SDK aggregates per user
    "exited": "INTEGER",
    "errored": "INTEGER",
    "abnormal": "INTEGER",
    "crashed": "INTEGER",
    "client_time": "JSON",  # see CLIENT_TIME
}

# ``client_time`` (events, identities, sessions, session_aggregates): what the client sent about
# when the record happened, as sent, e.g. ``{"timestamp": ..., "sent_at": ..., "offset": ...}``
# (PostHog) or ``{"started": ..., "sent_at": ...}`` (Sentry); null when nothing. The record's own
# times are what ingest made of it (docs/ingest-api.md, "Event time"); this keeps that replayable.
CLIENT_TIME = "client_time"

# A correction or fallback ingest applied to a record (PostHog's "ingestion warnings"): one per
# record, kind and field, landed in the same flush as the record.
#   kind = event_timestamp_in_future   a time over 23 h ahead replaced by the receive time
#   kind = ignored_invalid_timestamp   an invalid timestamp, sent_at or offset ignored
#   kind = clock_drift                 a Sentry time corrected by the envelope's sent_at
#   kind = key_filtered                strings holding an API key replaced by [Filtered]
#   kind = invalid_process_person_profile, invalid_event_when_process_person_profile_is_false
INGESTION_WARNINGS: dict[str, str] = {
    **COMMON,
    "record_stream": "VARCHAR",  # the stream of the record it concerns
    "record_uuid": "VARCHAR",
    "kind": "VARCHAR",
    "field": "VARCHAR",  # the field it concerns: timestamp, sent_at, offset, started, ...
    "details": "JSON",  # e.g. the value sent and why it was not taken
}

STREAM_COLUMNS: dict[str, dict[str, str]] = {
    "events": EVENTS,
    "identities": IDENTITIES,
    "sessions": SESSIONS,
    "session_aggregates": SESSION_AGGREGATES,
    "ingestion_warnings": INGESTION_WARNINGS,
}

# The column whose time a record happened at, to tell late records from others.
EVENT_TIME: dict[str, str] = {
    "events": "timestamp",
    "identities": "timestamp",
    "sessions": "started_at",
    "session_aggregates": "started_at",
    "ingestion_warnings": "received_at",
}

# Bounds every stored value keeps, so that every model can compute with every row. The ingest API
# refuses values outside them with a 400; the raw load quarantines records that break them anyway
# (an older API, a file written by hand).
INTEGER_MAX = 2**31 - 1
MIN_SAMPLE_RATE = 1e-6  # a stored session stands for at most a million
EARLIEST_TIMESTAMP = "0001-01-01"
LATEST_TIMESTAMP = "9999-12-31 23:59:59.999999"


@dataclass(frozen=True)
class RecordRule:
    """A condition (SQL over the stream's columns) every loadable record meets."""

    column: str
    predicate: str
    reason: str  # no quotes: it is embedded in SQL as a literal


def _required(*columns: str) -> list[RecordRule]:
    return [RecordRule(name, f'"{name}" IS NOT NULL', "is missing") for name in columns]


def _timestamps(columns: dict[str, str]) -> list[RecordRule]:
    return [
        RecordRule(
            name,
            f'"{name}" IS NULL OR "{name}" BETWEEN TIMESTAMP \'{EARLIEST_TIMESTAMP}\''
            f" AND TIMESTAMP '{LATEST_TIMESTAMP}'",
            "outside the years 1 to 9999",
        )
        for name, kind in columns.items()
        if kind == "TIMESTAMP"
    ]


def _at_least_zero(*columns: str) -> list[RecordRule]:
    return [
        RecordRule(name, f'"{name}" IS NULL OR "{name}" >= 0', "is negative") for name in columns
    ]


RECORD_RULES: dict[str, list[RecordRule]] = {
    "events": [
        *_required("uuid", "org_id", "project_id", "received_at", "event"),
        *_timestamps(EVENTS),
    ],
    "identities": [
        *_required("uuid", "org_id", "project_id", "received_at"),
        *_timestamps(IDENTITIES),
    ],
    "sessions": [
        *_required("uuid", "org_id", "project_id", "received_at", "session_id", "kind"),
        RecordRule("kind", "kind IN ('start', 'end')", "is neither start nor end"),
        RecordRule(
            "sample_rate",
            f"sample_rate IS NULL OR sample_rate BETWEEN {MIN_SAMPLE_RATE} AND 1",
            f"outside [{MIN_SAMPLE_RATE}, 1]",
        ),
        *_at_least_zero("error_count", "crash_count", "duration_ms"),
        *_timestamps(SESSIONS),
    ],
    "session_aggregates": [
        *_required("uuid", "org_id", "project_id", "received_at", "release", "started_at"),
        *_at_least_zero("exited", "errored", "abnormal", "crashed"),
        *_timestamps(SESSION_AGGREGATES),
    ],
    "ingestion_warnings": [
        *_required("uuid", "org_id", "project_id", "received_at", "record_uuid", "kind"),
        *_timestamps(INGESTION_WARNINGS),
    ],
}
