"""Native analytics endpoints. Durable by default: 200 means fsynced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Body, Response

from ingest_api.ingest import ingest_router
from ingest_api.ingest.deps import DurableByDefault, RequestReceipt, Writer
from ingest_api.ingest.records import Receipt, Records
from ingest_api.ingest.routes.common import accepted, land, record_and_land
from ingest_api.ingest.routing import Events, EventsIn
from ingest_api.ingest.schemas.analytics import (
    AliasRequest,
    BatchRequest,
    CaptureEvent,
    CaptureRequest,
    IdentifyRequest,
    SetRequest,
)
from ingest_api.ingest.schemas.common import Ack

router = ingest_router(prefix="/api/analytics", tags=["analytics"])
ACCEPTED = accepted(Ack)
# Validated and landed one event at a time: a batch needs the memory of its largest event.
BatchEvents = Annotated[
    Events[CaptureEvent], Body(), EventsIn(BatchRequest, CaptureEvent, frozenset({"batch"}))
]


async def _native(
    receipt: Receipt,
    fill: Callable[[Records], object],
    writer: Writer,
    sync: bool,
    response: Response,
) -> Ack:
    records, _, durable = await record_and_land(receipt, "native", fill, writer, sync, response)
    return Ack(accepted=records.count, durable=durable)


@router.post("/capture", responses=ACCEPTED)
async def capture(
    body: CaptureRequest,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Capture one event."""
    return await _native(
        receipt, lambda records: records.native_event(body), writer, sync, response
    )


@router.post("/batch", responses=ACCEPTED)
async def batch(
    body: BatchEvents,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Capture several events; one invalid event rejects them all."""
    records = Records(receipt, "native")
    await body.each(records.native_event)
    durable = await land(writer, records, sync, response)
    return Ack(accepted=records.count, durable=durable)


@router.post("/identify", responses=ACCEPTED)
async def identify(
    body: IdentifyRequest,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Link an anonymous id to an identified user and set person properties."""
    return await _native(receipt, lambda records: records.identify(body), writer, sync, response)


@router.post("/alias", responses=ACCEPTED)
async def alias(
    body: AliasRequest,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Link two distinct ids of the same person."""
    return await _native(receipt, lambda records: records.alias(body), writer, sync, response)


@router.post("/set", responses=ACCEPTED)
async def set_properties(
    body: SetRequest,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Set person properties (``set_once`` ones only where unset)."""
    return await _native(
        receipt, lambda records: records.set_properties(body), writer, sync, response
    )
