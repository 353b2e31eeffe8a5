"""``release.health_changed``: noticed by the read API when a pipeline run publishes a snapshot.

One watcher per process, running only while someone listens to a stream: every
:data:`POLL_SECONDS` it asks which published snapshot this process answers from (the marts follow
new publishes in the background), and when it changed it reads every release's health from it,
compares it with the snapshot it saw before and publishes the releases whose numbers changed,
carrying the new numbers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import duckdb

from ingest_api.read.releases import ReleaseKey, current_release_health
from ingest_api.stream_hub import StreamEvent, StreamHub
from warehouse.published import CatalogUnavailable, NoSnapshotError, PublishedMarts

POLL_SECONDS = 1.0
logger = logging.getLogger(__name__)


class HealthWatcher:
    def __init__(
        self, marts: PublishedMarts, hub: StreamHub, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self._marts = marts
        self._hub = hub
        self._poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        """Start watching (from the event loop) unless already watching."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="release-health-watcher")

    async def _watch(self) -> None:
        seen_snapshot, seen = await asyncio.to_thread(self._read)
        while self._hub.subscriber_count() > 0:
            await asyncio.sleep(self._poll_seconds)
            try:
                snapshot, health = await asyncio.to_thread(self._read)
            except (duckdb.Error, CatalogUnavailable):
                # An unreadable snapshot or catalog must not end the stream; try again later.
                logger.exception("could not read release health from the published snapshot")
                continue
            if snapshot == seen_snapshot:
                continue
            for event in health_changes(seen, health):
                self._hub.publish(event)
            seen_snapshot, seen = snapshot, health

    def _read(self) -> tuple[int | None, dict[ReleaseKey, dict[str, Any]]]:
        """The current snapshot's id and health. The id is taken first: the health read after it
        is of that snapshot or a newer one, so a newer one is never marked as already seen."""
        try:
            snapshot = self._marts.snapshot_id()
            with self._marts.cursor() as cur:
                return snapshot, current_release_health(cur)
        except NoSnapshotError:
            return None, {}


def health_changes(
    before: dict[ReleaseKey, dict[str, Any]], after: dict[ReleaseKey, dict[str, Any]]
) -> list[StreamEvent]:
    """A ``release.health_changed`` event per release whose numbers differ (or that is new)."""
    return [
        StreamEvent(key.org_id, key.project_id, "release.health_changed", numbers)
        for key, numbers in sorted(after.items())
        if before.get(key) != numbers
    ]
