"""Session start and end (seed 002). Idempotent on ``session_id``: a retried call lands with the
same uuid, which the models count once."""

from __future__ import annotations

from fastapi import Response

from ingest_api.deps import DurableByDefault, RequestReceipt, Writer
from ingest_api.records import Records
from ingest_api.routers import ingest_router
from ingest_api.routers.common import land
from ingest_api.schemas import SessionAck, SessionEnd, SessionStart
from ingest_api.stream_hub import hub

router = ingest_router(prefix="/api/sessions", tags=["sessions"])
ACCEPTED = {202: {"model": SessionAck, "description": "Queued (sync=false); on disk within 1 s."}}


@router.post("/start", responses=ACCEPTED)
async def start(
    body: SessionStart,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> SessionAck:
    """Start a session."""
    records = Records(receipt, "sessions")
    uuid = records.session_start(body)
    durable = await land(writer, records, sync, response)
    hub.publish_session(receipt.org_id, receipt.project_id, "start", body.model_dump(mode="json"))
    return SessionAck(accepted=records.count, durable=durable, uuid=uuid)


@router.post("/end", responses=ACCEPTED)
async def end(
    body: SessionEnd,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> SessionAck:
    """End a session with its status and error counts."""
    records = Records(receipt, "sessions")
    uuid = records.session_end(body)
    durable = await land(writer, records, sync, response)
    hub.publish_session(receipt.org_id, receipt.project_id, "end", body.model_dump(mode="json"))
    return SessionAck(accepted=records.count, durable=durable, uuid=uuid)
