"""PostHog-compatible capture, so PostHog SDKs, posthog-js in the browser included, need only a
new host.

``/batch/``, ``/capture/``, ``/e/`` and ``/i/v0/e/`` each take one event, ``{"batch": [...]}`` or
an array of events, in whatever encoding PostHog's SDKs use
(:func:`ingest_api.ingest.routing.decode`).
The key is a header, the body's ``api_key`` / ``token``, or the one every event carries in
``properties.token``, as posthog-js sends it.

The events are validated and serialized one at a time, so a request needs the memory of its
largest event rather than of all of them; any invalid event still rejects the whole request,
every invalid event listed. PostHog clients treat only 200 as success (and retry 5xx/429), so
these answer 200, and by default only once the records are on disk.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qs

import msgspec
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers, QueryParams

from ingest_api.auth import key_from_headers, key_in
from ingest_api.ingest import ingest_router
from ingest_api.ingest.deps import DurableByDefault, RequestReceipt, Writer
from ingest_api.ingest.records import Receipt, Records
from ingest_api.ingest.routes.common import land
from ingest_api.ingest.routing import (
    GZIP_MAGIC,
    IngestRequest,
    IngestRoute,
    InvalidJson,
    Payload,
    decode,
    gunzip,
    is_json,
    located,
    media_type,
    parse_json,
)
from ingest_api.ingest.schemas import PostHogAck, PostHogBody, PostHogEvent

PATHS = ("/batch/", "/capture/", "/e/", "/i/v0/e/")
FORM = "application/x-www-form-urlencoded"
GZIP_COMPRESSIONS = frozenset({"gzip", "gzip-js"})
# posthog-js labels its gzip bodies and beacons text/plain, and sends base64 as a form.
MEDIA_TYPES = "JSON, text/plain (what posthog-js labels gzip) or " + FORM
EVENT = TypeAdapter(PostHogEvent)
BODY = TypeAdapter(PostHogBody)


def _unbase64(data: bytes) -> bytes:
    # Form decoding turns an unescaped '+' into a space; base64 has no spaces, so undo it.
    try:
        return base64.b64decode(data.replace(b" ", b"+"), validate=True)
    except binascii.Error as error:
        reason = f"body is not valid base64 (compression=base64): {error}"
        raise HTTPException(400, reason) from None


def _form_data(body: bytes) -> tuple[bytes, str | None]:
    """posthog-js's form body: ``data=<JSON or base64>``, maybe with ``compression=...``."""
    try:
        form = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as error:
        raise HTTPException(400, f"body is not a valid form ({FORM}): {error}") from None
    if "data" not in form:
        raise HTTPException(400, f"a {FORM} body needs a data field holding the JSON")
    return form["data"][0].encode(), form.get("compression", [None])[0]


def decode_posthog(raw: bytes, headers: Headers, query: QueryParams, limit: int) -> bytes:
    """What PostHog's SDKs send, decoded: after any Content-Encoding, a form's ``data`` field,
    then what ``compression`` (the query's, or the form's) says: ``gzip-js``, ``gzip`` or
    ``base64``. Without it, gzip is recognized by its magic bytes (JSON never starts so): the
    only way posthog-js flags it since 1.399."""
    body = decode(raw, headers, query, limit)
    compression = query.get("compression")
    if media_type(headers.get("content-type")) == FORM:
        body, form_compression = _form_data(body)
        compression = form_compression or compression
    if compression in GZIP_COMPRESSIONS or (compression is None and body.startswith(GZIP_MAGIC)):
        return gunzip(body, limit)
    if compression == "base64":
        return _unbase64(body)  # no larger than what it decodes
    if compression is not None:
        raise HTTPException(
            415, f"unsupported compression {compression!r}; use gzip-js, gzip or base64"
        )
    return body


class _Properties(msgspec.Struct):
    token: Any = None


class _KeyHolder(msgspec.Struct):
    """Where an event may carry its key; msgspec skips everything else unparsed."""

    api_key: Any = None
    token: Any = None
    properties: _Properties | None = None


def _event_key(event: msgspec.Raw) -> str | None:
    try:
        holder = msgspec.json.decode(event, type=_KeyHolder)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None  # the event's validation says what is wrong with it
    properties = holder.properties or _Properties()
    key = next((k for k in (holder.api_key, holder.token, properties.token) if k), None)
    return key if isinstance(key, str) else None


def key_of(payload: Payload) -> str | None:
    """The key in a PostHog body: the batch object's, else the one its events carry."""
    keys = {key_in(payload.members)} - {None} or set(map(_event_key, payload.events)) - {None}
    if len(keys) > 1:
        raise HTTPException(
            400,
            f"the events carry {len(keys)} different API keys (properties.token): "
            "send the events of each key in their own request",
        )
    return next(iter(keys), None)


class PostHogRoute(IngestRoute):
    """Decodes what posthog-js sends too, and reads its body itself, event by event (see
    :func:`posthog_records`)."""

    decoder = staticmethod(decode_posthog)

    async def read_body(self, request: IngestRequest) -> None:
        media = request.media_type
        if not (is_json(media) or media in ("text/plain", FORM)):
            raise HTTPException(415, f"send the body as {MEDIA_TYPES}, not {media or 'untyped'}")
        payload = await request.payload()
        if key_from_headers(request) is None:
            request.state.key_in_body = await request.off_loop(len(payload.body), key_of, payload)


def _body_errors(payload: Payload) -> list[dict[str, Any]]:
    """What is wrong with the body around its events (its shape, a batch object's other
    members, no event at all), checked on a stand-in holding one already validated event."""
    stand_in = [PostHogEvent.model_construct()] if payload.events else []
    body = {**payload.members, "batch": stand_in} if payload.shape == "batch" else stand_in
    try:
        BODY.validate_python(body)
    except ValidationError as error:
        return located(error.errors(include_url=False), ("body",))
    return []


def posthog_records(payload: Payload, receipt: Receipt) -> Records:
    """The records of the request's events, each parsed, validated and serialized in turn."""
    errors = [] if payload.shape == "event" else _body_errors(payload)
    records = Records(receipt, "posthog")
    for index, raw in enumerate(payload.events):
        try:
            event = EVENT.validate_python(parse_json(raw))
        except InvalidJson as error:
            errors.append(error.error(payload.location(index)))
        except ValidationError as error:
            errors.extend(located(error.errors(include_url=False), payload.location(index)))
        else:
            if not errors:  # nothing will land: only find what else is invalid
                records.posthog_event(event)
    if errors:
        raise RequestValidationError(errors)
    return records


async def capture(
    request: IngestRequest, receipt: RequestReceipt, writer: Writer, sync: DurableByDefault = True
) -> PostHogAck:
    """Capture PostHog events. Identity events ($identify, $create_alias, $merge_dangerously,
    $set, $set_once) land in the identities stream, all others in events."""
    payload = await request.payload()
    records = await request.off_loop(len(payload.body), posthog_records, payload, receipt)
    await land(writer, records, sync)
    return PostHogAck()


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(definitions[schema["$ref"].rsplit("/", 1)[1]], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


def _request_body() -> dict[str, Any]:
    """The OpenAPI request body: FastAPI documents only bodies it reads itself, and this one's
    definitions must be inlined, as an operation cannot add schemas to the components."""
    schema = BODY.json_schema()
    definitions = schema.pop("$defs", {})
    return {
        "required": True,
        "content": {"application/json": {"schema": _inline(schema, definitions)}},
    }


router = ingest_router(route_class=PostHogRoute, tags=["compatibility"])
OPENAPI = {"requestBody": _request_body()}

for path in PATHS:
    router.add_api_route(
        path, capture, methods=["POST"], name=f"posthog {path}", openapi_extra=OPENAPI
    )
    # Without the slash too: a POST redirected by FastAPI would not be followed by every client.
    router.add_api_route(path.rstrip("/"), capture, methods=["POST"], include_in_schema=False)
