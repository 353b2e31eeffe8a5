"""``release.health_changed``: sent by the read API as soon as it switches to a newly published
snapshot.

One watcher per process, running only while someone listens to a stream. The marts tell it of
each switch (:meth:`~warehouse.published.PublishedMarts.on_switch`); it then reads every
release's health from the new snapshot, compares it with the snapshot it saw before and publishes
the releases whose numbers changed, carrying the new numbers and the snapshot they are from."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import duckdb

from ingest_api.read.releases import ReleaseKey, current_release_health
from ingest_api.read.snapshots import snapshot_fields
from ingest_api.stream_hub import StreamEvent, StreamHub
from warehouse.published import (
    CatalogUnavailable,
    LakeFileDamaged,
    NoSnapshotError,
    Publish,
    PublishedMarts,
)

# How often a watcher with nothing to announce checks whether anyone still listens.
IDLE_CHECK_SECONDS = 1.0
logger = logging.getLogger(__name__)


class HealthWatcher:
    def __init__(self, marts: PublishedMarts, hub: StreamHub) -> None:
        self._marts = marts
        self._hub = hub
        self._idle_check_seconds = IDLE_CHECK_SECONDS
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._switched: asyncio.Event | None = None
        self._baseline = asyncio.Event()  # set once the watcher has read what it compares with
        marts.on_switch(self._on_switch)

    async def watching(self) -> None:
        """Start watching unless already watching; returns once the health that later snapshots
        are compared with has been read, so that no change after it is missed. The watcher ends
        at an idle check that finds nobody subscribed to the hub."""
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._switched = asyncio.Event()
            self._baseline = asyncio.Event()
            self._task = asyncio.create_task(self._watch(), name="release-health-watcher")
        await self._baseline.wait()

    def _on_switch(self, publish: Publish) -> None:
        """Called in the thread that switched the marts."""
        loop, switched = self._loop, self._switched
        if loop is None or switched is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            loop.call_soon_threadsafe(switched.set)

    async def _watch(self) -> None:
        assert self._switched is not None
        try:
            seen_publish, seen = await asyncio.to_thread(self._read)
        finally:
            self._baseline.set()  # a failed read ends the watcher; the next stream restarts it
        failing = False  # a damaged file fails every read: say so once, not at every switch
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._switched.wait(), timeout=self._idle_check_seconds)
            if not self._switched.is_set():
                if self._hub.subscriber_count() == 0:
                    return
                continue
            self._switched.clear()
            try:
                publish, health = await asyncio.to_thread(self._read)
            except (duckdb.Error, CatalogUnavailable, LakeFileDamaged):
                # An unreadable snapshot, catalog or file must not end the stream; the next
                # switch tries again.
                if not failing:
                    logger.exception("could not read release health from the published snapshot")
                failing = True
                continue
            failing = False
            if publish is None or publish == seen_publish:
                continue
            for event in health_changes(seen, health, publish):
                self._hub.publish(event)
            seen_publish, seen = publish, health

    def _read(self) -> tuple[Publish | None, dict[ReleaseKey, dict[str, Any]]]:
        """The newest snapshot and every release's health in it."""
        try:
            with self._marts.reading() as (publish, cur):
                return publish, current_release_health(cur)
        except NoSnapshotError:
            return None, {}


def health_changes(
    before: dict[ReleaseKey, dict[str, Any]],
    after: dict[ReleaseKey, dict[str, Any]],
    publish: Publish,
) -> list[StreamEvent]:
    """A ``release.health_changed`` event per release whose numbers differ (or that is new),
    with the snapshot ``after`` was read from."""
    snapshot = snapshot_fields(publish)
    return [
        StreamEvent(
            key.org_id, key.project_id, "release.health_changed", {**numbers, "snapshot": snapshot}
        )
        for key, numbers in sorted(after.items())
        if before.get(key) != numbers
    ]
