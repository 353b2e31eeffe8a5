"""Field types every protocol's requests share: ids, names, timestamps, properties and their
limits, with messages a client can act on."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from ingest_api.api_types import UNIX_TIME_TEXT
from ingest_api.event_names import normalize_event_name
from ingest_api.number_patterns import integers_up_to
from warehouse import streams
from warehouse.registry import KEY_PREFIX
from warehouse.settings import get_settings
from warehouse.streams import PERSON_PROPERTY_OPERATIONS, TEXT_PATTERN

PROPERTIES_TOO_LARGE = "properties_too_large"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TIMESTAMP_HELP = "send unix milliseconds (1768737600000) or ISO 8601 (2026-01-18T12:00:00Z)"
# Events per request: 20 times what PostHog's SDKs batch by default (100), as many as
# Mixpanel's and Amplitude's batch APIs take.
MAX_BATCH_ITEMS = 2000
# Timestamps: from 1970 as written (an offset may put one up to a day earlier in UTC, which the
# warehouse stores too) to the end of year 9999, as unix milliseconds at most MAX_UNIX_MS.
EARLIEST_YEAR = 1970
ISO_YEAR_PATTERN = r"^(19[7-9][0-9]|[2-9][0-9]{3})-"
MAX_UNIX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
# Of what pydantic would read as a unix time (UNIX_TIME_TEXT), the schema allows only digits.
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


def storable_timestamp(moment: datetime) -> datetime:
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
    AfterValidator(storable_timestamp),
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
