"""Request bodies as the ingest routes read them: size-limited, gzip-aware, parsed by orjson.

FastAPI's documented way to change how a body is read is a custom ``Request`` behind a custom
``APIRoute``; FastAPI then validates the parsed body against the route's pydantic model.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body is larger than {limit} bytes (LOOM_MAX_REQUEST_BYTES)")


def gunzip(raw: bytes, limit: int) -> bytes:
    """Decompress at most ``limit`` bytes, so a small gzip bomb cannot exhaust memory."""
    decompressor = zlib.decompressobj(wbits=31)
    try:
        body = decompressor.decompress(raw, limit + 1)
    except zlib.error as error:
        raise HTTPException(400, f"body is not valid gzip: {error}") from None
    if len(body) > limit:
        raise _too_large(limit)
    if not decompressor.eof:
        raise HTTPException(400, "body is not valid gzip: truncated")
    return body


class IngestRequest(Request):
    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            limit: int = self.app.state.settings.max_request_bytes
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            chunks, size = [], 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            raw = b"".join(chunks)
            encoding = self.headers.get("content-encoding", "identity").strip().lower()
            if encoding == "gzip":
                raw = gunzip(raw, limit)
            elif encoding != "identity":
                raise HTTPException(415, f"unsupported Content-Encoding {encoding!r}; use gzip")
            self._body = raw
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # orjson.JSONDecodeError subclasses json.JSONDecodeError, which FastAPI turns into a
            # validation error.
            self._json = orjson.loads(await self.body())
        return self._json


class IngestRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def ingest_handler(request: Request) -> Response:
            return await handler(IngestRequest(request.scope, request.receive))

        return ingest_handler
