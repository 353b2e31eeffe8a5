"""Session start and end. Idempotent on ``session_id``: a retried call lands with the
same uuid, which the models count once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import Response

from ingest_api.ingest import ingest_router
from ingest_api.ingest.deps import DurableByDefault, RequestReceipt, Writer
from ingest_api.ingest.records import Receipt, Records
from ingest_api.ingest.routes.common import accepted, record_and_land
from ingest_api.ingest.schemas.sessions import SessionAck, SessionEnd, SessionStart
from ingest_api.stream_hub import hub

router = ingest_router(prefix="/api/sessions", tags=["sessions"])
ACCEPTED = accepted(SessionAck)


async def _session(
    kind: Literal["start", "end"],
    body: SessionStart | SessionEnd,
    receipt: Receipt,
    fill: Callable[[Records], str],
    writer: Writer,
    sync: bool,
    response: Response,
) -> SessionAck:
    """Land the session record, then tell the live stream about it."""
    records, uuid, durable = await record_and_land(
        receipt, "sessions", fill, writer, sync, response
    )
    hub.publish_session(receipt.org_id, receipt.project_id, kind, body.model_dump(mode="json"))
    return SessionAck(accepted=records.count, durable=durable, uuid=uuid)


@router.post("/start", responses=ACCEPTED)
async def start(
    body: SessionStart,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> SessionAck:
    """Start a session."""
    return await _session(
        "start", body, receipt, lambda records: records.session_start(body), writer, sync, response
    )


@router.post("/end", responses=ACCEPTED)
async def end(
    body: SessionEnd,
    receipt: RequestReceipt,
    writer: Writer,
    response: Response,
    sync: DurableByDefault = True,
) -> SessionAck:
    """End a session with its status and error counts."""
    return await _session(
        "end", body, receipt, lambda records: records.session_end(body), writer, sync, response
    )
