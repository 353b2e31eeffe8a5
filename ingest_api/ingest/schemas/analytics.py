"""The native analytics routes' requests (``/api/analytics/*``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from ingest_api.event_names import NAME_RULE
from ingest_api.ingest.schemas.common import KeyInBody, Native
from ingest_api.ingest.schemas.fields import (
    MAX_BATCH_ITEMS,
    Environment,
    EventUuid,
    Id,
    NativeEventName,
    PersonProperties,
    Properties,
    Timestamp,
    check_event_properties,
)


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
