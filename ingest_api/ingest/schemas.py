"""Request and response models. Validation lives here, with messages a client can act on.

Native endpoints (``/api/analytics/*``, ``/api/sessions/*``) reject unknown fields, so a typo such
as ``distinctId`` is a 400 instead of silently lost data. The compatibility endpoints (``/track``
and PostHog's) ignore fields they do not use, because their SDKs send more than we store.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ingest_api.event_names import NAME_RULE, normalize_event_name
from ingest_api.number_patterns import integers_up_to
from warehouse import streams
from warehouse.registry import KEY_PREFIX
from warehouse.settings import get_settings
from warehouse.streams import PERSON_PROPERTY_OPERATIONS, TEXT_PATTERN

# ---------------------------------------------------------------------------------------------
# Field types

PROPERTIES_TOO_LARGE = "properties_too_large"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TIMESTAMP_HELP = "send unix milliseconds (1768737600000) or ISO 8601 (2026-01-18T12:00:00Z)"
QUERY_TIME_HELP = "send ISO 8601, e.g. 2026-01-18T12:00:00Z"
# Events per request: 20 times what PostHog's SDKs batch by default (100), as many as
# Mixpanel's and Amplitude's batch APIs take.
MAX_BATCH_ITEMS = 2000
# Timestamps: from 1970 as written (an offset may put one up to a day earlier in UTC, which the
# warehouse stores too) to the end of year 9999, as unix milliseconds at most MAX_UNIX_MS.
EARLIEST_YEAR = 1970
ISO_YEAR_PATTERN = r"^(19[7-9][0-9]|[2-9][0-9]{3})-"
MAX_UNIX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
# Text pydantic would read as a unix time; of it, the schema allows only digits, up to the max.
UNIX_TIME_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
UNIX_MS_TEXT_PATTERN = f"^{integers_up_to(MAX_UNIX_MS)}$"
UNIX_MS_TEXT = re.compile(UNIX_MS_TEXT_PATTERN)
SESSION_ID_PROPERTY = "$session_id"  # where posthog-js puts an event's session id
# Where SDKs put the key in a body; a value of our key format there is never stored.
KEY_PROPERTIES = ("token", "api_key", "$token")


def _display_event_name(name: str) -> str:
    normalize_event_name(name)
    return name


def _is_key(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(KEY_PREFIX)


def check_properties(value: dict[str, Any]) -> dict[str, Any]:
    # posthog-js sends its key as properties.token on every event: keys must not be stored.
    if any(_is_key(value.get(field)) for field in KEY_PROPERTIES):
        value = {
            name: item
            for name, item in value.items()
            if name not in KEY_PROPERTIES or not _is_key(item)
        }
    # A process-wide limit (LOOM_MAX_PROPERTIES_BYTES): a validator has no app at hand.
    limit = get_settings().max_properties_bytes
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError as error:  # e.g. nested deeper than orjson writes
        raise PydanticCustomError(
            "properties", "cannot be stored as JSON: {error}", {"error": str(error)}
        ) from None
    if size > limit:
        raise PydanticCustomError(
            PROPERTIES_TOO_LARGE,
            "properties are {size} bytes as JSON; the limit is {limit} bytes (1 MB)",
            {"size": size, "limit": limit},
        )
    return value


def text(kind: streams.Text) -> Any:
    """The type of a text of ``kind`` (warehouse/streams.py): its length and pattern, which the
    OpenAPI schema shows too. pydantic-core checks the pattern; errors.py words its error."""
    return Annotated[
        str,
        StringConstraints(
            min_length=kind.min_length, max_length=kind.max_length, pattern=kind.pattern
        ),
    ]


def text_problem(kind: streams.Text, value: str) -> str | None:
    """Why ``value`` is not a text of ``kind``, or None: for values inside a JSON object, which
    pydantic does not type."""
    if kind.max_length is not None and not kind.min_length <= len(value) <= kind.max_length:
        return f"has {len(value)} characters; {kind.min_length} to {kind.max_length} are allowed"
    if not re.fullmatch(kind.pattern, value):
        return control_character_problem(value) if kind.pattern == TEXT_PATTERN else kind.mismatch
    return None


def control_character_problem(value: str) -> str:
    position, character = next(
        (position, character)
        for position, character in enumerate(value)
        if re.fullmatch(f"[{streams.CONTROL_CHARACTERS}]", character)
    )
    return (
        f"holds the control character U+{ord(character):04X} at position {position + 1}: ids, "
        "names, releases and environments hold none (text inside properties may)"
    )


Id = text(streams.ID)
Environment = text(streams.ENVIRONMENT)
Release = text(streams.RELEASE)
# Checked by pydantic-core's own regex engine; errors.py words its error as NAME_RULE.
NativeEventName = Annotated[str, StringConstraints(pattern=streams.EVENT_NAME.pattern)]
DisplayEventName = Annotated[text(streams.DISPLAY_NAME), AfterValidator(_display_event_name)]
# What the OpenAPI can state of properties: person properties ($set, $set_once) are objects whose
# names hold no control character.
PERSON_PROPERTIES_SCHEMA = {"type": "object", "propertyNames": {"pattern": TEXT_PATTERN}}
PROPERTIES_SCHEMA = {
    "type": "object",
    "properties": {name: PERSON_PROPERTIES_SCHEMA for name in PERSON_PROPERTY_OPERATIONS},
    "description": "At most 1 MB as JSON; integers within 64 bits.",
}
Properties = Annotated[
    dict[str, Any], AfterValidator(check_properties), WithJsonSchema(PROPERTIES_SCHEMA)
]


def _person_property_names(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        problem = text_problem(streams.LABEL, name)
        if problem is not None:
            raise PydanticCustomError(
                "property_name",
                "person property name {name!r} {problem}",
                {"name": name[:60], "problem": problem},
            )
    return value


# Person properties ($set, $set_once and what identify/set write): the warehouse keeps each
# property name in a column (int_person_property_writes).
PersonProperties = Annotated[
    Properties,
    AfterValidator(_person_property_names),
    WithJsonSchema({**PERSON_PROPERTIES_SCHEMA, "description": "At most 1 MB as JSON."}),
]


def _json_integer(value: Any) -> Any:
    """What JSON Schema calls an integer: ``670`` or ``670.0``, not ``670.5``, ``true`` or
    ``"670"`` (which pydantic's lax mode would take)."""
    if isinstance(value, (bool, str)):
        raise PydanticCustomError("int_type", "Input should be a JSON integer")
    return value


def integer(kind: streams.Integer, description: str | None = None) -> Any:
    """The type of an integer of ``kind`` (warehouse/streams.py)."""
    # The bounds before the validator, so that the OpenAPI shows them as minimum and maximum.
    return Annotated[
        int,
        Field(ge=kind.minimum, le=kind.maximum, description=description),
        BeforeValidator(_json_integer),
    ]


def _timestamp_input(value: Any) -> Any:
    """Only what the schema allows: ISO 8601 text, or unix milliseconds up to MAX_UNIX_MS as an
    integer (``1.7e12`` being one too, as in JSON Schema) or digits. pydantic alone would also
    read fractions, booleans and numeric text such as ``"1.5e3"``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        acceptable = 0 <= value <= MAX_UNIX_MS
    elif isinstance(value, str):
        acceptable = bool(UNIX_MS_TEXT.fullmatch(value)) or not UNIX_TIME_TEXT.fullmatch(value)
    else:
        acceptable = isinstance(value, datetime)
    if not acceptable:
        raise PydanticCustomError(
            "timestamp",
            "not a timestamp: "
            + TIMESTAMP_HELP
            + f"; unix milliseconds are an integer from 0 (1970-01-01T00:00:00Z) to {MAX_UNIX_MS}"
            + " (got {value})",
            {"value": repr(value)[:40]},
        )
    return value


def _storable_timestamp(moment: datetime) -> datetime:
    """The moment in UTC (none sent means UTC), from year 1970 as written (ISO_YEAR_PATTERN). A
    time in year 9999 whose offset takes it past the calendar's end is later than any real one: it
    gets the latest instant, so the far-future rule gives its record the receive time."""
    if moment.year < EARLIEST_YEAR:
        raise PydanticCustomError(
            "timestamp",
            "timestamp before 1970 as written: send one from 1970-01-01T00:00:00Z to the year 9999",
        )
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


# pydantic-core parses ISO 8601 and unix time (numbers above 2e10 are milliseconds, as SDKs send
# them; smaller ones seconds); errors.py words its parsing errors as TIMESTAMP_HELP.
Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp_input),
    AfterValidator(_storable_timestamp),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": ISO_YEAR_PATTERN},
                {
                    "type": "string",
                    "pattern": UNIX_MS_TEXT_PATTERN,
                    "description": "unix milliseconds",
                },
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_UNIX_MS,
                    "description": "unix milliseconds",
                },
            ],
            "description": (
                "ISO 8601 from year 1970 to 9999, or unix milliseconds (integers below 2e10 are "
                "read as seconds); server time when absent."
            ),
        }
    ),
]
# Canonical UUID text, stored lowercase so that retries of one event compare equal.
EventUuid = Annotated[
    str,
    StringConstraints(pattern=UUID_PATTERN, to_lower=True),
    WithJsonSchema({"type": "string", "format": "uuid"}),
]
Platform = Literal[streams.PLATFORM.values]  # type: ignore[valid-type]
SessionStatus = Literal[streams.SESSION_STATUSES]  # type: ignore[valid-type]

# Events with these names are identity operations and land in the identities stream.
IDENTITY_EVENTS: dict[str, str] = {
    "$identify": "identify",
    "$create_alias": "alias",
    "$merge_dangerously": "merge_dangerously",
    "$set": "set",
    "$set_once": "set",
}


# The values of properties the models store in columns of their own (warehouse/streams.py).
EXTRACTED_PROPERTIES = [
    item
    for items in streams.EXTRACTED.values()
    for item in items
    if isinstance(item, streams.Extracted) and item.column == "properties"
]
# What an identity event needs in its properties: the other id it links.
LINKED_ID = {
    event: item.key
    for item in EXTRACTED_PROPERTIES
    for event in item.events
    if event in IDENTITY_EVENTS
}


def check_event_properties(event: str | None, properties: dict[str, Any]) -> None:
    """Identity events must carry what makes them usable downstream, and what the models take
    out of properties into a column of its own must be storable there."""
    # Every event name whose properties models read starts with '$': skip the normalization for
    # all other events.
    name = event and "$" in event and normalize_event_name(event)[0]
    if name in LINKED_ID:
        field = LINKED_ID[name]
        other = properties.get(field)
        optional = name == "$identify"  # an $identify without an anonymous id only sets properties
        if (other is None and not optional) or (other is not None and not _is_id(other)):
            raise PydanticCustomError(
                "identity",
                "{event} needs properties.{field}: the distinct_id it links (1-200 characters, "
                "no control character)",
                {"event": name, "field": field},
            )
    for field in PERSON_PROPERTY_OPERATIONS:
        if field in properties:
            if not isinstance(properties[field], dict):
                raise PydanticCustomError(
                    "identity", "properties.{field} must be an object", {"field": field}
                )
            _person_property_names(properties[field])
    for item in EXTRACTED_PROPERTIES:
        value = properties.get(item.key)
        if name in item.events and isinstance(value, str):
            problem = text_problem(item.kind, value)
            if problem is not None:
                raise PydanticCustomError(
                    "event_property",
                    "properties.{key} {problem}",
                    {"key": item.key, "problem": problem},
                )


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and text_problem(streams.ID, value) is None


# ---------------------------------------------------------------------------------------------
# Native analytics


class Native(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyInBody(BaseModel):
    """PostHog clients send the key in the body; the others use a header."""

    # Excluded from dumps: a key must never travel on with the data.
    api_key: str | None = Field(None, exclude=True, description="API key, if not in a header.")
    token: str | None = Field(None, exclude=True, description="API key, PostHog's spelling.")


class CaptureEvent(Native):
    event: NativeEventName = Field(description=NAME_RULE, examples=["checkout_completed"])
    distinct_id: Id = Field(examples=["user_123"])
    # Validated when defaulted too: an identity event without properties is still checked.
    properties: Properties = Field(
        default_factory=dict, validate_default=True, description="At most 1 MB as JSON."
    )
    timestamp: Timestamp | None = None
    uuid: EventUuid | None = Field(None, description="Client id of the event; retries keep it.")
    environment: Environment = "production"
    anonymous_id: Id | None = None
    device_id: Id | None = None
    session_id: Id | None = None

    @field_validator("properties")
    @classmethod
    def _identity(cls, properties: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        check_event_properties(info.data.get("event"), properties)
        return properties


class CaptureRequest(CaptureEvent, KeyInBody):
    pass


class BatchRequest(Native, KeyInBody):
    batch: list[CaptureEvent] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class IdentifyRequest(Native, KeyInBody):
    distinct_id: Id = Field(description="The identified user; their person wins conflicts.")
    anonymous_id: Id | None = Field(None, description="The anonymous id merged into it.")
    properties: PersonProperties = Field(
        default_factory=dict, description="Person properties to set."
    )
    timestamp: Timestamp | None = None
    uuid: EventUuid | None = None
    environment: Environment = "production"


class AliasRequest(Native, KeyInBody):
    distinct_id: Id
    alias: Id = Field(description="Another id of the same person.")
    timestamp: Timestamp | None = None
    uuid: EventUuid | None = None
    environment: Environment = "production"

    @field_validator("alias")
    @classmethod
    def _differs(cls, alias: str, info: ValidationInfo) -> str:
        if alias == info.data.get("distinct_id"):
            raise PydanticCustomError("alias", "alias must differ from distinct_id")
        return alias


class SetRequest(Native, KeyInBody):
    distinct_id: Id
    properties: PersonProperties = Field(description="Person properties to set (overwrite).")
    set_once: PersonProperties | None = Field(
        None, description="Person properties set only if unset."
    )
    timestamp: Timestamp | None = None
    uuid: EventUuid | None = None
    environment: Environment = "production"


# ---------------------------------------------------------------------------------------------
# Altertable-compatible /track


class TrackEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    environment: Environment = Field(examples=["production"])
    event: DisplayEventName = Field(examples=["Purchase Completed"])
    properties: Properties = Field(description="Send {} when there are none.")
    distinct_id: Id | None = None
    anonymous_id: Id | None = None
    device_id: Id | None = None
    session_id: Id | None = None
    timestamp: Timestamp | None = None
    uuid: EventUuid | None = None

    @field_validator("properties")
    @classmethod
    def _identity(cls, properties: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        check_event_properties(info.data.get("event"), properties)
        return properties


# Union tags contain spaces so they can never be mistaken for a field in an error's location.
ONE_EVENT, EVENT_ARRAY, BATCH_OBJECT = "one event", "array of events", "batch object"
UNION_TAGS = frozenset({ONE_EVENT, EVENT_ARRAY, BATCH_OBJECT})


def _body_shape(value: Any) -> str | None:
    if isinstance(value, list):
        return EVENT_ARRAY
    if isinstance(value, dict):
        return BATCH_OBJECT if "batch" in value else ONE_EVENT
    if isinstance(value, BaseModel):
        return BATCH_OBJECT if hasattr(value, "batch") else ONE_EVENT
    return None


TrackBody = Annotated[
    Annotated[TrackEvent, Tag(ONE_EVENT)]
    | Annotated[
        Annotated[list[TrackEvent], Field(min_length=1, max_length=MAX_BATCH_ITEMS)],
        Tag(EVENT_ARRAY),
    ],
    Discriminator(
        _body_shape,
        custom_error_type="body_shape",
        custom_error_message="expected one event object or an array of event objects",
    ),
]

# ---------------------------------------------------------------------------------------------
# PostHog-compatible capture

POSTHOG_TIME_HELP = (
    "ISO 8601 or unix milliseconds, corrected for the client's clock by the batch's sent_at as "
    "PostHog does; an invalid one means the receive time and an ingestion warning."
)


# posthog-js sends an event's session id as properties.$session_id: a string there is an id.
PostHogProperties = Annotated[
    Properties,
    WithJsonSchema(
        {
            **PROPERTIES_SCHEMA,
            "properties": {
                **PROPERTIES_SCHEMA["properties"],
                SESSION_ID_PROPERTY: {
                    "anyOf": [
                        {
                            "type": "string",
                            "minLength": streams.ID.min_length,
                            "maxLength": streams.ID.max_length,
                            "pattern": streams.ID.pattern,
                        },
                        {"not": {"type": "string"}},
                    ]
                },
            },
        }
    ),
]


class PostHogEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, populate_by_name=True)

    event: DisplayEventName
    distinct_id: Id
    properties: PostHogProperties = Field(default_factory=dict, validate_default=True)
    # As sent: PostHog's rule reads them (ingest_api/ingest/event_time.py), and an invalid one
    # means the receive time and an ingestion warning, not a 400.
    timestamp: Any = Field(None, description=POSTHOG_TIME_HELP)
    offset: Any = Field(None, description="Milliseconds between the event and its sending.")
    uuid: EventUuid | None = None
    set: PersonProperties | None = Field(None, alias="$set")
    set_once: PersonProperties | None = Field(None, alias="$set_once")

    @model_validator(mode="before")
    @classmethod
    def _distinct_id_from_properties(cls, data: Any) -> Any:
        # posthog-js sends the distinct_id inside properties only.
        if isinstance(data, dict) and data.get("distinct_id") is None:
            properties = data.get("properties")
            if isinstance(properties, dict) and properties.get("distinct_id") is not None:
                return {**data, "distinct_id": properties["distinct_id"]}
        return data

    @field_validator("properties")
    @classmethod
    def _identity(cls, properties: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        check_event_properties(info.data.get("event"), properties)
        return properties

    @field_validator("properties")
    @classmethod
    def _session_id(cls, properties: dict[str, Any]) -> dict[str, Any]:
        # posthog-js sends the session id in properties; it lands as the event's session_id.
        session_id = properties.get(SESSION_ID_PROPERTY)
        problem = isinstance(session_id, str) and text_problem(streams.ID, session_id)
        if problem:
            raise PydanticCustomError(
                "session_id",
                "properties.{key} {problem}",
                {"key": SESSION_ID_PROPERTY, "problem": problem},
            )
        return properties

    @model_validator(mode="after")
    def _person_properties_into_properties(self) -> PostHogEvent:
        # Top-level $set / $set_once (what posthog-python's set() sends) travel in properties,
        # where PostHog's other SDKs put them, so downstream reads one place.
        for field, values in (("$set", self.set), ("$set_once", self.set_once)):
            if values:
                self.properties[field] = {**self.properties.get(field, {}), **values}
        return self


class PostHogBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    batch: list[PostHogEvent] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    api_key: str | None = None
    sent_at: Any = Field(None, description="When the batch was sent, by the client's clock.")
    historical_migration: bool | None = None


PostHogBody = Annotated[
    Annotated[PostHogEvent, Tag(ONE_EVENT)]
    | Annotated[PostHogBatch, Tag(BATCH_OBJECT)]
    | Annotated[
        Annotated[list[PostHogEvent], Field(min_length=1, max_length=MAX_BATCH_ITEMS)],
        Tag(EVENT_ARRAY),
    ],
    Discriminator(
        _body_shape,
        custom_error_type="body_shape",
        custom_error_message='expected an event, {"batch": [events]} or an array of events',
    ),
]

# ---------------------------------------------------------------------------------------------
# Sessions: start and end


class SessionStart(Native, KeyInBody):
    session_id: Id = Field(examples=["ses_xxx"])
    distinct_id: Id = Field(examples=["user_123"])
    release: Release | None = None
    environment: Environment = "production"
    platform: Platform
    started_at: Timestamp
    sample_rate: float = Field(
        1.0,
        strict=True,
        ge=streams.SAMPLE_RATE.minimum,
        le=streams.SAMPLE_RATE.maximum,
        description=f"Share of sessions sent, in [{streams.MIN_SAMPLE_RATE}, 1].",
    )


class SessionEnd(Native, KeyInBody):
    session_id: Id = Field(examples=["ses_xxx"])
    status: SessionStatus
    error_count: integer(streams.COUNT, "Handled errors.") = 0  # type: ignore[valid-type]
    crash_count: integer(streams.COUNT, "Unhandled errors.") = 0  # type: ignore[valid-type]
    ended_at: Timestamp | None = None
    duration_ms: integer(streams.DURATION_MS) | None = None  # type: ignore[valid-type]


# ---------------------------------------------------------------------------------------------
# Sentry session envelopes (ingest_api/ingest/routes/sentry.py). Fields Loom does not store are
# ignored, as Sentry's own ingestion does.

# Relay (Sentry's ingestion) treats a nil UUID as "no distinct id"; so does Loom.
NIL_DISTINCT_IDS = frozenset({"00000000-0000-0000-0000-000000000000", "0" * 32})
SentryStatus = Literal["ok", "exited", "crashed", "abnormal", "errored"]


SENTRY_TIME_HELP = "send ISO 8601 (2026-01-18T12:00:00Z) or seconds since the epoch"


def _sentry_time(value: Any) -> datetime:
    """Sentry's protocol sends ISO 8601 text or a number of seconds since the epoch (not the
    milliseconds of Loom's own routes)."""
    try:
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        pass
    raise PydanticCustomError(
        "timestamp",
        "not a timestamp: " + SENTRY_TIME_HELP + " (got {value})",
        {"value": repr(value)[:40]},
    )


SentryTimestamp = Annotated[
    datetime, BeforeValidator(_sentry_time), AfterValidator(_storable_timestamp)
]


def _distinct_id(value: str | None) -> str | None:
    return None if value is None or not value or value in NIL_DISTINCT_IDS else value


# Empty is no distinct id, as in Sentry.
DistinctId = Annotated[
    Annotated[str, StringConstraints(max_length=streams.ID.max_length, pattern=TEXT_PATTERN)]
    | None,
    AfterValidator(_distinct_id),
]


def _release_required(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError(
            "missing",
            "a release is required (Sentry drops sessions without one too): "
            "pass release= to sentry_sdk.init",
        )
    return value


class SentryAttributes(BaseModel):
    model_config = ConfigDict(extra="ignore")

    release: Annotated[Release, BeforeValidator(_release_required)] = Field(
        None, validate_default=True
    )
    environment: Environment = "production"


class SentryItem(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    # Validated when absent too, so that a missing attrs is reported as a missing attrs.release.
    attrs: SentryAttributes = Field(default_factory=dict, validate_default=True)


SessionCount = integer(streams.COUNT)


class SentrySessionUpdate(SentryItem):
    """A ``session`` item: the whole state of one session at the time of the update."""

    sid: Id
    did: DistinctId = None
    started: SentryTimestamp
    timestamp: SentryTimestamp | None = None
    status: SentryStatus = "ok"
    errors: SessionCount = 0
    duration: float | None = Field(
        None, strict=True, ge=0, le=streams.INTEGER_MAX, description="Seconds."
    )


class SentryAggregate(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    started: SentryTimestamp
    did: DistinctId = None
    exited: SessionCount = 0
    errored: SessionCount = 0
    abnormal: SessionCount = 0
    crashed: SessionCount = 0

    @property
    def sessions(self) -> int:
        return self.exited + self.errored + self.abnormal + self.crashed


class SentrySessionAggregates(SentryItem):
    """A ``sessions`` item: counts of sessions per started minute, by final status."""

    aggregates: list[SentryAggregate] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Responses


class Ack(BaseModel):
    accepted: int = Field(description="Records accepted.")
    durable: bool = Field(description="True when they were on disk before this response.")


class SessionAck(Ack):
    uuid: str = Field(
        description="Deterministic per (org, session_id, start|end): retries land once."
    )


class PostHogAck(BaseModel):
    status: int = 1


class FieldError(BaseModel):
    index: int | None = Field(description="Position of the bad item in a batch; null otherwise.")
    field: str
    reason: str
    type: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []


class KeyInfo(BaseModel):
    key_id: str
    kind: str
    org_id: str
    project_id: int
    project_name: str
