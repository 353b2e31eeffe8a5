"""Funnels (PostHog's insight): persons through ordered steps, optionally split by the variant of a
feature flag, counted by dbt's ``funnel`` table macro."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ingest_api.event_names import StoredEventName
from ingest_api.read import READ_ERRORS
from ingest_api.read.conversion_window import ConversionWindow, conversion_window, window_length
from ingest_api.read.deps import OrgScope
from ingest_api.read.funnels import funnel
from ingest_api.read.rendering import JsonResponse
from ingest_api.read.schemas import FunnelResults
from ingest_api.read.timeutil import QueryTime, time_range

MIN_STEPS, MAX_STEPS = 2, 10
DEFAULT_WINDOW = "14 days"

router = APIRouter(prefix="/api/analytics", tags=["analytics: query"], responses=READ_ERRORS)


@router.get("/funnel", response_model=FunnelResults)
def funnel_route(
    reader: OrgScope,
    steps: Annotated[
        list[StoredEventName],
        Query(
            min_length=MIN_STEPS,
            max_length=MAX_STEPS,
            description=f"Event names in order, {MIN_STEPS} to {MAX_STEPS}: repeat the"
            " parameter (`steps=a&steps=b`). Stored names or names as sent (answered with the"
            " stored names).",
        ),
    ],
    conversion_window: Annotated[
        ConversionWindow, conversion_window(DEFAULT_WINDOW)
    ] = DEFAULT_WINDOW,
    start_date: Annotated[
        QueryTime | None, Query(description="Step-1 events at or after (ISO 8601).")
    ] = None,
    end_date: Annotated[QueryTime | None, Query(description="Step-1 events before.")] = None,
    breakdown_flag: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Split by the variant of each person's first exposure to this flag"
            " (persons never exposed are left out).",
        ),
    ] = None,
) -> JsonResponse:
    """Persons per step: a person reaches step k when, after one of their step-1 events, each next
    step followed the previous one, all within `conversion_window` of that step-1 event."""
    start, end = time_range(start_date, end_date)
    window = window_length(conversion_window)
    with reader.cursor() as cur:
        rows = funnel(cur, reader.org_id, steps, window, start, end, breakdown_flag)
    return reader.answer(
        {
            "steps": steps,
            "conversion_window": conversion_window,
            "breakdown_flag": breakdown_flag,
            "funnel": rows,
        }
    )
