"""Sentry's envelope endpoint: an app instrumented with any Sentry SDK reports release health to
Loom once its DSN is ``http://<loom write key>@<host>/<project id>``.

``POST /api/{project_id}/envelope/`` takes envelopes as the SDKs send them (gzip, brotli or plain;
any ``Content-Type``, as Sentry does). The key is the DSN's public key, which SDKs send as
``X-Sentry-Auth: Sentry sentry_key=<key>, …`` or, from browsers, as the ``sentry_key`` query
parameter (Loom's own ``Authorization: Bearer`` and ``X-API-Key`` work too); it must belong to the
project in the URL.

* A ``session`` item (one session's whole state) lands as the session records
  ``/api/sessions/start|end`` write (:meth:`Records.sentry_session_start`, ``…_end``).
* A ``sessions`` item (counts per started minute) lands one ``session_aggregates`` record per
  bucket holding sessions.
* Every other item (events, transactions, attachments, client reports…) is accepted and ignored.

The envelope is validated whole before anything lands: one invalid session item rejects it, and
every invalid item is listed with its position among the envelope's items as ``index``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from ingest_api.auth import check_key, key_from_headers
from ingest_api.ingest import deps, ingest_router
from ingest_api.ingest.deps import DurableByDefault, Writer
from ingest_api.ingest.envelopes import (
    Envelope,
    Item,
    decode_envelope,
    invalid,
    split_envelope,
)
from ingest_api.ingest.event_time import EnvelopeClock
from ingest_api.ingest.records import Receipt, Records
from ingest_api.ingest.routes.common import accepted, land
from ingest_api.ingest.routing import (
    IngestRequest,
    IngestRoute,
    InvalidJson,
    located,
    max_event_bytes,
    parse_json,
)
from ingest_api.ingest.schemas.common import Ack
from ingest_api.ingest.schemas.fields import MAX_BATCH_ITEMS, Platform
from ingest_api.ingest.schemas.sentry import SentrySessionAggregates, SentrySessionUpdate
from warehouse.registry import ApiKey
from warehouse.streams import BIGINT_MAX

UPDATE = TypeAdapter(SentrySessionUpdate)
AGGREGATES = TypeAdapter(SentrySessionAggregates)
MISSING_KEY = (
    "missing API key: use a DSN holding a Loom write key, http://<key>@<host>/<project id> (SDKs "
    "send it as X-Sentry-Auth: Sentry sentry_key=<key>), or pass ?sentry_key=<key>"
)
# The SDK a client name (sentry_client, e.g. sentry.python/2.75.0) stands for, by prefix.
PLATFORMS: tuple[tuple[str, Platform], ...] = (
    ("sentry.python", "python"),
    ("sentry.rust", "rust"),
    ("sentry.javascript.node", "node"),
    ("sentry.javascript.", "javascript"),
)


class SentryRoute(IngestRoute):
    decoder = staticmethod(decode_envelope)


def auth_parameters(request: Request) -> dict[str, str]:
    """The ``X-Sentry-Auth: Sentry name=value, …`` header's parameters."""
    scheme, _, parameters = request.headers.get("x-sentry-auth", "").strip().partition(" ")
    if scheme.lower() != "sentry":
        return {}
    pairs = (part.partition("=") for part in parameters.split(","))
    return {name.strip(): value.strip() for name, _, value in pairs}


def platform_of(request: Request) -> Platform | None:
    client = (
        auth_parameters(request).get("sentry_client")
        or request.query_params.get("sentry_client")
        or request.headers.get("user-agent", "")
    )
    name = client.partition("/")[0].strip().lower()
    return next((platform for prefix, platform in PLATFORMS if name.startswith(prefix)), None)


ProjectId = Annotated[
    int, Path(ge=1, le=BIGINT_MAX, description="The DSN's project id: the Loom project's id.")
]


async def project_key(request: Request, project_id: ProjectId) -> ApiKey:
    """The request's key, which must belong to the project in the URL. Checked before the body
    is read, so a request without a valid key costs nothing more."""
    key = (
        auth_parameters(request).get("sentry_key")
        or request.query_params.get("sentry_key")
        or key_from_headers(request)
    )
    if not key:
        raise HTTPException(401, MISSING_KEY, headers={"WWW-Authenticate": "Sentry"})
    record = check_key(request.app.state.registry, key)
    if record.project_id != project_id:
        raise HTTPException(
            403,
            f"key {record.key_id} belongs to project {record.project_id}, not {project_id}: "
            f"put {record.project_id} at the end of the DSN",
        )
    request.state.api_key = record  # what deps.receipt authenticates with
    return record


def _validated(
    items: tuple[Item, ...],
) -> tuple[list[SentrySessionUpdate], list[SentrySessionAggregates]]:
    """The envelope's session items, each parsed and validated; 400 listing every invalid one,
    413 when they hold more than ``MAX_BATCH_ITEMS`` sessions and aggregate buckets."""
    updates, aggregates, errors = [], [], []
    budget = MAX_BATCH_ITEMS
    for item in items:
        try:
            data = parse_json(item.payload)
        except InvalidJson as error:
            errors.append(error.error(("body", item.index, "payload")))
            continue
        if not isinstance(data, dict):
            not_an_object = invalid((item.index, "payload"), "a session item is a JSON object")
            errors.extend(not_an_object.errors())
            continue
        buckets = data.get("aggregates") if item.type == "sessions" else None
        budget -= len(buckets) if isinstance(buckets, list) else 1
        if budget < 0:
            raise HTTPException(
                413,
                f"more than {MAX_BATCH_ITEMS} sessions and aggregate buckets in one envelope: "
                "send fewer per request",
            )
        try:
            if item.type == "session":
                updates.append(UPDATE.validate_python(data))
            else:
                aggregates.append(AGGREGATES.validate_python(data))
        except ValidationError as error:
            errors.extend(located(error.errors(include_url=False), ("body", item.index)))
    if errors:
        raise RequestValidationError(errors)
    return updates, aggregates


def _sessions(
    updates: list[SentrySessionUpdate],
) -> Iterator[tuple[SentrySessionUpdate, SentrySessionUpdate, str | None]]:
    """Per session of the envelope: its first update (the start), the update whose end lands
    (the first with a final status, else the last) and its distinct id (the first sent), so that
    an envelope lands one start and one end per session."""
    by_session: dict[str, list[SentrySessionUpdate]] = {}
    for update in updates:
        by_session.setdefault(update.sid, []).append(update)
    for group in by_session.values():
        end = next((update for update in group if update.status != "ok"), group[-1])
        distinct_id = next((update.did for update in group if update.did), None)
        yield group[0], end, distinct_id


def sentry_records(envelope: Envelope, receipt: Receipt, platform: Platform | None) -> Records:
    """The envelope's records, their times corrected for the SDK's clock as Relay does."""
    updates, aggregates = _validated(envelope.items)
    clock = EnvelopeClock.of(envelope.sent_at, receipt.received_at)
    records = Records(receipt, "sentry")
    for first, end, distinct_id in _sessions(updates):
        records.sentry_session_start(first, distinct_id, platform, clock)
        records.sentry_session_end(end, clock)
    for item in aggregates:
        for bucket in item.aggregates:
            if bucket.sessions:
                records.session_aggregate(item.attrs, bucket, platform, clock)
    return records


def _request_body() -> dict[str, Any]:
    """FastAPI documents only bodies it reads itself; this one is read here. Any media type is
    taken: SDKs label envelopes application/x-sentry-envelope, browsers text/plain."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    media_types = ("application/x-sentry-envelope", "application/octet-stream")
    return {
        "requestBody": {
            "required": True,
            "description": "A Sentry envelope, as Sentry SDKs send it (gzip, br or plain).",
            "content": dict.fromkeys(media_types, binary),
        }
    }


router = ingest_router(route_class=SentryRoute, tags=["compatibility"])


async def envelope(
    request: IngestRequest, response: Response, writer: Writer, sync: DurableByDefault = True
) -> Ack:
    """Sentry SDKs' envelopes: session updates and session aggregates land; other items are
    accepted and ignored."""
    receipt = await deps.receipt(request)  # reads and decodes the body
    body = await request.body()
    max_payload = max_event_bytes(request.app.state.settings.max_properties_bytes)
    split = await request.off_loop(len(body), split_envelope, body, max_payload)
    records = await request.off_loop(
        len(body), sentry_records, split, receipt, platform_of(request)
    )
    if not records.count:  # only items Loom does not store: nothing to wait for
        return Ack(accepted=0, durable=True)
    durable = await land(writer, records, sync, response)
    return Ack(accepted=records.count, durable=durable)


PATH = "/api/{project_id}/envelope/"
router.add_api_route(
    PATH,
    envelope,
    methods=["POST"],
    name="sentry envelope",
    dependencies=[Depends(project_key)],
    responses=accepted(Ack),
    openapi_extra=_request_body(),
)
# Without the slash too: a POST redirected by FastAPI would not be followed by every client.
router.add_api_route(
    PATH.rstrip("/"),
    envelope,
    methods=["POST"],
    dependencies=[Depends(project_key)],
    include_in_schema=False,
)
