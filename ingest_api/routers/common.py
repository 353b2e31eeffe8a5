"""What the ingest routers share: hand the records to the writer."""

from __future__ import annotations

from fastapi import Response

from ingest_api.landing import LandingWriter
from ingest_api.records import Records


async def land(
    writer: LandingWriter, records: Records, durable: bool, response: Response | None = None
) -> bool:
    """Whether the records are on disk. With a ``response``, answer 200 when they are and 202
    when they are only queued (on disk within the flush interval, at most 1 s)."""
    on_disk = await writer.submit(records.chunks(), durable=durable)
    if response is not None:
        response.status_code = 200 if on_disk else 202
    return on_disk
