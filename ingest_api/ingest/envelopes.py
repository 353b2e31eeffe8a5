"""Sentry envelopes, as the envelope route reads them (Sentry's format: a header line, then per
item a header line and a payload, https://develop.sentry.dev/sdk/data-model/envelopes/).

The body is decoded (``Content-Encoding: gzip`` or ``br``, each stopped at
``LOOM_MAX_REQUEST_BYTES``) and split into its items by scanning it: only item headers are
parsed, and only the payloads of the item types Loom stores (``session``, ``sessions``) are
copied out. Everything else an SDK sends in an envelope (events, transactions, attachments,
client reports…) is counted and skipped unread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import brotli
import msgspec
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers, QueryParams

from ingest_api.ingest.routing import gunzip, too_large
from ingest_api.ingest.schemas.fields import MAX_BATCH_ITEMS

SESSION_ITEM_TYPES = frozenset({"session", "sessions"})
ENCODINGS = "gzip, br or none"


def unbrotli(raw: bytes, limit: int) -> bytes:
    """Decompress at most about ``limit`` bytes, so a small brotli bomb cannot exhaust memory."""
    decompressor = brotli.Decompressor()
    try:
        body = decompressor.process(raw, output_buffer_limit=limit + 1)
    except brotli.error:
        raise HTTPException(400, "body is not valid brotli (br)") from None
    if len(body) > limit:
        raise too_large(limit)
    if not decompressor.is_finished():
        raise HTTPException(400, "body is not valid brotli (br): truncated")
    return body


def decode_envelope(raw: bytes, headers: Headers, query: QueryParams, limit: int) -> bytes:
    """The body less its ``Content-Encoding``: what Sentry SDKs send (gzip, or brotli when they
    have it), or none."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return gunzip(raw, limit)
    if encoding == "br":
        return unbrotli(raw, limit)
    if encoding not in ("identity", ""):
        raise HTTPException(415, f"unsupported Content-Encoding {encoding!r}; send {ENCODINGS}")
    return raw


@dataclass(frozen=True, slots=True)
class Item:
    index: int  # position among the envelope's items, from 0
    type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    sent_at: Any  # the envelope header's, as sent: when the SDK sent it, by its clock
    items: tuple[Item, ...]  # the session and sessions items


class _EnvelopeHeader(msgspec.Struct):
    """What Loom reads of the envelope header; msgspec skips the rest unparsed."""

    sent_at: Any = None


class _ItemHeader(msgspec.Struct):
    type: str
    length: int | None = None


def invalid(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 400 naming where in the envelope the problem is (errors.py words it)."""
    error = {"type": "envelope", "loc": ("body", *loc), "msg": message, "input": None}
    return RequestValidationError([error])


def _header(body: bytes, start: int, end: int, into: type[Any], loc: tuple[str | int, ...]) -> Any:
    try:
        return msgspec.json.decode(body[start:end], type=into)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        raise invalid(loc, f"not a JSON object on one line: {error}") from None


def _line_end(body: bytes, start: int) -> int:
    end = body.find(b"\n", start)
    return len(body) if end < 0 else end


def _content_end(body: bytes) -> int:
    """Where the body ends but for trailing whitespace (found without copying the body)."""
    end = len(body)
    while end and body[end - 1] in b" \t\r\n":
        end -= 1
    return end


def split_envelope(body: bytes, max_payload_bytes: int) -> Envelope:
    """The header's ``sent_at`` and the session and sessions items of ``body``; 400 for a
    malformed envelope, 413 for more than ``MAX_BATCH_ITEMS`` items or a session payload over
    ``max_payload_bytes``."""
    content_end = _content_end(body)
    if not content_end:
        raise invalid(("envelope header",), "the body is empty: an envelope starts with a header")
    end = _line_end(body, 0)
    envelope = _header(body, 0, end, _EnvelopeHeader, ("envelope header",))
    position, index, items = end + 1, 0, []
    while position < content_end:
        if index == MAX_BATCH_ITEMS:
            raise HTTPException(
                413, f"more than {MAX_BATCH_ITEMS} items in one envelope: send fewer per request"
            )
        end = _line_end(body, position)
        header = _header(body, position, end, _ItemHeader, (index, "item header"))
        start = min(end + 1, len(body))
        if header.length is None:  # the payload runs to the end of its line
            end = _line_end(body, start)
        else:
            if header.length < 0 or start + header.length > len(body):
                raise invalid(
                    (index, "length"),
                    f"the item header declares {header.length} bytes of payload, but "
                    f"{max(len(body) - start, 0)} follow",
                )
            end = start + header.length
            if end < len(body) and body[end : end + 1] != b"\n":
                raise invalid((index, "payload"), "the payload must end with a newline")
        if header.type in SESSION_ITEM_TYPES:
            if end - start > max_payload_bytes:
                raise HTTPException(
                    413,
                    f"envelope item {index} ({header.type}) is {end - start} bytes; a session "
                    f"item may be at most {max_payload_bytes} bytes",
                )
            items.append(Item(index, header.type, body[start:end]))
        position, index = end + 1, index + 1
    return Envelope(envelope.sent_at, tuple(items))
