"""The live stream of a project: Server-Sent Events.

Events: ``session.started``, ``session.ended`` (every end) and ``session.crashed`` (an end that
crashed, sent after its ``session.ended``) as the ingest API accepts session records;
``release.health_changed`` when a pipeline run publishes new numbers for a release;
``alert.triggered`` / ``alert.resolved`` when an alert rule of the project changes state
(:mod:`ingest_api.alerts.watch`);
``stream.lagged`` (``{"dropped": N}``) when this client fell more than the buffer behind and its
oldest N events were dropped; and ``stream.ended`` (``{"reason": …}``), the last event, when the
key that opened the stream is revoked (:mod:`ingest_api.read.key_watch`). The stream opens with
a ``: subscribed`` comment, after which no event is missed; a ``: ping`` comment keeps idle
connections alive every :data:`PING_SECONDS`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from ingest_api.read import READ_ERRORS
from ingest_api.read.deps import LiveProjectScope
from ingest_api.read.rendering import dumps
from ingest_api.stream_hub import Ended, hub

PING_SECONDS = 15
# A client that stops reading fills its TCP window; a send blocked this long ends its stream.
SEND_TIMEOUT_SECONDS = 30

router = APIRouter(prefix="/api/projects", tags=["release health"], responses=READ_ERRORS)


@router.get(
    "/{project_id}/sessions/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def sessions_stream(reader: LiveProjectScope, request: Request) -> EventSourceResponse:
    """Session and release-health events of the project, as they happen."""
    # Before the stream starts: the first thing it sends is still the `subscribed` comment.
    await request.app.state.health_watcher.watching()
    key_watcher = request.app.state.key_watcher
    alert_watcher = request.app.state.alert_watcher

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with hub.subscribe(reader.org_id, reader.project_id, reader.key_id) as subscription:
            key_watcher.ensure_running()
            alert_watcher.ensure_running()
            yield ServerSentEvent(comment="subscribed")
            while True:
                item = await subscription.get()
                if isinstance(item, Ended):
                    yield ServerSentEvent(
                        dumps({"reason": item.reason}).decode(), event="stream.ended"
                    )
                    return
                if isinstance(item, int):
                    yield ServerSentEvent(dumps({"dropped": item}).decode(), event="stream.lagged")
                else:
                    yield ServerSentEvent(dumps(item.data).decode(), event=item.name)

    return EventSourceResponse(events(), ping=PING_SECONDS, send_timeout=SEND_TIMEOUT_SECONDS)
