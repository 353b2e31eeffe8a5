"""PostHog-compatible capture, so PostHog SDKs, posthog-js in the browser included, need only a
new host.

``/batch/``, ``/capture/``, ``/e/`` and ``/i/v0/e/`` each take one event, ``{"batch": [...]}`` or
an array of events, in whatever encoding PostHog's SDKs use
(:func:`decode_posthog`).
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
from ingest_api.ingest import event_time, ingest_router, lz64
from ingest_api.ingest.deps import DurableByDefault, RequestReceipt, Writer
from ingest_api.ingest.records import Receipt, Records
from ingest_api.ingest.routes.common import land
from ingest_api.ingest.routing import (
    FORM,
    GZIP_MAGIC,
    IngestRequest,
    IngestRoute,
    InvalidJson,
    Payload,
    gunzip,
    is_json,
    located,
    media_type,
    parse_json,
    too_large,
)
from ingest_api.ingest.schemas.posthog import PostHogAck, PostHogBody, PostHogEvent

PATHS = ("/batch/", "/capture/", "/e/", "/i/v0/e/")
# posthog-js labels its gzip bodies and beacons text/plain, and sends base64 as a form.
MEDIA_TYPES = "JSON, text/plain (what posthog-js labels gzip) or " + FORM
EVENT = TypeAdapter(PostHogEvent)
BODY = TypeAdapter(PostHogBody)


# What ``compression`` (query, form or Content-Encoding) may say, PostHog's names for each.
GZIP, LZ64, BASE64 = "gzip", "lz64", "base64"
COMPRESSIONS = {
    "gzip": GZIP, "gzip-js": GZIP, "lz64": LZ64, "lz-string": LZ64, "base64": BASE64, "b64": BASE64,
}  # fmt: skip
# PostHog looks this far into a body to tell a form or base64 from anything else.
SNIFFED_BYTES = 128
FORM_FIELDS = (b"data=", b"_=", b"ip=", b"compression=")
# Decoded byte by byte in Python: a bigger body would hold a parsing thread for seconds. The
# posthog-js releases that sent LZ64 batched at most 100 events, tens of kilobytes.
MAX_LZ64_BYTES = 1024 * 1024
BASE64_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _is_form(body: bytes) -> bool:
    """PostHog's test: a field it knows starts the body or follows an ``&``."""
    head = body[:SNIFFED_BYTES]
    return any(head.startswith(field) or b"&" + field in head for field in FORM_FIELDS)


def _is_base64(body: bytes) -> bool:
    """PostHog's test: base64's alphabet as far as it looks, and a whole number of quads."""
    return bool(body) and len(body) % 4 == 0 and BASE64_BYTES.issuperset(body[:SNIFFED_BYTES])


def _unbase64(body: bytes) -> bytes | None:
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        return None


def _form_data(body: bytes) -> tuple[bytes, str | None]:
    """posthog-js's form body: ``data=<JSON, base64 or LZ64>``, maybe with ``compression=...``."""
    if not _is_form(body):
        raise HTTPException(400, f"a {FORM} body must be a form: data=<the events>")
    try:
        form = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as error:
        raise HTTPException(400, f"body is not a valid form ({FORM}): {error}") from None
    if "data" not in form:
        raise HTTPException(400, f"a {FORM} body needs a data field holding the events")
    # Form decoding turns an unescaped '+' into a space; base64 has no spaces, so undo it.
    data = form["data"][0].encode().replace(b" ", b"+")
    return data, form.get("compression", [None])[0]


def _compression(name: str | None) -> str | None:
    return COMPRESSIONS.get(name.strip().lower()) if name else None


def _content_encoding(raw: bytes, headers: Headers, limit: int) -> tuple[bytes, str | None]:
    """The body less HTTP's gzip; any other Content-Encoding PostHog knows is a compression
    hint, as PostHog reads it."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return gunzip(raw, limit), None
    if encoding in ("identity", "") or encoding in COMPRESSIONS:
        return raw, _compression(encoding)
    raise HTTPException(
        415, f"unsupported Content-Encoding {encoding!r}; use gzip, or none with ?compression="
    )


def decode_posthog(raw: bytes, headers: Headers, query: QueryParams, limit: int) -> bytes:
    """What PostHog's SDKs send, decoded as PostHog's capture decodes it (rust/capture's
    ``extract_payload_bytes`` and ``decompress_payload``):

    1. HTTP's ``Content-Encoding: gzip``;
    2. a body that is all base64 (and not a form) is decoded, unless flagged LZ64 (which PostHog
       garbles so, but no SDK sends outside a form);
    3. a form's ``data`` field is the payload, its ``compression`` a hint;
    4. gzip is recognized by its magic bytes, whatever the hint says (JSON never starts so: the
       only flag posthog-js sends since 1.399), else a ``lz64`` hint means LZString base64;
    5. a payload still base64 after that is decoded (``compression=base64``, or no flag at all,
       as posthog-js 1.78 sends its forms).

    The hint is ``compression`` of the query, else of the form, else the Content-Encoding.
    """
    body, header_hint = _content_encoding(raw, headers, limit)
    query_hint = _compression(query.get("compression"))
    # LZ64 is base64 text too: PostHog's decoding of it here would garble it.
    if LZ64 not in (query_hint, header_hint) and not _is_form(body) and _is_base64(body):
        body = _unbase64(body) or body
    form_hint = None
    if media_type(headers.get("content-type")) == FORM:
        body, form_compression = _form_data(body)
        form_hint = _compression(form_compression)
    hint = query_hint or form_hint or header_hint
    if body.startswith(GZIP_MAGIC):
        return gunzip(body, limit)
    if hint == LZ64:
        return _unlz64(body, limit)
    if _is_base64(body):
        decoded = _unbase64(body)
        if decoded is not None:
            return decoded  # no larger than what it decodes
    if hint == BASE64 and body:
        raise HTTPException(400, "body is not valid base64 (compression=base64)")
    return body


def _unlz64(body: bytes, limit: int) -> bytes:
    if len(body) > MAX_LZ64_BYTES:
        raise HTTPException(
            413,
            f"an LZ64 body may be at most {MAX_LZ64_BYTES} bytes as sent: send gzip "
            "(compression=gzip-js), which posthog-js has used since 2021",
        )
    try:
        return lz64.decompress_to_utf8(body, limit)
    except lz64.Lz64TooLarge:
        raise too_large(limit) from None
    except lz64.Lz64Error as error:
        raise HTTPException(400, f"body is not valid LZ64 (compression=lz64): {error}") from None


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


def posthog_records(payload: Payload, receipt: Receipt, query_sent_at: Any = None) -> Records:
    """The records of the request's events, each parsed, validated and serialized in turn.
    Their times are corrected by the batch's ``sent_at``, else the query's (PostHog's order)."""
    sent_at = payload.members.get("sent_at") or query_sent_at
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
                records.posthog_event(event, sent_at)
    if errors:
        raise RequestValidationError(errors)
    return records


async def capture(
    request: IngestRequest, receipt: RequestReceipt, writer: Writer, sync: DurableByDefault = True
) -> PostHogAck:
    """Capture PostHog events. Identity events ($identify, $create_alias, $merge_dangerously,
    $set, $set_once) land in the identities stream, all others in events."""
    payload = await request.payload()
    query_sent_at = event_time.query_sent_at(request.query_params)
    records = await request.off_loop(
        len(payload.body), posthog_records, payload, receipt, query_sent_at
    )
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
