"""Altertable-compatible ``POST /track``: one event or an array, async by default."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Response

from ingest_api.ingest import ingest_router
from ingest_api.ingest.deps import AsyncByDefault, RequestReceipt, Writer
from ingest_api.ingest.records import Records
from ingest_api.ingest.routes.common import land
from ingest_api.ingest.routing import Events, EventsIn
from ingest_api.ingest.schemas.common import Ack
from ingest_api.ingest.schemas.track import TrackBody, TrackEvent

router = ingest_router(tags=["compatibility"])
# Validated and landed one event at a time: an array needs the memory of its largest event.
TrackEvents = Annotated[
    Events[TrackEvent], Body(), EventsIn(TrackBody, TrackEvent, frozenset({"event", "array"}))
]


@router.post(
    "/track",
    status_code=202,
    responses={200: {"model": Ack, "description": "On disk (sync=true)."}},
)
async def track(
    body: TrackEvents,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: AsyncByDefault = False,
) -> Ack:
    """Track one event or an array of events. Display names such as ``Checkout Completed`` are
    stored as ``checkout_completed`` with the original in ``event_display_name``."""
    records = Records(receipt, "track")
    await body.each(records.track_event)
    durable = await land(writer, records, sync, response)
    return Ack(accepted=records.count, durable=durable)
