"""Events: filtered, newest first, every event with the person it belongs to now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ingest_api.read import READ_ERRORS
from ingest_api.read.deps import OrgScope
from ingest_api.read.events import EventFilter, EventName, list_events
from ingest_api.read.rendering import JsonResponse
from ingest_api.read.schemas import EventPage
from ingest_api.read.timeutil import QueryTime, time_range

MAX_EVENTS_PAGE = 1000

router = APIRouter(prefix="/api/analytics", tags=["analytics: query"], responses=READ_ERRORS)


@router.get("/events", response_model=EventPage)
def events(
    reader: OrgScope,
    event_name: EventName = None,
    distinct_id: str | None = None,
    start_date: Annotated[QueryTime | None, Query(description="ISO 8601, inclusive.")] = None,
    end_date: Annotated[QueryTime | None, Query(description="ISO 8601, exclusive.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> JsonResponse:
    """The org's events, newest first, one page at a time."""
    start, end = time_range(start_date, end_date)
    where = EventFilter(reader.org_id, event_name, distinct_id, start, end)
    with reader.cursor() as cur:
        found = list_events(cur, where, limit, cursor)
    return reader.answer(found)
