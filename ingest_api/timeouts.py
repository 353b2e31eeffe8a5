"""Slow clients are cut off: a request's headers must arrive within ``LOOM_HEADER_TIMEOUT_SECONDS``
of its first byte (or of the connection, for its first request), and its body within
``LOOM_BODY_TIMEOUT_SECONDS`` of its headers; otherwise the server answers ``408 Request Timeout``
and closes the connection (a connection that sent nothing at all is closed without an answer, as
an idle keep-alive one is: browsers open such connections ahead of need).

uvicorn 0.54 has neither limit: ``timeout_keep_alive`` only closes a connection left idle between
requests (its first byte cancels the timer), so a client trickling its headers, or its body into
a request already handed to the app, held a connection, and a request task, for as long as it
liked. The limits live in uvicorn's httptools protocol (what ``loom serve`` runs), the one place
that sees a request before its headers are complete.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("uvicorn.error")

REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request Timeout\n"
)


@dataclass(frozen=True)
class Timeouts:
    header_seconds: float
    body_seconds: float


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on reading each request: one for its headers,
    then one for its body. uvicorn calls it with its own arguments; ``timeouts`` comes first
    (``functools.partial``, see ``ingest_api.server.uvicorn_config``)."""

    def __init__(self, timeouts: Timeouts, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeouts = timeouts
        self._deadline: asyncio.TimerHandle | None = None
        self._reading = False  # whether a request has begun arriving

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expire_after(self._timeouts.header_seconds, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        if self._deadline is None:  # a later request on the connection: from its first byte
            self._expire_after(self._timeouts.header_seconds, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._expire_after(self._timeouts.body_seconds, "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = False
        self._cancel_deadline()

    def _expire_after(self, seconds: float, part: str) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_later(seconds, self._expire, seconds, part)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, seconds: float, part: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        answering = cycle is not None and not cycle.response_complete  # the app has the request
        if self._reading and not (answering and cycle.response_started):
            self.transport.write(REQUEST_TIMEOUT)
            log.info("closed a connection whose request %s took over %g s", part, seconds)
        if answering:
            # The app's next read of the body sees the client gone, and its answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
