"""Sentry session envelopes (``ingest_api/ingest/routes/sentry.py``). Fields Loom does not store
are ignored, as Sentry's own ingestion does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from ingest_api.ingest.schemas.fields import Environment, Id, Release, integer, storable_timestamp
from warehouse import streams
from warehouse.streams import TEXT_PATTERN

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
    datetime, BeforeValidator(_sentry_time), AfterValidator(storable_timestamp)
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
