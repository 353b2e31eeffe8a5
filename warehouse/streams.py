"""Columns of each landed stream: the record contract between the ingest API and the pipeline.

Each landing file holds one JSON object per line with exactly these keys. Timestamps are ISO 8601
in UTC with a ``Z`` suffix (``2026-01-18T12:00:00Z``, microseconds when non-zero); the warehouse
stores them as naive UTC ``TIMESTAMP``. ``uuid`` is unique per logical record: the client's own id
when the SDK sends one (so a retry lands twice with the same ``uuid`` and the models count it
once), otherwise one the server generates. Sessions use a deterministic ``uuid`` of
(org, session_id, kind) so that start and end are idempotent on ``session_id``.
"""

from __future__ import annotations

COMMON: dict[str, str] = {
    "uuid": "VARCHAR",
    "org_id": "VARCHAR",
    "project_id": "BIGINT",
    "received_at": "TIMESTAMP",
    "source": "VARCHAR",  # native | track | posthog | sessions
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
}

# A session start or end (seed 002). An end carries only what the SDK sends at the end; the
# models merge start and end per (org_id, session_id).
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
    "status": "VARCHAR",  # on end: exited | crashed | abnormal | errored
    "error_count": "INTEGER",
    "crash_count": "INTEGER",
    "ended_at": "TIMESTAMP",
    "duration_ms": "BIGINT",
}

STREAM_COLUMNS: dict[str, dict[str, str]] = {
    "events": EVENTS,
    "identities": IDENTITIES,
    "sessions": SESSIONS,
}
