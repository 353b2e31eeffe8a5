"""Request and response models. Validation lives here, with messages a client can act on.

Native endpoints (``/api/analytics/*``, ``/api/sessions/*``) reject unknown fields, so a typo such
as ``distinctId`` is a 400 instead of silently lost data. The compatibility endpoints (``/track``
and PostHog's) ignore fields they do not use, because their SDKs send more than we store.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
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

from warehouse.settings import get_settings

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


def check_properties(value: dict[str, Any]) -> dict[str, Any]:
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
# pydantic-core parses ISO 8601 and unix time (numbers above 2e10 are milliseconds, as SDKs send
# them; smaller ones seconds); errors.py words its errors as TIMESTAMP_HELP.
Timestamp = Annotated[
    datetime,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "integer", "description": "unix milliseconds"},
            ],
            "description": "ISO 8601 or unix milliseconds; server time when absent.",
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
    batch: list[CaptureEvent] = Field(min_length=1)


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
# Altertable-compatible /track (seed 001)


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
    | Annotated[Annotated[list[TrackEvent], Field(min_length=1)], Tag(EVENT_ARRAY)],
    Discriminator(
        _body_shape,
        custom_error_type="body_shape",
        custom_error_message="expected one event object or an array of event objects",
    ),
]

# ---------------------------------------------------------------------------------------------
# PostHog-compatible capture


class PostHogEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, populate_by_name=True)

    event: DisplayEventName
    distinct_id: Id
    properties: Properties = Field(default_factory=dict, validate_default=True)
    timestamp: Timestamp | None = None
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

    batch: list[PostHogEvent] = Field(min_length=1)
    api_key: str | None = None
    sent_at: str | None = None
    historical_migration: bool | None = None


PostHogBody = Annotated[
    Annotated[PostHogEvent, Tag(ONE_EVENT)]
    | Annotated[PostHogBatch, Tag(BATCH_OBJECT)]
    | Annotated[Annotated[list[PostHogEvent], Field(min_length=1)], Tag(EVENT_ARRAY)],
    Discriminator(
        _body_shape,
        custom_error_type="body_shape",
        custom_error_message='expected an event, {"batch": [events]} or an array of events',
    ),
]

# ---------------------------------------------------------------------------------------------
# Sessions (seed 002)


class SessionStart(Native, KeyInBody):
    session_id: Id = Field(examples=["ses_xxx"])
    distinct_id: Id = Field(examples=["user_123"])
    release: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    environment: Environment = "production"
    platform: Platform
    started_at: Timestamp
    sample_rate: float = Field(1.0, gt=0, le=1, description="Share of sessions sent, in (0, 1].")


class SessionEnd(Native, KeyInBody):
    session_id: Id = Field(examples=["ses_xxx"])
    status: SessionStatus
    error_count: int = Field(0, ge=0, description="Handled errors.")
    crash_count: int = Field(0, ge=0, description="Unhandled errors.")
    ended_at: Timestamp | None = None
    duration_ms: int | None = Field(None, ge=0)


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
