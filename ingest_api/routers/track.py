"""Altertable-compatible ``POST /track`` (seed 001): one event or an array, async by default."""

from __future__ import annotations

from fastapi import Response

from ingest_api.deps import AsyncByDefault, RequestReceipt, Writer
from ingest_api.records import Records
from ingest_api.routers import ingest_router
from ingest_api.routers.common import land
from ingest_api.schemas import Ack, TrackBody

router = ingest_router(tags=["compatibility"])


@router.post(
    "/track",
    status_code=202,
    responses={200: {"model": Ack, "description": "On disk (sync=true)."}},
)
async def track(
    body: TrackBody,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: AsyncByDefault = False,
) -> Ack:
    """Track one event or an array of events. Display names such as ``Checkout Completed`` are
    stored as ``checkout_completed`` with the original in ``event_display_name``."""
    records = Records(receipt, "track")
    for item in body if isinstance(body, list) else [body]:
        records.track_event(item)
    durable = await land(writer, records, sync, response)
    return Ack(accepted=records.count, durable=durable)
