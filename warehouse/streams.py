"""Columns of each landed stream: the record contract between the ingest API and the pipeline.

Each landing file holds one JSON object per line with exactly these keys. Timestamps are ISO 8601
in UTC with a ``Z`` suffix (``2026-01-18T12:00:00Z``, microseconds when non-zero); the warehouse
stores them as naive UTC ``TIMESTAMP``. ``uuid`` is unique per logical record: the client's own id
when the SDK sends one (so a retry lands twice with the same ``uuid`` and the models count it
once), otherwise one the server generates. Sessions use a deterministic ``uuid`` of
(org, session_id, kind) so that start and end are idempotent on ``session_id``.

**One definition of a storable value.** Every column has a kind (:class:`Text`, :class:`Choice`,
:class:`Integer`, :class:`Number`, :class:`Timestamp`, :class:`JsonObject`), and so has every
value the models take out of a JSON column into a column of their own (:data:`EXTRACTED`). The
ingest API builds its request types from these kinds and answers 400 to what breaks them
(its request schemas); the raw load quarantines what breaks them anyway, e.g. a file
written by hand or by an older API (:data:`RECORD_RULES`, ``warehouse/raw_load.py``).

**No control characters in stored text.** DuckDB pushes a join's build-side keys (and IN lists)
into a lake table's scan, and DuckLake 1.5.5 writes each such constant as a literal into the SQL
it sends its catalog database to prune files by their min/max statistics; a NUL ends that SQL text
early, so one ``distinct_id`` holding a NUL failed every run of its hour, for every org. Upstream
DuckLake guards against it only after 1.5 (``tests/warehouse/test_ducklake_nul.py`` tells when the
pins move). Text that models may join or filter on therefore holds no character of Unicode's
category Cc (C0, DEL, C1); free-text properties keep theirs, JSON-escaped and never extracted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

# Unicode category Cc, as a regular-expression class that Python, pydantic-core (Rust), DuckDB
# (RE2) and JSON Schema (ECMA-262) all read alike.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
TEXT_PATTERN = rf"^[^{CONTROL_CHARACTERS}]*$"
NATIVE_EVENT_PATTERN = r"^[a-z$][a-z0-9_$.]{0,199}$"
MAX_TEXT_LENGTH = 200
INTEGER_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
# The largest integer every JSON parser reads exactly (JavaScript's Number.MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1
MIN_SAMPLE_RATE = 1e-6  # a stored session stands for at most a million
# What the warehouse stores and every model computes with, in UTC: the API takes times from 1970
# as written, which an offset (at most 23:59) may put on the last day of 1969 in UTC.
EARLIEST_TIMESTAMP = "1969-12-31 00:00:00"
LATEST_TIMESTAMP = "9999-12-31 23:59:59.999999"


@dataclass(frozen=True)
class Text:
    """A string of ``min_length`` to ``max_length`` characters (no bound when ``max_length`` is
    None) that matches ``pattern``; ``mismatch`` says why one that does not is refused."""

    min_length: int = 1
    max_length: int | None = MAX_TEXT_LENGTH
    pattern: str = TEXT_PATTERN
    mismatch: str = "holds a control character"
    sql_type: ClassVar[str] = "VARCHAR"


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]
    sql_type: ClassVar[str] = "VARCHAR"


@dataclass(frozen=True)
class Integer:
    """A JSON integer (not ``true``, ``1.0`` or ``"1"``) from ``minimum`` to ``maximum``."""

    minimum: int
    maximum: int
    sql_type: str = "BIGINT"


@dataclass(frozen=True)
class Number:
    """A JSON number from ``minimum`` to ``maximum``."""

    minimum: float
    maximum: float
    sql_type: ClassVar[str] = "DOUBLE"


@dataclass(frozen=True)
class Timestamp:
    sql_type: ClassVar[str] = "TIMESTAMP"


@dataclass(frozen=True)
class JsonObject:
    sql_type: ClassVar[str] = "JSON"


Kind = Text | Choice | Integer | Number | Timestamp | JsonObject

ID = Text()  # distinct, anonymous, device and session ids, uuids, org ids
EVENT_NAME = Text(
    pattern=NATIVE_EVENT_PATTERN,
    mismatch="not an event name (lowercase letters, digits, _, $ or ., from a letter or $)",
)
DISPLAY_NAME = Text()  # an event's name as a compatibility SDK sent it
RELEASE = Text()
ENVIRONMENT = Text()
# Person property names and feature-flag values: any length, no control character.
LABEL = Text(min_length=0, max_length=None)
PROJECT_ID = Integer(1, BIGINT_MAX)
COUNT = Integer(0, INTEGER_MAX, "INTEGER")
DURATION_MS = Integer(0, MAX_SAFE_INTEGER)
SAMPLE_RATE = Number(MIN_SAMPLE_RATE, 1)
TIMESTAMP = Timestamp()
OBJECT = JsonObject()
PLATFORM = Choice(("javascript", "node", "rust", "python"))
# What a session's end reports; Sentry's updates of a session still in progress also land as a
# provisional end with status ``ok`` (see fct_sessions).
SESSION_STATUSES = ("exited", "crashed", "abnormal", "errored")
STORED_SESSION_STATUS = Choice((*SESSION_STATUSES, "ok"))
IDENTITY_KIND = Choice(("identify", "alias", "merge_dangerously", "set"))
SOURCE = Choice(("native", "track", "posthog", "sessions", "sentry"))  # the route that landed it
SESSION_KIND = Choice(("start", "end"))

COMMON: dict[str, Kind] = {
    "uuid": ID,
    "org_id": ID,
    "project_id": PROJECT_ID,
    "received_at": TIMESTAMP,
    "source": SOURCE,
    "ip": ID,  # client address; kept in raw data only, never logged
}

# A tracked event. Person-property updates sent with an event travel inside ``properties`` as
# ``$set`` / ``$set_once`` (PostHog's convention; top-level ones are moved there on ingest).
EVENTS: dict[str, Kind] = {
    **COMMON,
    "environment": ENVIRONMENT,
    "event": EVENT_NAME,
    "event_display_name": DISPLAY_NAME,  # the name as sent, when the compat endpoints normalized it
    "distinct_id": ID,
    "anonymous_id": ID,
    "device_id": ID,
    "session_id": ID,
    "properties": OBJECT,
    "timestamp": TIMESTAMP,
    "client_time": OBJECT,  # see CLIENT_TIME
}

# An identity operation. ``distinct_id`` is the id whose person is merged *into* (it wins
# property conflicts); ``other_id`` is the anonymous id (identify) or the alias (alias).
#   kind = identify            native identify, PostHog ``$identify`` ($anon_distinct_id)
#   kind = alias               native alias, PostHog ``$create_alias`` (properties.alias)
#   kind = merge_dangerously   PostHog ``$merge_dangerously`` (properties.alias)
#   kind = set                 native set, PostHog ``$set`` events (other_id is null)
IDENTITIES: dict[str, Kind] = {
    **COMMON,
    "environment": ENVIRONMENT,
    "kind": IDENTITY_KIND,
    "event": EVENT_NAME,  # the event name as sent: $identify, $create_alias, identify, ...
    "distinct_id": ID,
    "other_id": ID,
    "set": OBJECT,
    "set_once": OBJECT,
    "properties": OBJECT,
    "timestamp": TIMESTAMP,
    "client_time": OBJECT,  # see CLIENT_TIME
}

# A session start or end, from the session endpoints. An end carries only what the SDK sends at
# the end; the models merge start and end per (org_id, session_id). A Sentry session update lands
# as a start and an end; an update of a session still in progress (Sentry status ``ok``) is a
# provisional end with status ``ok``, which any other end of the session outranks (see
# fct_sessions).
SESSIONS: dict[str, Kind] = {
    **COMMON,
    "kind": SESSION_KIND,
    "session_id": ID,
    "distinct_id": ID,
    "release": RELEASE,
    "environment": ENVIRONMENT,
    "platform": PLATFORM,
    "started_at": TIMESTAMP,
    "sample_rate": SAMPLE_RATE,
    "status": STORED_SESSION_STATUS,
    "error_count": COUNT,
    "crash_count": COUNT,
    "ended_at": TIMESTAMP,
    "duration_ms": DURATION_MS,
    "client_time": OBJECT,  # see CLIENT_TIME
}

# A Sentry ``sessions`` item's bucket: the sessions of one release and environment (and, when the
# SDK sends one, one distinct_id) that started in one minute, pre-aggregated by final status.
# Sentry does not sample sessions: each counts once, as an individual session at rate 1 does.
SESSION_AGGREGATES: dict[str, Kind] = {
    **COMMON,
    "release": RELEASE,
    "environment": ENVIRONMENT,
    "platform": PLATFORM,
    "started_at": TIMESTAMP,  # the bucket's minute
    "distinct_id": ID,  # Sentry's did, when the SDK aggregates per user
    "exited": COUNT,
    "errored": COUNT,
    "abnormal": COUNT,
    "crashed": COUNT,
    "client_time": OBJECT,  # see CLIENT_TIME
}

# ``client_time`` (events, identities, sessions, session_aggregates): what the client sent about
# when the record happened, as sent, e.g. ``{"timestamp": ..., "sent_at": ..., "offset": ...}``
# (PostHog) or ``{"started": ..., "sent_at": ...}`` (Sentry); null when nothing, or when the time
# sent is the time landed (Loom's own routes). The record's own times are what ingest made of it
# (docs/ingest-api.md, "Event time"); this keeps that replayable.
CLIENT_TIME = "client_time"

# A correction or fallback ingest applied to a record (PostHog's "ingestion warnings"): one per
# record, kind and field, landed in the same flush as the record.
#   kind = event_timestamp_in_future   a time over 23 h ahead replaced by the receive time
#   kind = ignored_invalid_timestamp   an invalid timestamp, sent_at or offset ignored
#   kind = clock_drift                 a Sentry time corrected by the envelope's sent_at
#   kind = key_filtered                strings holding an API key replaced by [Filtered]
#   kind = invalid_process_person_profile, invalid_event_when_process_person_profile_is_false
INGESTION_WARNINGS: dict[str, Kind] = {
    **COMMON,
    "record_stream": Choice(("events", "identities", "sessions", "session_aggregates")),
    "record_uuid": ID,
    "kind": ID,
    "field": LABEL,  # the field it concerns: timestamp, sent_at, offset, started, ...
    "details": OBJECT,  # e.g. the value sent and why it was not taken
}

STREAM_KINDS: dict[str, dict[str, Kind]] = {
    "events": EVENTS,
    "identities": IDENTITIES,
    "sessions": SESSIONS,
    "session_aggregates": SESSION_AGGREGATES,
    "ingestion_warnings": INGESTION_WARNINGS,
}
STREAM_COLUMNS: dict[str, dict[str, str]] = {
    stream: {name: kind.sql_type for name, kind in kinds.items()}
    for stream, kinds in STREAM_KINDS.items()
}

# The column whose time a record happened at, to tell late records from others.
EVENT_TIME: dict[str, str] = {
    "events": "timestamp",
    "identities": "timestamp",
    "sessions": "started_at",
    "session_aggregates": "started_at",
    "ingestion_warnings": "received_at",
}


@dataclass(frozen=True)
class Extracted:
    """A top-level ``key`` of JSON ``column`` that models store in a column of their own, in
    records of ``events`` only: when it is a string, it is of ``kind``."""

    column: str
    key: str
    kind: Text
    events: tuple[str, ...]


@dataclass(frozen=True)
class Keys:
    """An object the models unpack into one row per key, keeping the key as a column: the
    ``key`` of JSON ``column`` (None: the column's own object). Its keys are of ``kind``."""

    column: str
    key: str | None
    kind: Text = LABEL


PERSON_PROPERTY_OPERATIONS = ("$set", "$set_once")
# Every ``->>`` and unpacked object of dbt_project/models that becomes a column.
EXTRACTED: dict[str, list[Extracted | Keys]] = {
    "events": [
        Extracted("properties", "$feature_flag", LABEL, ("$feature_flag_called",)),
        Extracted("properties", "$feature_flag_response", LABEL, ("$feature_flag_called",)),
        *(Keys("properties", operation) for operation in PERSON_PROPERTY_OPERATIONS),
    ],
    "identities": [
        Extracted("properties", "$anon_distinct_id", ID, ("$identify",)),
        Extracted("properties", "alias", ID, ("$create_alias", "$merge_dangerously")),
        Keys("set", None),
        Keys("set_once", None),
        *(Keys("properties", operation) for operation in PERSON_PROPERTY_OPERATIONS),
    ],
    "sessions": [],
    "session_aggregates": [],
    "ingestion_warnings": [],
}


@dataclass(frozen=True)
class RecordRule:
    """A condition (SQL over the stream's columns) every loadable record meets."""

    column: str
    predicate: str
    reason: str  # no quotes: it is embedded in SQL as a literal
    # Whether it refuses nothing but control characters, in the stream's "text" columns or in its
    # "json" ones: a record whose JSON there is printable ASCII without escapes meets it (JSON
    # escapes every C0 character), which spares the loader looking.
    control_characters_in: str | None = None


def _quoted(name: str) -> str:
    return f'"{name}"'


def _path(key: str | None) -> str:
    return "'$'" if key is None else f"'$.\"{key}\"'"


def text_rules(column: str, value: str, kind: Text, within: str = "text") -> list[RecordRule]:
    """The rules a text ``value`` (SQL, not NULL) meets, reported as ``column``; the value is in
    a column of ``within`` (text or json)."""
    rules = [
        RecordRule(
            column,
            f"regexp_full_match({value}, '{kind.pattern}')",
            kind.mismatch,
            control_characters_in=within if kind.pattern == TEXT_PATTERN else None,
        )
    ]
    if kind.max_length is not None:
        length = f"length({value}) BETWEEN {kind.min_length} AND {kind.max_length}"
        bounds = f"not {kind.min_length} to {kind.max_length} characters long"
        rules.insert(0, RecordRule(column, length, bounds))
    return rules


def value_rules(name: str, kind: Kind) -> list[RecordRule]:
    """The rules column ``name``'s value meets when it is not NULL."""
    column = _quoted(name)
    match kind:
        case Text():
            return text_rules(name, column, kind)
        case Choice(values):
            listed = ", ".join(f"'{value}'" for value in values)
            return [RecordRule(name, f"{column} IN ({listed})", f"not one of {', '.join(values)}")]
        case Integer(minimum, maximum) | Number(minimum, maximum):
            between = f"{column} BETWEEN {minimum} AND {maximum}"
            return [RecordRule(name, between, f"outside [{minimum}, {maximum}]")]
        case Timestamp():
            between = (
                f"{column} BETWEEN TIMESTAMP '{EARLIEST_TIMESTAMP}'"
                f" AND TIMESTAMP '{LATEST_TIMESTAMP}'"
            )
            return [RecordRule(name, between, "before 1969-12-31 or after 9999")]
        case JsonObject():
            # DuckDB writes the JSON it reads without leading space: an object's text starts with
            # a brace (cheaper than json_type, which parses it).
            return [RecordRule(name, f"starts_with({column}, '{{')", "not a JSON object")]


def extracted_rules(extracted: Extracted | Keys) -> list[RecordRule]:
    """The rules of a value models extract. CASE, not OR: DuckDB evaluates a CASE branch only
    for the rows that reach it, so most records are never parsed for it."""
    column, path = _quoted(extracted.column), _path(extracted.key)
    match extracted:
        case Extracted(_, key, kind, events):
            listed = ", ".join(f"'{event}'" for event in events)
            name = f"{extracted.column}.{key}"
            return [
                replace(
                    rule,
                    predicate=f"CASE WHEN event IS NULL OR event NOT IN ({listed}) THEN true"
                    f" WHEN json_type({column}, {path}) IS DISTINCT FROM 'VARCHAR' THEN true"
                    f" ELSE {rule.predicate} END",
                )
                for rule in text_rules(name, f"({column} ->> {path})", kind, "json")
            ]
        case Keys(_, key, kind):
            name = extracted.column if key is None else f"{extracted.column}.{key}"
            rules = text_rules(f"{name} keys", "property_name", kind, "json")
            every = " AND ".join(rule.predicate for rule in rules)
            # Most objects hold no such key: looking for it in the JSON text spares parsing them.
            # The text is DuckDB's own serialization of the JSON, so a key is never \u-escaped.
            unmentioned = (
                "" if key is None else f"WHEN NOT contains({column}, '\"{key}\"') THEN true "
            )
            return [
                RecordRule(
                    f"{name} keys",
                    f"CASE {unmentioned}"
                    f"WHEN json_type({column}, {path}) IS DISTINCT FROM 'OBJECT' THEN true"
                    # An empty object has no key to refuse (list_bool_and([]) is NULL).
                    f" ELSE coalesce(list_bool_and(list_transform(json_keys({column}, {path}),"
                    f" lambda property_name: {every})), true) END",
                    "; ".join(rule.reason for rule in rules),
                    "json" if all(rule.control_characters_in for rule in rules) else None,
                )
            ]


REQUIRED: dict[str, tuple[str, ...]] = {
    "events": ("uuid", "org_id", "project_id", "received_at", "event"),
    "identities": ("uuid", "org_id", "project_id", "received_at"),
    "sessions": ("uuid", "org_id", "project_id", "received_at", "session_id", "kind"),
    "session_aggregates": ("uuid", "org_id", "project_id", "received_at", "release", "started_at"),
    "ingestion_warnings": ("uuid", "org_id", "project_id", "received_at", "record_uuid", "kind"),
}


def _stream_rules(stream: str) -> list[RecordRule]:
    required = [
        RecordRule(name, f"{_quoted(name)} IS NOT NULL", "is missing") for name in REQUIRED[stream]
    ]
    # Only the required columns must be there: a missing value breaks no other rule.
    valued = [
        replace(rule, predicate=f"{_quoted(name)} IS NULL OR {rule.predicate}")
        for name, kind in STREAM_KINDS[stream].items()
        for rule in value_rules(name, kind)
    ]
    extracted = [rule for item in EXTRACTED[stream] for rule in extracted_rules(item)]
    return [*required, *valued, *extracted]


RECORD_RULES: dict[str, list[RecordRule]] = {
    stream: _stream_rules(stream) for stream in STREAM_KINDS
}
