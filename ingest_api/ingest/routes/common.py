"""What the ingest routers share: hand the records to the writer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Response

from ingest_api.ingest.landing import LandingWriter
from ingest_api.ingest.records import Receipt, Records

T = TypeVar("T")


def accepted(model: type) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entry for the 202 a ``sync=false`` request answers with."""
    return {202: {"model": model, "description": "Queued (sync=false); on disk within 1 s."}}


async def land(
    writer: LandingWriter, records: Records, durable: bool, response: Response | None = None
) -> bool:
    """Whether the records are on disk. With a ``response``, answer 200 when they are and 202
    when they are only queued (on disk within the flush interval, at most 1 s)."""
    on_disk = await writer.submit(records.chunks(), durable=durable)
    if response is not None:
        response.status_code = 200 if on_disk else 202
    return on_disk


async def record_and_land(
    receipt: Receipt,
    source: str,
    fill: Callable[[Records], T],
    writer: LandingWriter,
    durable: bool,
    response: Response,
) -> tuple[Records, T, bool]:
    """Build ``source`` records with ``fill`` and land them: the records, what ``fill``
    returned, and whether they are on disk (see ``land``)."""
    records = Records(receipt, source)
    filled = fill(records)
    on_disk = await land(writer, records, durable, response)
    return records, filled, on_disk
