"""Event export: a time range streamed as NDJSON, CSV or Parquet."""

from __future__ import annotations

import itertools
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from ingest_api.read import READ_ERRORS
from ingest_api.read.deps import OrgScope
from ingest_api.read.events import EventFilter, EventName
from ingest_api.read.export import MEDIA_TYPES, ExportFormat, ExportResponse, export_events
from ingest_api.read.snapshots import SNAPSHOT_HEADERS
from ingest_api.read.timeutil import QueryTime, time_range

router = APIRouter(prefix="/api/analytics", tags=["analytics: query"], responses=READ_ERRORS)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {media: {} for media in MEDIA_TYPES.values()},
            "headers": SNAPSHOT_HEADERS,
        }
    },
)
def export(
    reader: OrgScope,
    start_date: Annotated[QueryTime, Query(description="ISO 8601, inclusive.")],
    end_date: Annotated[QueryTime, Query(description="ISO 8601, exclusive.")],
    format: ExportFormat = "ndjson",
    event_name: EventName = None,
    distinct_id: str | None = None,
) -> StreamingResponse:
    """The org's events in ``[start_date, end_date)``, oldest first, streamed as they are read."""
    start, end = time_range(start_date, end_date)
    where = EventFilter(reader.org_id, event_name, distinct_id, start, end)
    # The publish is pinned (503 or 410 before the status line), and the first chunk read
    # before it too: a lake that cannot be read from the start answers 503, not a 200 cut short.
    publish = reader.pin()
    chunks = export_events(reader.marts, where, format, publish=publish)
    first = next(chunks, b"")
    filename = f"events-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.{format}"
    return ExportResponse(
        itertools.chain([first], chunks),
        media_type=MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            **reader.snapshot_headers(),
        },
    )
