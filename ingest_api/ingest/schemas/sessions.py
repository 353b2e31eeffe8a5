"""The native session routes (``/api/sessions/*``): start, end and their acknowledgement."""

from __future__ import annotations

from pydantic import Field

from ingest_api.ingest.schemas.common import Ack, KeyInBody, Native
from ingest_api.ingest.schemas.fields import (
    Environment,
    Id,
    Platform,
    Release,
    SessionStatus,
    Timestamp,
    integer,
)
from warehouse import streams


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


class SessionAck(Ack):
    uuid: str = Field(
        description="Deterministic per (org, session_id, start|end): retries land once."
    )
