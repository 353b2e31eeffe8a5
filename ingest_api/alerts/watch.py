"""``alert.triggered`` / ``alert.resolved`` on the project's live stream.

Rules are judged on the pipeline host, which records each change of state in the registry
(:mod:`warehouse.alert_store`). While any stream is open, each API process asks the registry
every :data:`POLL_SECONDS` for the events recorded since the last it saw (one indexed query) and
publishes them to the hub, which hands each to the streams of its project. The registry is shared,
so every API host relays every event. The newest event id is read before a new stream is told it
is subscribed, so nothing recorded after that is missed.
"""

from __future__ import annotations

import asyncio
import logging

from ingest_api.stream_hub import StreamEvent, StreamHub, WhileStreamsOpen
from warehouse.alert_store import AlertStore
from warehouse.registry import RegistryUnavailable

POLL_SECONDS = 1.0
logger = logging.getLogger(__name__)


class AlertWatcher(WhileStreamsOpen):
    def __init__(self, store: AlertStore, hub: StreamHub, poll_seconds: float = POLL_SECONDS):
        super().__init__(hub, poll_seconds)
        self._store = store
        self._seen: int | None = None  # the newest event relayed, once known

    def ensure_running(self) -> None:
        """Start relaying (from the event loop) unless already relaying; the events already
        recorded are not sent again."""
        if self._task is None or self._task.done():
            self._seen = self._newest()
        super().ensure_running()

    def _newest(self) -> int | None:
        try:
            return self._store.last_event_id()
        except RegistryUnavailable as error:
            logger.warning("cannot read alert events: %s", error)
            return None

    async def _watch(self) -> None:
        unavailable = False
        while self._hub.subscriber_count():
            await asyncio.sleep(self._poll_seconds)
            try:
                # On the event loop, as every request's key check: the connection belongs to it.
                if self._seen is None:
                    self._seen = self._store.last_event_id()
                    continue
                events = self._store.events_after(self._seen)
            except RegistryUnavailable as error:
                if not unavailable:
                    logger.warning("cannot read alert events: %s", error)
                unavailable = True
                continue
            unavailable = False
            for event in events:
                self._hub.publish(
                    StreamEvent(event.org_id, event.project_id, event.name, event.payload)
                )
                self._seen = event.event_id
