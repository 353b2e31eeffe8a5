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

from warehouse.registry import KEY_PREFIX
from warehouse.settings import get_settings
from warehouse.streams import INTEGER_MAX, MIN_SAMPLE_RATE

# ---------------------------------------------------------------------------------------------
# Field types

NATIVE_EVENT_PATTERN = r"^[a-z$][a-z0-9_$.]{0,199}$"
NATIVE_EVENT_NAME = re.compile(NATIVE_EVENT_PATTERN)
NAME_RULE = (
    "event names are lowercase letters, digits, '_', '$' or '.', start with a lowercase letter "
    "or '$', and have at most 200 characters (e.g. checkout_completed)"
)
NOT_NAME_CHARACTERS = re.compile(r"[^a-z0-9_$.]+")
PROPERTIES_TOO_LARGE = "properties_too_large"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TIMESTAMP_HELP = "send unix milliseconds (1768737600000) or ISO 8601 (2026-01-18T12:00:00Z)"
QUERY_TIME_HELP = "send ISO 8601, e.g. 2026-01-18T12:00:00Z"
# Events per request: 20 times what PostHog's SDKs batch by default (100), as many as
# Mixpanel's and Amplitude's batch APIs take.
MAX_BATCH_ITEMS = 2000
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
# Text pydantic would read as a unix time; of it, the schema allows only digits.
UNIX_TIME_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
UNIX_MS_TEXT = re.compile(r"[0-9]+")
BIGINT_MAX = 2**63 - 1
# Where SDKs put the key in a body; a value of our key format there is never stored.
KEY_PROPERTIES = ("token", "api_key", "$token")


def normalize_event_name(name: str) -> tuple[str, str | None]:
    """The compatibility endpoints' rule: ``(native name, display name or None)``.

    A name that is already native is kept. Otherwise it is lowercased and every run of other
    characters becomes one ``_`` (``Checkout Completed`` -> ``checkout_completed``), and the name
    as sent is kept as the display name. A name that is still not native is rejected.
    """
    if NATIVE_EVENT_NAME.fullmatch(name):
        return name, None
    normalized = NOT_NAME_CHARACTERS.sub("_", name.lower()).strip("_")
    if not NATIVE_EVENT_NAME.fullmatch(normalized):
        raise PydanticCustomError(
            "event_name",
            "event name '{name}' normalizes to '{normalized}', which is not valid: " + NAME_RULE,
            {"name": name[:60], "normalized": normalized[:60]},
        )
    return normalized, name


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


Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Environment = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# Checked by pydantic-core's own regex engine; errors.py words its error as NAME_RULE.
NativeEventName = Annotated[str, StringConstraints(pattern=NATIVE_EVENT_PATTERN)]
DisplayEventName = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_display_event_name)
]
Properties = Annotated[dict[str, Any], AfterValidator(check_properties)]


def _timestamp_input(value: Any) -> Any:
    """Only what the schema allows: ISO 8601 text, or unix milliseconds as an integer or digits.
    pydantic alone would also read floats, booleans and numeric text such as ``"1.5e3"``."""
    if isinstance(value, datetime) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and (
        UNIX_MS_TEXT.fullmatch(value) or not UNIX_TIME_TEXT.fullmatch(value)
    ):
        return value
    raise PydanticCustomError(
        "timestamp",
        "not a timestamp: " + TIMESTAMP_HELP + "; unix milliseconds are an integer (got {value})",
        {"value": repr(value)[:40]},
    )


def _storable_timestamp(moment: datetime) -> datetime:
    """The moment in UTC (none sent means UTC), within what the warehouse stores and queries."""
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # a time in year 1 or 9999 whose offset leaves the calendar
        utc = None
    if utc is None or utc < EARLIEST_TIMESTAMP:
        raise PydanticCustomError(
            "timestamp",
            "timestamp outside the storable range: from 1970-01-01T00:00:00Z to year 9999 in UTC",
        )
    return utc


# pydantic-core parses ISO 8601 and unix time (numbers above 2e10 are milliseconds, as SDKs send
# them; smaller ones seconds); errors.py words its parsing errors as TIMESTAMP_HELP.
Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp_input),
    AfterValidator(_storable_timestamp),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "pattern": "^[0-9]+$", "description": "unix milliseconds"},
                {"type": "integer", "minimum": 0, "description": "unix milliseconds"},
            ],
            "description": (
                "ISO 8601 or unix milliseconds (integers below 2e10 are read as seconds), "
                "from 1970-01-01T00:00:00Z; server time when absent."
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
Platform = Literal["javascript", "node", "rust", "python"]
SessionStatus = Literal["exited", "crashed", "abnormal", "errored"]

# Events with these names are identity operations and land in the identities stream.
IDENTITY_EVENTS: dict[str, str] = {
    "$identify": "identify",
    "$create_alias": "alias",
    "$merge_dangerously": "merge_dangerously",
    "$set": "set",
    "$set_once": "set",
}


# What an identity event needs in its properties: the other id it links.
LINKED_ID = {
    "$identify": "$anon_distinct_id",
    "$create_alias": "alias",
    "$merge_dangerously": "alias",
}


def check_identity_properties(event: str | None, properties: dict[str, Any]) -> None:
    """Identity events must carry what makes them usable downstream."""
    # Every identity event name starts with '$': skip the normalization for all other events.
    name = event and "$" in event and normalize_event_name(event)[0]
    if name in LINKED_ID:
        field = LINKED_ID[name]
        other = properties.get(field)
        optional = name == "$identify"  # an $identify without an anonymous id only sets properties
        if (other is None and not optional) or (other is not None and not _is_id(other)):
            raise PydanticCustomError(
                "identity",
                "{event} needs properties.{field}: the distinct_id (1-200 characters) it links",
                {"event": name, "field": field},
            )
    for field in ("$set", "$set_once"):
        if field in properties and not isinstance(properties[field], dict):
            raise PydanticCustomError(
                "identity", "properties.{field} must be an object", {"field": field}
            )


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 200


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
        check_identity_properties(info.data.get("event"), properties)
        return properties


class CaptureRequest(CaptureEvent, KeyInBody):
    pass


class BatchRequest(Native, KeyInBody):
    batch: list[CaptureEvent] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class IdentifyRequest(Native, KeyInBody):
    distinct_id: Id = Field(description="The identified user; their person wins conflicts.")
    anonymous_id: Id | None = Field(None, description="The anonymous id merged into it.")
    properties: Properties = Field(default_factory=dict, description="Person properties to set.")
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
    properties: Properties = Field(description="Person properties to set (overwrite).")
    set_once: Properties | None = Field(None, description="Person properties set only if unset.")
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
        check_identity_properties(info.data.get("event"), properties)
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


class PostHogEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, populate_by_name=True)

    event: DisplayEventName
    distinct_id: Id
    properties: Properties = Field(default_factory=dict, validate_default=True)
    # As sent: PostHog's rule reads them (ingest_api/ingest/event_time.py), and an invalid one
    # means the receive time and an ingestion warning, not a 400.
    timestamp: Any = Field(None, description=POSTHOG_TIME_HELP)
    offset: Any = Field(None, description="Milliseconds between the event and its sending.")
    uuid: EventUuid | None = None
    set: Properties | None = Field(None, alias="$set")
    set_once: Properties | None = Field(None, alias="$set_once")

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
        check_identity_properties(info.data.get("event"), properties)
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
    release: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    environment: Environment = "production"
    platform: Platform
    started_at: Timestamp
    sample_rate: float = Field(
        1.0,
        strict=True,
        ge=MIN_SAMPLE_RATE,
        le=1,
        description=f"Share of sessions sent, in [{MIN_SAMPLE_RATE}, 1].",
    )


class SessionEnd(Native, KeyInBody):
    session_id: Id = Field(examples=["ses_xxx"])
    status: SessionStatus
    # Strict: the schema says integer, so true, 1.0 and "1" are refused rather than converted.
    error_count: int = Field(0, strict=True, ge=0, le=INTEGER_MAX, description="Handled errors.")
    crash_count: int = Field(0, strict=True, ge=0, le=INTEGER_MAX, description="Unhandled errors.")
    ended_at: Timestamp | None = None
    duration_ms: int | None = Field(None, strict=True, ge=0, le=BIGINT_MAX)


# ---------------------------------------------------------------------------------------------
# Sentry session envelopes (ingest_api/ingest/routes/sentry.py). Fields Loom does not store are
# ignored, as Sentry's own ingestion does.

# Relay (Sentry's ingestion) treats a nil UUID as "no distinct id"; so does Loom.
NIL_DISTINCT_IDS = frozenset({"00000000-0000-0000-0000-000000000000", "0" * 32})
SentryStatus = Literal["ok", "exited", "crashed", "abnormal", "errored"]
Release = Annotated[str, StringConstraints(min_length=1, max_length=200)]


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


DistinctId = Annotated[
    Annotated[str, StringConstraints(max_length=200)] | None, AfterValidator(_distinct_id)
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


SessionCount = Annotated[int, Field(strict=True, ge=0, le=INTEGER_MAX)]


class SentrySessionUpdate(SentryItem):
    """A ``session`` item: the whole state of one session at the time of the update."""

    sid: Id
    did: DistinctId = None
    started: SentryTimestamp
    timestamp: SentryTimestamp | None = None
    status: SentryStatus = "ok"
    errors: SessionCount = 0
    duration: float | None = Field(None, strict=True, ge=0, le=INTEGER_MAX, description="Seconds.")


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
