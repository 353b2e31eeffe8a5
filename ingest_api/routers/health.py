"""Liveness for load balancers and `loom up`."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ingest_api.deps import Writer

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    pending_records: int


@router.get("/healthz")
async def healthz(writer: Writer) -> Health:
    return Health(status="ok", pending_records=writer.pending_records)
