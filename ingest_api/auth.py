"""API-key authentication. A key is read from ``Authorization: Bearer``, ``X-API-Key``, or the
body: its ``api_key`` / ``token`` field, where PostHog clients put it (the PostHog routes also
read it from the events, see :mod:`ingest_api.ingest.routes.posthog`). Reading the body's key is the
body parser's job: it leaves the key in ``request.state.key_in_body``.

Missing, unknown and revoked keys are 401; a write key on a read route is 403. Both key kinds may
write; only ``rw`` keys may read.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from warehouse.registry import ApiKey, Registry

KEY_SOURCES = "Authorization: Bearer <key>, X-API-Key: <key>, or an api_key field in the body"


def key_from_headers(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("x-api-key", "").strip() or None


def key_in(body: Any) -> str | None:
    """The ``api_key`` (or ``token``) field of a parsed JSON object."""
    if not isinstance(body, dict):
        return None
    key = body.get("api_key") or body.get("token")
    return key if isinstance(key, str) and key else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def check_key(registry: Registry, key: str | None) -> ApiKey:
    if not key:
        raise _unauthorized(f"missing API key: send {KEY_SOURCES}")
    record = registry.lookup(key)
    if record is None:
        raise _unauthorized("unknown API key")
    if record.revoked:
        raise _unauthorized(f"API key {record.key_id} was revoked at {record.revoked_at}")
    return record


async def authenticate(request: Request) -> ApiKey:
    """Any valid key: what every ingest route needs. Looked up once per request, however many
    times it is asked for."""
    record = getattr(request.state, "api_key", None)
    if record is None:
        key = key_from_headers(request) or getattr(request.state, "key_in_body", None)
        record = request.state.api_key = check_key(request.app.state.registry, key)
    return record


async def authenticate_reader(request: Request) -> ApiKey:
    """A valid ``rw`` key: what every read route needs."""
    record = await authenticate(request)
    if not record.can_read:
        raise HTTPException(
            403, f"key {record.key_id} is a write key; reading needs a loom_analytics_rw_ key"
        )
    return record
