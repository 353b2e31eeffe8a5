"""The Altertable-compatible ``/track``: one event, an array of them or a batch object."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
)

from ingest_api.ingest.schemas.fields import (
    MAX_BATCH_ITEMS,
    DisplayEventName,
    Environment,
    EventUuid,
    Id,
    Properties,
    Timestamp,
    check_event_properties,
)


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


def body_shape(value: Any) -> str | None:
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
        body_shape,
        custom_error_type="body_shape",
        custom_error_message="expected one event object or an array of event objects",
    ),
]
