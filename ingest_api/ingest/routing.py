"""Request bodies as the ingest routes read them.

1. **Read** up to ``LOOM_MAX_REQUEST_BYTES``.
2. **Decode** with the route's decoder: :func:`decode` (``Content-Encoding: gzip``), or the PostHog
   routes' one, which also takes what posthog-js sends. The byte limit applies to what any
   decoding yields.
3. **Split** (:func:`split`) into events without parsing them: msgspec's ``Raw`` values point into
   the body. A request with more than ``MAX_BATCH_ITEMS`` events, or an event larger than
   ``max_event_bytes``, is refused (413) before anything is parsed.
4. **Validate** what is around the events (the body's shape, a batch object's other members) with
   a stand-in for each event, then parse and validate each event on its own, and hand it to the
   handler (:class:`Events`), which serializes it before the next is parsed. So a request needs
   the memory of its largest event, not of all of them. A route whose body is one object gets it
   validated whole: it is no larger than one event may be. (The PostHog routes do the same in
   :mod:`ingest_api.ingest.routes.posthog`.)

Big bodies are split, parsed and validated in a worker thread, one event per call into C, so
the event loop (``/healthz``, other requests) keeps running while they are.

A route takes its events one at a time by declaring its body as ``Events``, annotated with
:class:`EventsIn`, which says what the body is (for validation and for the OpenAPI) and where in
it the events are.

FastAPI's documented way to change how a body is read is a custom ``Request`` behind a custom
``APIRoute``. Here the route validates the body before FastAPI's handler runs, off the event
loop, and FastAPI then finds it validated.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import anyio.to_thread
import msgspec
from anyio import CapacityLimiter
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import CoreSchema, core_schema
from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope

from ingest_api.auth import authenticate, key_in
from ingest_api.ingest.schemas.fields import MAX_BATCH_ITEMS

if TYPE_CHECKING:
    from fastapi._compat import ModelField

T = TypeVar("T")
E = TypeVar("E", bound=BaseModel)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
GZIP_MAGIC = b"\x1f\x8b"
# Below this size a body is parsed right on the event loop: a thread hop would cost more.
INLINE_BYTES = 64 * 1024
# Big bodies parsed at once, per app: more wait, so memory under load stays a multiple of one.
PARSING_CONCURRENCY = 2
# What a batch object may hold besides its events (api_key, sent_at and the like), and an event
# besides its properties.
MAX_BATCH_MEMBERS_BYTES = EVENT_FIELDS_BYTES = 64 * 1024
LEADING_WHITESPACE = re.compile(rb"[ \t\n\r]*")
BYTE_POSITION = re.compile(r"\s*\(byte (\d+)\)$")

Shape = Literal["event", "array", "batch"]


def media_type(content_type: str | None) -> str:
    """``type/subtype`` of a Content-Type header, lowercased and without parameters."""
    return (content_type or "").partition(";")[0].strip().lower()


def is_json(media: str) -> bool:
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


def max_event_bytes(max_properties_bytes: int) -> int:
    """An event's properties may be ``max_properties_bytes`` as compact JSON; the event as sent
    gets 64 KiB more for its other fields (PostHog takes events of up to 1 MB)."""
    return max_properties_bytes + EVENT_FIELDS_BYTES


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body is larger than {limit} bytes (LOOM_MAX_REQUEST_BYTES)")


# ---------------------------------------------------------------------------------------------
# Decoding


def gunzip(raw: bytes, limit: int) -> bytes:
    """Decompress at most ``limit`` bytes, so a small gzip bomb cannot exhaust memory."""
    decompressor = zlib.decompressobj(wbits=31)
    try:
        body = decompressor.decompress(raw, limit + 1)
    except zlib.error as error:
        raise HTTPException(400, f"body is not valid gzip: {error}") from None
    if len(body) > limit:
        raise too_large(limit)
    if not decompressor.eof:
        raise HTTPException(400, "body is not valid gzip: truncated")
    if decompressor.unused_data:
        raise HTTPException(
            400, f"body is not valid gzip: {len(decompressor.unused_data)} bytes after its end"
        )
    return body


def decode(raw: bytes, headers: Headers, query: QueryParams, limit: int) -> bytes:
    """The body less its ``Content-Encoding``: gzip, or none."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return gunzip(raw, limit)
    if encoding != "identity":
        raise HTTPException(415, f"unsupported Content-Encoding {encoding!r}; use gzip")
    return raw


def expands(raw: bytes, headers: Headers, query: QueryParams) -> bool:
    """Whether decoding may make the body much larger than it is: gzip or LZ64, however
    flagged (a form may flag it inside)."""
    return (
        headers.get("content-encoding", "identity").strip().lower() != "identity"
        or "compression" in query
        or raw.startswith(GZIP_MAGIC)
        or media_type(headers.get("content-type")) == FORM
    )


Decoder = Callable[[bytes, Headers, QueryParams, int], bytes]


# ---------------------------------------------------------------------------------------------
# Splitting and parsing


def _error(kind: str, loc: tuple[str | int, ...], message: str) -> dict[str, Any]:
    """A validation error as pydantic reports them, for errors.py to word."""
    return {"type": kind, "loc": loc, "msg": message, "input": None}


class InvalidJson(ValueError):
    """JSON that cannot be parsed, or holds a value Python cannot represent faithfully."""

    def error(self, loc: tuple[str | int, ...]) -> dict[str, Any]:
        return _error("json_value", loc, f"not valid JSON: {self}")


def parse_json(data: bytes | msgspec.Raw) -> Any:
    """Parsed JSON. msgspec keeps integers of any size exact (orjson would turn those beyond 64
    bits into floats); where one cannot be stored, validation rejects it naming the field."""
    try:
        return msgspec.json.decode(data)
    except msgspec.ValidationError:  # the only one decoding to Any raises
        raise InvalidJson("a number is beyond the range of a double") from None
    except msgspec.DecodeError as error:
        raise InvalidJson(BYTE_POSITION.sub("", str(error))) from None
    except UnicodeDecodeError:
        raise InvalidJson("a string is not valid UTF-8") from None
    except RecursionError:
        raise InvalidJson("nested too deeply") from None


def located(errors: list[dict[str, Any]], loc: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """pydantic's errors of a value, located where the value is in the body. Of the invalid
    input an error keeps only text (errors.py quotes some), so that a request's errors do not
    hold on to all of its parsed events."""
    return [
        {
            **error,
            "loc": (*loc, *error["loc"]),
            "input": error["input"][:200] if isinstance(error["input"], str) else None,
        }
        for error in errors
    ]


def _structure(data: bytes | msgspec.Raw, into: type[T]) -> T:
    """``data`` decoded as ``into``, whose ``Raw`` parts msgspec only checks and skips."""
    try:
        return msgspec.json.decode(data, type=into)
    except msgspec.ValidationError:  # a DecodeError too, but about the type: the caller's
        raise
    except msgspec.DecodeError as error:
        message = str(error)
        position = BYTE_POSITION.search(message)  # none in "Input data was truncated"
        # The shape FastAPI gives a body it cannot decode; errors.py words it.
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", int(position[1]) if position else len(data)),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": BYTE_POSITION.sub("", message)},
                }
            ]
        ) from None
    except RecursionError:
        raise RequestValidationError([InvalidJson("nested too deeply").error(("body",))]) from None


class _BatchMember(msgspec.Struct):
    """An object's ``batch`` member, if any: msgspec skips the others unparsed."""

    batch: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


# An array decoded into an array-like struct of MAX_BATCH_ITEMS optional fields fails at its
# first item too many; decoded into a list, it would first hold every item, millions of them.
_EVENT_SLOT = msgspec.Raw | msgspec.UnsetType
_Events = msgspec.defstruct(
    "_Events",
    [(f"event_{n}", _EVENT_SLOT, msgspec.UNSET) for n in range(MAX_BATCH_ITEMS)],
    array_like=True,
    forbid_unknown_fields=True,
)


def _first_byte(data: bytes | msgspec.Raw) -> bytes:
    view = memoryview(data)
    start = LEADING_WHITESPACE.match(view).end()
    return bytes(view[start : start + 1])


def _events(array: bytes | msgspec.Raw, loc: tuple[str, ...], limit: int) -> tuple[Any, ...]:
    if _first_byte(array) != b"[":
        raise RequestValidationError([_error("list_type", loc, "Input should be a valid list")])
    try:
        slots = _structure(array, _Events)
    except msgspec.ValidationError:
        raise HTTPException(
            413,
            f"more than {MAX_BATCH_ITEMS} events in one request: send at most {MAX_BATCH_ITEMS} "
            "per request",
        ) from None
    events = tuple(event for event in msgspec.structs.astuple(slots) if event is not msgspec.UNSET)
    for index, event in enumerate(events):
        _check_event_size(len(event), f"event {index}", limit)
    return events


def _check_event_size(size: int, what: str, limit: int) -> None:
    if size > limit:
        raise HTTPException(
            413,
            f"{what} is {size} bytes of JSON; an event may be at most {limit} bytes "
            "(LOOM_MAX_PROPERTIES_BYTES and 64 KiB)",
        )


@dataclass(frozen=True, slots=True)
class Payload:
    """A JSON body split into its events, which are not parsed yet."""

    body: bytes
    shape: Shape
    events: tuple[msgspec.Raw, ...]
    members: Mapping[str, Any]  # a batch object's other members (api_key, sent_at, ...), parsed

    def location(self, index: int) -> tuple[str | int, ...]:
        """Where event ``index`` is in the body, as FastAPI locates validation errors."""
        return {"event": ("body",), "array": ("body", index), "batch": ("body", "batch", index)}[
            self.shape
        ]

    def outline(self, stand_in: Any) -> Any:
        """The body parsed but for its events, each replaced by ``stand_in``: all that can be
        checked without them. A body that is one event is parsed whole: it is no larger than an
        event may be."""
        if self.shape == "event":
            try:
                return parse_json(self.body)
            except InvalidJson as error:
                raise RequestValidationError([error.error(("body",))]) from None
        stand_ins = [stand_in] * len(self.events)
        return stand_ins if self.shape == "array" else {**self.members, "batch": stand_ins}


def split(body: bytes, max_event: int) -> Payload:
    """``body`` split into one event, an array of events or a ``{"batch": [...]}`` object, with
    the count and size limits checked; nothing but a batch object's small members is parsed."""
    first = _first_byte(body)
    if first == b"[":
        return Payload(body, "array", _events(body, ("body",), max_event), {})
    if not first:
        raise RequestValidationError([_error("missing", ("body",), "Field required")])
    if first != b"{":
        _structure(body, msgspec.Raw)  # invalid JSON is a decoding error, not a shape error
        shapes = 'expected an event, {"batch": [events]} or an array of events'
        raise RequestValidationError([_error("body_shape", ("body",), shapes)])
    batch = _structure(body, _BatchMember).batch
    if batch is msgspec.UNSET:
        _check_event_size(len(body), "the event", max_event)
        return Payload(body, "event", (msgspec.Raw(body),), {})
    if len(body) - len(batch) > MAX_BATCH_MEMBERS_BYTES:
        raise HTTPException(
            413,
            f"a batch object may hold at most {MAX_BATCH_MEMBERS_BYTES} bytes besides its batch",
        )
    members, errors = {}, []
    for name, value in _structure(body, dict[str, msgspec.Raw]).items():
        if name != "batch":
            try:
                members[name] = parse_json(value)
            except InvalidJson as error:
                errors.append(error.error(("body", name)))
    if errors:
        raise RequestValidationError(errors)
    return Payload(body, "batch", _events(batch, ("body", "batch"), max_event), members)


# ---------------------------------------------------------------------------------------------
# Bodies validated event by event


@dataclass(frozen=True)
class EventsIn:
    """The annotation of a body that holds events: what the body is, what one event is, and the
    shapes in which the body holds them (``"event"``: the body is one). FastAPI documents the
    body as ``body``; the handler gets :class:`Events`, e.g.
    ``Annotated[Events[CaptureEvent], Body(), EventsIn(BatchRequest, CaptureEvent, {"batch"})]``.
    """

    body: Any
    event: type[BaseModel]
    shapes: frozenset[Shape]

    @cached_property
    def body_adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.body)

    @cached_property
    def event_adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.event)

    @cached_property
    def stand_in(self) -> BaseModel:
        """An event that validates as it is, so that the body's check reports only its own
        errors."""
        return self.event.model_construct()

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.json_or_python_schema(
            json_schema=handler.generate_schema(self.body),  # what the OpenAPI shows
            python_schema=core_schema.is_instance_schema(Events),  # what FastAPI gets
        )


def events_in(field: ModelField) -> EventsIn | None:
    return next((meta for meta in field.field_info.metadata if isinstance(meta, EventsIn)), None)


def _validated(
    adapter: TypeAdapter[Any], value: Any, loc: tuple[str | int, ...]
) -> tuple[Any, list[dict[str, Any]]]:
    """``value`` validated, or its errors located at ``loc``. With ``from_attributes``, as
    FastAPI validates: a non-object event is then a ``model_attributes_type`` error."""
    try:
        return adapter.validate_python(value, from_attributes=True), []
    except ValidationError as error:
        return None, located(error.errors(include_url=False), loc)


class Events(Generic[E]):
    """The events of a request's body, validated one at a time as the handler takes them
    (:meth:`each`)."""

    def __init__(self, request: IngestRequest, payload: Payload, spec: EventsIn, outline: Any):
        self._request, self._payload, self._spec, self._outline = request, payload, spec, outline

    async def each(self, take: Callable[[E], object]) -> None:
        """Validate the body, then each event in turn, handing it to ``take`` while everything
        so far is valid. If anything is invalid, raise the errors of the body and of every
        event, after ``take`` may have had some events: what it made of them must be dropped."""
        await self._request.off_loop(len(self._payload.body), self._each, take)

    def _each(self, take: Callable[[E], object]) -> None:
        payload, spec = self._payload, self._spec
        if payload.shape == "event" and "event" in spec.shapes:  # the outline is the event
            event, errors = _validated(spec.event_adapter, self._outline, ("body",))
            if errors:
                raise RequestValidationError(errors)
            take(event)
            return
        _, errors = _validated(spec.body_adapter, self._outline, ("body",))
        if payload.shape in spec.shapes:
            for index, raw in enumerate(payload.events):
                location = payload.location(index)
                try:
                    event, event_errors = _validated(spec.event_adapter, parse_json(raw), location)
                except InvalidJson as error:
                    event, event_errors = None, [error.error(location)]
                errors.extend(event_errors)
                if not errors:  # else nothing will land: only find what else is invalid
                    take(event)
        if errors:
            raise RequestValidationError(errors)


# ---------------------------------------------------------------------------------------------
# The request and the route


class IngestRequest(Request):
    """An ingest request: its body decoded (``body()``) and split (``payload()``)."""

    def __init__(self, scope: Scope, receive: Receive, decoder: Decoder = decode) -> None:
        super().__init__(scope, receive)
        self.decoder = decoder

    @property
    def media_type(self) -> str:
        return media_type(self.headers.get("content-type"))

    async def off_loop(self, size: int, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)``, for a body of ``size`` bytes: right here when it is small, else
        in a worker thread."""
        if size <= INLINE_BYTES:
            return function(*args)
        state = self.app.state
        if not hasattr(state, "parsing"):  # created here: a limiter belongs to an event loop
            state.parsing = CapacityLimiter(PARSING_CONCURRENCY)
        return await anyio.to_thread.run_sync(function, *args, limiter=state.parsing)

    async def _read(self, limit: int) -> bytes:
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        chunks, size = [], 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def body(self) -> bytes:
        """The JSON text of the body, decoded by the route's decoder."""
        if not hasattr(self, "_body"):
            limit: int = self.app.state.settings.max_request_bytes
            raw = await self._read(limit)
            size = limit if expands(raw, self.headers, self.query_params) else len(raw)
            self._body = await self.off_loop(
                size, self.decoder, raw, self.headers, self.query_params, limit
            )
        return self._body

    async def payload(self) -> Payload:
        if not hasattr(self, "_payload"):
            body = await self.body()
            max_event = max_event_bytes(self.app.state.settings.max_properties_bytes)
            self._payload = await self.off_loop(len(body), split, body, max_event)
        return self._payload

    async def _outline(self, stand_in: Any) -> Any:
        """The body's outline (:meth:`Payload.outline`), once its key is checked: the order
        FastAPI's dependencies give (undecodable: 400, then a bad key: 401, then invalid fields:
        400)."""
        payload = await self.payload()
        outline = await self.off_loop(len(payload.body), payload.outline, stand_in)
        self.state.key_in_body = key_in(outline)
        await authenticate(self)
        return outline

    async def validate(self, field: ModelField, events: EventsIn | None) -> None:
        """Validate the body as ``field``, off the event loop when it is big; or, for a body of
        ``events``, leave its events for the handler to validate one by one (:class:`Events`)."""
        payload = await self.payload()
        if events is not None:
            outline = await self._outline(events.stand_in)
            self._json = Events(self, payload, events, outline)
            return
        # Not a body of events: any events in it are where the body's type has none, so they
        # cannot make it valid, and stand-ins spare parsing them.
        outline = await self._outline(None)
        validated, errors = await self.off_loop(
            len(payload.body), partial(field.validate, loc=("body",)), outline, {}
        )
        if errors:
            raise RequestValidationError(errors, body=outline)
        self._json = validated

    async def json(self) -> Any:
        """FastAPI's handler reads the body here, validated by ``validate`` when it is JSON."""
        if not hasattr(self, "_json"):  # FastAPI and media_type() disagree on what is JSON
            raise HTTPException(415, "the body must be JSON: send Content-Type: application/json")
        return self._json


class IngestRoute(APIRoute):
    decoder: ClassVar[Decoder] = staticmethod(decode)
    events: EventsIn | None  # what its body is when its events are taken one at a time

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()  # called by __init__, once body_field is known
        self.events = None if self.body_field is None else events_in(self.body_field)

        async def ingest_handler(request: Request) -> Response:
            ingest_request = IngestRequest(request.scope, request.receive, self.decoder)
            await self.read_body(ingest_request)
            return await handler(ingest_request)

        return ingest_handler

    async def read_body(self, request: IngestRequest) -> None:
        """Validate a JSON body before FastAPI's handler, which then finds it validated. Other
        bodies are left to FastAPI: one that is not JSON gets 415 (errors.py), none 400."""
        if self.body_field is not None and is_json(request.media_type) and await request.body():
            await request.validate(self.body_field, self.events)
