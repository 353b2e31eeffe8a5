"""Health for load balancers and `loom up`: 200 while records can be stored, 503 when not."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ingest_api.ingest.deps import Writer

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when records cannot be stored.")
    reason: str | None = Field(None, description="Why it is degraded.")
    pending_records: int


@router.get(
    "/healthz",
    responses={503: {"model": Health, "description": "Degraded: ingest requests get 503."}},
)
async def healthz(writer: Writer, response: Response) -> Health:
    failure = writer.failure
    if failure is not None:
        response.status_code = 503
        return Health(status="degraded", reason=failure, pending_records=writer.pending_records)
    return Health(status="ok", pending_records=writer.pending_records)
