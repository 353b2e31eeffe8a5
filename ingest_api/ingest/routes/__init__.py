"""Every ingest route, one module per resource, gathered into one router."""

from __future__ import annotations

from fastapi import APIRouter

from ingest_api.ingest.routes import analytics, health, keys, posthog, sentry, sessions, track

api_router = APIRouter()
for module in (analytics, track, posthog, sentry, sessions, keys, health):
    api_router.include_router(module.router)
