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
from ingest_api.stream_hub import StreamEvent, StreamHub, WhileStreamsOpen
from warehouse.published import (
    CatalogUnavailable,
    LakeFileDamaged,
    NoSnapshotError,
    PublishedMarts,
)

POLL_SECONDS = 1.0
logger = logging.getLogger(__name__)


class HealthWatcher(WhileStreamsOpen):
    def __init__(
        self, marts: PublishedMarts, hub: StreamHub, poll_seconds: float = POLL_SECONDS
    ) -> None:
        super().__init__(hub, poll_seconds)
        self._marts = marts

    async def _watch(self) -> None:
        seen_snapshot, seen = await asyncio.to_thread(self._read)
        failing = False  # a damaged file fails every poll: say so once, not every second
        while self._hub.subscriber_count() > 0:
            await asyncio.sleep(self._poll_seconds)
            try:
                snapshot, health = await asyncio.to_thread(self._read)
            except (duckdb.Error, CatalogUnavailable, LakeFileDamaged):
                # An unreadable snapshot, catalog or file must not end the stream; try again later.
                if not failing:
                    logger.exception("could not read release health from the published snapshot")
                failing = True
                continue
            failing = False
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
