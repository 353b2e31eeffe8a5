"""Native analytics endpoints (seed 000). Durable by default: 200 means fsynced."""

from __future__ import annotations

from fastapi import Response

from ingest_api.deps import DurableByDefault, RequestReceipt, Writer
from ingest_api.records import Records
from ingest_api.routers import ingest_router
from ingest_api.routers.common import land
from ingest_api.schemas import (
    Ack,
    AliasRequest,
    BatchRequest,
    CaptureRequest,
    IdentifyRequest,
    SetRequest,
)

router = ingest_router(prefix="/api/analytics", tags=["analytics"])
ACCEPTED = {202: {"model": Ack, "description": "Queued (sync=false); on disk within 1 s."}}


@router.post("/capture", responses=ACCEPTED)
async def capture(
    body: CaptureRequest,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Capture one event."""
    records = Records(receipt, "native")
    records.native_event(body)
    durable = await land(writer, records, sync, response)
    return Ack(accepted=records.count, durable=durable)


@router.post("/batch", responses=ACCEPTED)
async def batch(
    body: BatchRequest,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Capture several events; one invalid event rejects them all."""
    records = Records(receipt, "native")
    for item in body.batch:
        records.native_event(item)
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
    records = Records(receipt, "native")
    records.identify(body)
    durable = await land(writer, records, sync, response)
    return Ack(accepted=records.count, durable=durable)


@router.post("/alias", responses=ACCEPTED)
async def alias(
    body: AliasRequest,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Link two distinct ids of the same person."""
    records = Records(receipt, "native")
    records.alias(body)
    durable = await land(writer, records, sync, response)
    return Ack(accepted=records.count, durable=durable)


@router.post("/set", responses=ACCEPTED)
async def set_properties(
    body: SetRequest,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> Ack:
    """Set person properties (``set_once`` ones only where unset)."""
    records = Records(receipt, "native")
    records.set_properties(body)
    durable = await land(writer, records, sync, response)
    return Ack(accepted=records.count, durable=durable)
