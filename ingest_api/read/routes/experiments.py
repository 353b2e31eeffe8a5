"""Experiments: a feature flag's exposures per variant and,
with a goal event, conversions and the probability that each variant is best."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from ingest_api.event_names import StoredEventName
from ingest_api.read import READ_ERRORS
from ingest_api.read.conversion_window import ConversionWindow, conversion_window, window_length
from ingest_api.read.deps import OrgScope
from ingest_api.read.experiments import experiment_results
from ingest_api.read.rendering import JsonResponse
from ingest_api.read.schemas import ExperimentResults

DEFAULT_WINDOW = "14 days"

router = APIRouter(prefix="/api/analytics", tags=["analytics: query"], responses=READ_ERRORS)


# `:path`: a flag key may hold '/' (sent as %2F, which the server decodes before routing).
@router.get("/experiments/{flag_key:path}", response_model=ExperimentResults)
def experiment(
    reader: OrgScope,
    flag_key: Annotated[str, Path(max_length=200, description="The feature flag's key.")],
    goal_event: Annotated[
        StoredEventName | None,
        Query(
            description="The conversion event: its stored name or the name as sent (answered"
            " with the stored name).",
        ),
    ] = None,
    conversion_window: Annotated[
        ConversionWindow, conversion_window(DEFAULT_WINDOW)
    ] = DEFAULT_WINDOW,
) -> JsonResponse:
    """Persons per variant, each in the variant of their first exposure (`$feature_flag_called`).
    With `goal_event`: who did it after their exposure and within `conversion_window`, the Beta
    posterior per variant (PostHog's: Beta(1 + conversions, 1 + persons - conversions)) and the
    probability that each variant has the highest conversion rate, integrated numerically
    (deterministic, accurate to 1e-4)."""
    window = window_length(conversion_window)
    with reader.cursor() as cur:
        variants = experiment_results(cur, reader.org_id, flag_key, goal_event, window)
    return reader.answer(
        {
            "flag_key": flag_key,
            "goal_event": goal_event,
            "conversion_window": conversion_window if goal_event is not None else None,
            "variants": variants,
        }
    )
