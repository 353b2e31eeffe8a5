"""PostHog's capture endpoints: its events, batches and acknowledgement."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ingest_api.ingest.schemas.fields import (
    MAX_BATCH_ITEMS,
    PROPERTIES_SCHEMA,
    SESSION_ID_PROPERTY,
    DisplayEventName,
    EventUuid,
    Id,
    PersonProperties,
    Properties,
    check_event_properties,
    text_problem,
)
from ingest_api.ingest.schemas.track import BATCH_OBJECT, EVENT_ARRAY, ONE_EVENT, body_shape
from warehouse import streams

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
        body_shape,
        custom_error_type="body_shape",
        custom_error_message='expected an event, {"batch": [events]} or an array of events',
    ),
]


class PostHogAck(BaseModel):
    status: int = 1
