"""Dependency aliases, so route signatures read like types (FastAPI's ``Annotated`` style)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Query, Request

from ingest_api.auth import authenticate, authenticate_reader
from ingest_api.ingest.landing import LandingWriter
from ingest_api.ingest.records import Receipt, digest
from warehouse.registry import ApiKey

# Dependencies are ``async def`` so FastAPI calls them on the event loop, not in a thread pool.

INLINE_DIGEST_BYTES = 1024 * 1024  # hashing more would hold up the event loop


async def landing_writer(request: Request) -> LandingWriter:
    return request.app.state.writer


WriteKey = Annotated[ApiKey, Depends(authenticate)]  # any valid key
ReadKey = Annotated[ApiKey, Depends(authenticate_reader)]  # an rw key, else 401/403
Writer = Annotated[LandingWriter, Depends(landing_writer)]


async def receipt(request: Request) -> Receipt:
    """Who sent the request (any valid key), when, and a digest of its body; what every ingest
    route needs. It calls ``authenticate`` itself rather than through ``WriteKey``: each
    sub-dependency costs FastAPI time on every request of the hot path."""
    key = await authenticate(request)
    client = request.client
    body = await request.body()  # read already, to validate it: this only returns it
    # hashlib releases the GIL: a big body is hashed in a thread, off the event loop.
    content_digest = (
        digest(body) if len(body) <= INLINE_DIGEST_BYTES else await to_thread.run_sync(digest, body)
    )
    return Receipt.of(
        key,
        datetime.now(UTC),
        client.host if client else None,
        request.app.state.settings.future_timestamp_tolerance_hours,
        content_digest,
    )


RequestReceipt = Annotated[Receipt, Depends(receipt)]

SYNC_HELP = "Wait until the records are on disk (fsynced) before answering."
DurableByDefault = Annotated[bool, Query(description=f"{SYNC_HELP} Default true.")]
AsyncByDefault = Annotated[
    bool, Query(description=f"{SYNC_HELP} Default false: 202 after enqueue.")
]
