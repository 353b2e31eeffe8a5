"""Error responses: every rejected request gets a 4xx whose body names the field, the batch item
index and the reason, e.g. ``{"detail": "...", "errors": [{"index": 3, "field": "event",
"reason": "...", "type": "event_name"}]}``. A batch is validated whole before anything lands, so
one bad item rejects the request and every bad item is listed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from ingest_api.api_types import QUERY_TIME_HELP, ErrorBody, FieldError
from ingest_api.event_names import NAME_RULE, NATIVE_EVENT_PATTERN
from ingest_api.ingest.landing import LandingUnavailable
from ingest_api.ingest.routing import is_json, media_type
from ingest_api.ingest.schemas.fields import (
    PROPERTIES_TOO_LARGE,
    TIMESTAMP_HELP,
    UUID_PATTERN,
    control_character_problem,
)
from ingest_api.ingest.schemas.track import UNION_TAGS
from warehouse.published import (
    CatalogUnavailable,
    LakeFileDamaged,
    NoSnapshotError,
    TimeNotKept,
)
from warehouse.registry import RegistryUnavailable
from warehouse.streams import TEXT_PATTERN

LAKE_FILE_DAMAGED = (
    "a file of the warehouse that this read needs is missing or damaged, so it cannot be answered"
    " until the operator repairs it (the server's log names the file; `loom doctor` checks them"
    " all)"
)
logger = logging.getLogger(__name__)


def field_error(error: dict[str, Any]) -> FieldError:
    if error["type"] == "json_invalid":
        position = error["loc"][-1]
        reason = f"body is not valid JSON: {error.get('ctx', {}).get('error')} (at byte {position})"
        return FieldError(index=None, field="body", reason=reason, type="json_invalid")
    loc = [part for part in error["loc"] if part not in UNION_TAGS]
    if loc[:1] == ["body"]:
        loc = loc[1:]
    index = next((part for part in loc if isinstance(part, int)), None)
    if index is None:
        field = ".".join(map(str, loc))
    else:
        before, after = loc[: loc.index(index)], loc[loc.index(index) + 1 :]
        field = ".".join(map(str, after)) or f"{'.'.join(map(str, before))}[{index}]"
    kind, reason = error["type"], error["msg"]
    if kind == "missing" and not field:
        reason = "a JSON body is required"
    elif kind.startswith("datetime"):  # every datetime field of this API is a timestamp
        help_ = QUERY_TIME_HELP if loc[:1] == ["query"] else TIMESTAMP_HELP
        kind, reason = "timestamp", f"not a timestamp: {help_} ({reason})"
    elif kind == "string_pattern_mismatch" and error["ctx"]["pattern"] == NATIVE_EVENT_PATTERN:
        kind, reason = "event_name", f"invalid event name {str(error['input'])[:60]!r}: {NAME_RULE}"
    elif kind == "string_pattern_mismatch" and error["ctx"]["pattern"] == TEXT_PATTERN:
        kind, reason = "control_character", control_character_problem(error["input"])
    elif kind == "string_pattern_mismatch" and error["ctx"]["pattern"] == UUID_PATTERN:
        kind, reason = "uuid", "not a UUID: send 32 hex digits as 8-4-4-4-12, e.g. a uuid4"
    return FieldError(index=index, field=field or "body", reason=reason, type=kind)


def error_response(
    status: int, detail: str, errors: Sequence[FieldError] = (), headers: dict | None = None
) -> JSONResponse:
    body = ErrorBody(detail=detail, errors=list(errors))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _is_json(request: Request) -> bool:
    return is_json(media_type(request.headers.get("content-type")))


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    body_errors = [error for error in exc.errors() if error["loc"][:1] == ("body",)]
    if body_errors and isinstance(exc.body, bytes) and not _is_json(request):
        return error_response(415, "the body must be JSON: send Content-Type: application/json")
    errors = [field_error(error) for error in exc.errors()]
    status = 413 if any(error.type == PROPERTIES_TOO_LARGE for error in errors) else 400
    items = {error.index for error in errors if error.index is not None}
    detail = f"{len(errors)} invalid field(s)"
    if items:
        detail += f" in {len(items)} item(s)"
    if request.method not in ("GET", "HEAD"):  # a read stores nothing either way
        detail += "; nothing was stored"
    return error_response(status, detail, errors)


async def on_client_disconnect(request: Request, exc: ClientDisconnect) -> JSONResponse:
    """The client left before sending its whole body (or took too long, ingest_api/timeouts.py):
    nothing was stored, and no one hears this answer."""
    return error_response(400, "the client disconnected before sending its whole body")


async def on_landing_unavailable(request: Request, exc: LandingUnavailable) -> JSONResponse:
    return error_response(
        503, f"{exc}; nothing was acknowledged, retry", headers={"Retry-After": "1"}
    )


async def on_registry_unavailable(request: Request, exc: RegistryUnavailable) -> JSONResponse:
    # No key can be checked: nothing is stored and nothing is read.
    return error_response(503, f"{exc}; retry", headers={"Retry-After": "10"})


async def on_no_snapshot(request: Request, exc: NoSnapshotError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "60"})


def unreadable_detail(exc: CatalogUnavailable | LakeFileDamaged) -> str:
    """What a client is told when the lake cannot answer: never a path or a server's name."""
    if isinstance(exc, LakeFileDamaged):
        return LAKE_FILE_DAMAGED
    return f"{exc}; the warehouse cannot be read right now, retry"


async def on_time_not_kept(request: Request, exc: TimeNotKept) -> JSONResponse:
    # Gone rather than 400: the same as_of was answered while its snapshot was kept.
    reason = f"{exc}; ask for a time at or after it"
    error = FieldError(index=None, field="as_of", reason=reason, type="time_not_kept")
    return error_response(410, f"as_of: {reason}", [error])


async def on_catalog_unavailable(request: Request, exc: CatalogUnavailable) -> JSONResponse:
    # The cause names servers and paths: the log gets it, the client a sentence.
    logger.warning("%s %s: %s (%s)", request.method, request.url.path, exc, exc.__cause__)
    return JSONResponse(
        {"detail": unreadable_detail(exc)}, status_code=503, headers={"Retry-After": "10"}
    )


async def on_lake_file_damaged(request: Request, exc: LakeFileDamaged) -> JSONResponse:
    # No Retry-After: the same read fails until an operator repairs the file, which the server's
    # log names (warehouse.published logs it once).
    return JSONResponse({"detail": unreadable_detail(exc)}, status_code=503)
