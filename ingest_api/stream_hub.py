"""In-process pub/sub behind ``GET /api/projects/{id}/sessions/stream``.

The sessions ingest router publishes each accepted session record; the release-health watcher
publishes ``release.health_changed`` when a newly published snapshot changes a release's numbers.
Every subscriber (one per open SSE connection) has its own bounded buffer: when a client reads
slower than events arrive, the *oldest* buffered events are dropped and the next message it reads
is a ``stream.lagged`` event saying how many it missed, so memory stays bounded and a dashboard
knows to refetch instead of silently showing stale numbers.

The hub is per process: with several uvicorn workers a client sees the session events accepted by
its own worker (``loom serve`` runs one). Each subscription belongs to the API key that opened it,
so that revoking the key ends it (:meth:`StreamHub.end_key`, driven by
:mod:`ingest_api.read.key_watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

BUFFER_SIZE = 256

START_FIELDS = (
    "session_id", "distinct_id", "release", "environment", "platform", "started_at", "sample_rate",
)  # fmt: skip
END_FIELDS = (
    "session_id", "status", "error_count", "crash_count", "ended_at", "duration_ms",
)  # fmt: skip


@dataclass(frozen=True)
class StreamEvent:
    org_id: str
    project_id: int
    name: str  # session.*, release.health_changed, alert.triggered or alert.resolved
    data: dict[str, Any]


@dataclass(frozen=True)
class Ended:
    """The stream is over for a reason of the server's (its key was revoked)."""

    reason: str


class Subscription:
    """One client's bounded queue. ``publish`` may be called from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int, key_id: str) -> None:
        self._loop = loop
        self.key_id = key_id
        self._buffer: deque[StreamEvent] = deque(maxlen=capacity)
        self._dropped = 0
        self._ended: Ended | None = None
        self._lock = threading.Lock()
        self._ready = asyncio.Event()

    def put(self, event: StreamEvent) -> None:
        with self._lock:
            if len(self._buffer) == self._buffer.maxlen:
                self._dropped += 1
            self._buffer.append(event)
        self._loop.call_soon_threadsafe(self._ready.set)

    def end(self, reason: str) -> None:
        """End the stream: the next :meth:`get` says why, whatever is still buffered."""
        with self._lock:
            self._ended = Ended(reason)
        self._loop.call_soon_threadsafe(self._ready.set)

    async def get(self) -> StreamEvent | int | Ended:
        """The next event, the number of events dropped since the last read when any were, or
        why the stream ended."""
        while True:
            with self._lock:
                if self._ended is not None:
                    return self._ended
                if self._dropped:
                    dropped, self._dropped = self._dropped, 0
                    return dropped
                if self._buffer:
                    return self._buffer.popleft()
                self._ready.clear()
            await self._ready.wait()


class StreamHub:
    def __init__(self, capacity: int = BUFFER_SIZE) -> None:
        self._capacity = capacity
        self._subscribers: dict[tuple[str, int], set[Subscription]] = {}
        self._lock = threading.Lock()

    @asynccontextmanager
    async def subscribe(
        self, org_id: str, project_id: int, key_id: str
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(asyncio.get_running_loop(), self._capacity, key_id)
        key = (org_id, project_id)
        with self._lock:
            self._subscribers.setdefault(key, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                subscribers = self._subscribers[key]
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[key]

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(group) for group in self._subscribers.values())

    def key_ids(self) -> set[str]:
        """The keys that have a stream open."""
        with self._lock:
            return {sub.key_id for group in self._subscribers.values() for sub in group}

    def end_key(self, key_id: str, reason: str) -> int:
        """End every stream opened with ``key_id``; how many there were."""
        with self._lock:
            ended = [s for group in self._subscribers.values() for s in group if s.key_id == key_id]
        for subscription in ended:
            subscription.end(reason)
        return len(ended)

    def publish(self, event: StreamEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get((event.org_id, event.project_id), ()))
        for subscription in subscribers:
            try:
                subscription.put(event)
            except RuntimeError:
                # Its event loop is gone (the server is shutting down); nobody is listening.
                continue

    def publish_session(
        self, org_id: str, project_id: int, kind: str, fields: Mapping[str, Any]
    ) -> None:
        """Announce an accepted session start or end (``kind``) with the fields it was sent."""
        for event in session_events(org_id, project_id, kind, fields):
            self.publish(event)


class WhileStreamsOpen:
    """A task of the event loop that polls every ``poll_seconds`` while any stream is open; each
    new stream starts it again (:meth:`ensure_running`) if it had stopped."""

    def __init__(self, hub: StreamHub, poll_seconds: float) -> None:
        self._hub = hub
        self._poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        """Start watching (from the event loop) unless already watching."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name=type(self).__name__)

    async def stop(self) -> None:
        """Stop watching (the app is shutting down: what it watches is closing)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        raise NotImplementedError


def session_events(
    org_id: str, project_id: int, kind: str, fields: Mapping[str, Any]
) -> list[StreamEvent]:
    """``session.started`` for a start; ``session.ended`` for every end, then
    ``session.crashed`` when that session crashed (status crashed or a crash counted)."""
    if kind == "start":
        return [StreamEvent(org_id, project_id, "session.started", _pick(fields, START_FIELDS))]
    data = _pick(fields, END_FIELDS)
    events = [StreamEvent(org_id, project_id, "session.ended", data)]
    if fields.get("status") == "crashed" or (fields.get("crash_count") or 0) > 0:
        events.append(StreamEvent(org_id, project_id, "session.crashed", data))
    return events


def _pick(fields: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    # Only the documented session fields: never the api_key a client may send in the body.
    return {name: fields.get(name) for name in names}


hub = StreamHub()
