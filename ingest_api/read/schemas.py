"""Response shapes of the read API, for the OpenAPI document. Routes render with orjson
(:mod:`ingest_api.read.rendering`); tests validate responses against these models. Timestamps are
UTC ISO 8601 with ``Z``; rates are percentages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Snapshot(BaseModel):
    """Which data an answer reflects (also in the headers `Loom-Snapshot-Id`,
    `Loom-Published-At` and `Loom-Data-As-Of`)."""

    id: int = Field(description="The published lake snapshot the answer was read from.")
    published_at: datetime = Field(description="When it was published.")
    data_as_of: datetime | None = Field(
        description="The newest received time of the records it holds; null for snapshots"
        " published before it was recorded."
    )


class Answer(BaseModel):
    snapshot: Snapshot


class Person(BaseModel):
    person_id: str
    distinct_ids: list[str] = Field(description="Every distinct_id merged into this person.")
    properties: dict[str, Any]
    is_identified: bool
    created_at: datetime
    last_seen_at: datetime | None


class PersonDetail(Person, Answer):
    """A person, as `persons/{distinct_id}` answers it."""


class PersonList(Answer):
    persons: list[Person]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page.")


class Event(BaseModel):
    uuid: str
    event: str
    event_display_name: str | None = Field(
        description="The name as sent when it was not an event name (`Purchase Completed` for"
        " `purchase_completed`); null otherwise."
    )
    distinct_id: str | None
    person_id: str | None = Field(description="The person the distinct_id belongs to now.")
    properties: dict[str, Any] | None
    timestamp: datetime
    environment: str | None
    project_id: int
    session_id: str | None
    device_id: str | None


class EventPage(Answer):
    events: list[Event] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class Session(BaseModel):
    id: str
    person_id: str | None
    status: str
    release: str | None
    environment: str | None
    error_count: int | None
    crash_count: int | None
    duration_ms: int | None
    platform: str | None
    started_at: datetime | None
    ended_at: datetime | None


class SessionList(Answer):
    sessions: list[Session] = Field(description="Newest first.")


class SessionDetail(Answer):
    session: Session


class ReleaseHealth(BaseModel):
    release: str
    environment: str
    crash_free_session_rate: float | None = Field(description="Percent, 2 decimals.")
    crash_free_user_rate: float | None = Field(description="Percent, 2 decimals.")
    adoption_rate: float | None = Field(description="Percent of the environment's sessions.")
    adoption_stage: str = Field(description="new | growing | adopted | replaced")
    total_sessions: int = Field(description="Sampling-adjusted.")
    crashed_sessions: int
    total_users: int = Field(description="Distinct persons, sampling-adjusted.")
    current_adoption_rate: float | None = Field(
        description="Percent; what adoption_stage follows: over the last 24 h of the"
        " environment's data, or over the window when one is given."
    )
    peak_adoption_rate: float | None = Field(
        description="Percent: the highest share of a UTC day before that period (null: none)."
    )
    error_rate: float | None = Field(description="Errored / total sessions, percent.")
    avg_duration_ms: int | None = Field(
        description="Sampling-weighted, over the sessions that have a duration."
    )


class ReleaseList(Answer):
    releases: list[ReleaseHealth]


class ReleaseDetail(ReleaseHealth, Answer):
    crashed_users: int
    first_seen: datetime = Field(description="The release's first session ever.")
    last_seen: datetime = Field(description="Its last session up to the window's end.")
    crash_free_rate_trend: float | None = Field(
        description="Change of the crash-free session rate, in percentage points: without dates,"
        " the environment's last 24 h of data against the 24 h before; with dates, the window"
        " against the window of the same length just before (null without sessions in either)."
    )


class TrendPoint(BaseModel):
    timestamp: datetime = Field(description="Start of the hour, day or ISO week (Monday).")
    crash_free_session_rate: float | None
    crash_free_user_rate: float | None
    total_sessions: int


class HealthTrend(Answer):
    trend: list[TrendPoint]


# The experiment and funnel routes (rendered with orjson like every read route; rates are
# percentages with 2 decimals).
class VariantResult(BaseModel):
    variant: str = Field(description="The flag's response (`true`/`false` for boolean flags).")
    persons: int = Field(description="Persons whose first exposure to the flag was this variant.")
    first_exposed_at: datetime = Field(description="The earliest exposure of those persons.")
    conversions: int | None = Field(
        description="Persons who did the goal event after their exposure, within the window;"
        " null without `goal_event`."
    )
    conversion_rate: float | None = Field(description="conversions / persons, in %.")
    posterior_alpha: int | None = Field(description="1 + conversions: the Beta posterior's alpha.")
    posterior_beta: int | None = Field(
        description="1 + persons - conversions: the Beta posterior's beta."
    )
    probability_to_be_best: float | None = Field(
        description="P(this variant's conversion rate is the highest), 0 to 1, 4 decimals."
    )


class ExperimentResults(Answer):
    flag_key: str
    goal_event: str | None
    conversion_window: str | None = Field(description="As asked; null without `goal_event`.")
    variants: list[VariantResult] = Field(description="By variant name; empty before exposures.")


class FunnelStep(BaseModel):
    variant: str | None = Field(description="The breakdown flag's variant; null without one.")
    step: int = Field(description="From 1.")
    event: str
    persons: int = Field(description="Persons who reached this step (or further).")
    conversion_rate: float | None = Field(description="% of step 1's persons.")
    step_conversion_rate: float | None = Field(description="% of the previous step's persons.")


class FunnelResults(Answer):
    steps: list[str]
    conversion_window: str
    breakdown_flag: str | None
    funnel: list[FunnelStep] = Field(description="By variant, then step.")
