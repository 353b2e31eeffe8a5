"""PostHog-compatible capture, so PostHog SDKs need only a new host.

``/batch/``, ``/capture/``, ``/e/`` and ``/i/v0/e/`` each take one event, ``{"batch": [...]}`` or
an array of events, optionally gzip-compressed. PostHog clients treat only 200 as success (and
retry 5xx/429), so these answer 200, and by default only once the records are on disk.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Body

from ingest_api.deps import DurableByDefault, RequestReceipt, Writer
from ingest_api.records import Records
from ingest_api.routers import ingest_router
from ingest_api.routers.common import land
from ingest_api.schemas import PostHogAck, PostHogBatch, PostHogBody, PostHogEvent

router = ingest_router(tags=["compatibility"])
PATHS = ("/batch/", "/capture/", "/e/", "/i/v0/e/")


def events_of(body: PostHogEvent | PostHogBatch | list[PostHogEvent]) -> list[PostHogEvent]:
    if isinstance(body, PostHogEvent):
        return [body]
    if isinstance(body, PostHogBatch):
        return body.batch
    return body


async def capture(
    body: Annotated[PostHogBody, Body()],
    receipt: RequestReceipt,
    writer: Writer,
    sync: DurableByDefault = True,
) -> PostHogAck:
    """Capture PostHog events. Identity events ($identify, $create_alias, $merge_dangerously,
    $set, $set_once) land in the identities stream, all others in events."""
    records = Records(receipt, "posthog")
    for event in events_of(body):
        records.posthog_event(event)
    await land(writer, records, sync)
    return PostHogAck()


for path in PATHS:
    router.add_api_route(path, capture, methods=["POST"], name=f"posthog {path}")
    # Without the slash too: a POST redirected by FastAPI would not be followed by every client.
    router.add_api_route(path.rstrip("/"), capture, methods=["POST"], include_in_schema=False)
