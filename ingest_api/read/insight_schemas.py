"""Response shapes of the experiment and funnel routes, for the OpenAPI document (rendered with
orjson like every read route; rates are percentages with 2 decimals)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


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


class ExperimentResults(BaseModel):
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


class FunnelResults(BaseModel):
    steps: list[str]
    conversion_window: str
    breakdown_flag: str | None
    funnel: list[FunnelStep] = Field(description="By variant, then step.")
