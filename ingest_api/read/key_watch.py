"""Revoked keys lose their open streams.

A key is checked when a request arrives, but a Server-Sent Events stream is one request that
lasts for hours. While any stream is open, :class:`KeyWatcher` asks the registry every
:data:`POLL_SECONDS` which of the keys holding streams have been revoked (one indexed query for
all of them) and ends their streams. The registry is a database, not this process's memory, so a
revocation made anywhere — ``loom keys revoke`` in another process, another host on a PostgreSQL
registry — ends the stream within about that long.
"""

from __future__ import annotations

import asyncio
import logging

from ingest_api.stream_hub import StreamHub, WhileStreamsOpen
from warehouse.registry import Registry, RegistryUnavailable

POLL_SECONDS = 1.0
logger = logging.getLogger(__name__)


class KeyWatcher(WhileStreamsOpen):
    def __init__(
        self, registry: Registry, hub: StreamHub, poll_seconds: float = POLL_SECONDS
    ) -> None:
        super().__init__(hub, poll_seconds)
        self._registry = registry

    async def _watch(self) -> None:
        unavailable = False
        while key_ids := self._hub.key_ids():
            await asyncio.sleep(self._poll_seconds)
            try:
                # On the event loop, as every request's key check: the registry's connection
                # belongs to it.
                revoked = self._registry.revoked_among(key_ids)
            except RegistryUnavailable as error:
                # Streams stay open while no key can be checked (new requests get 503s); a key
                # revoked meanwhile loses its streams once the registry answers again.
                if not unavailable:
                    logger.warning("cannot check the keys of open streams: %s", error)
                unavailable = True
                continue
            unavailable = False
            for key_id, revoked_at in revoked.items():
                ended = self._hub.end_key(key_id, f"API key {key_id} was revoked at {revoked_at}")
                if ended:
                    logger.info("ended %d stream(s) of revoked key %s", ended, key_id)
