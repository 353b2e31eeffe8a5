"""Every read route, one module per resource, gathered into one router."""

from __future__ import annotations

from fastapi import APIRouter

from ingest_api.read.routes import (
    dashboard,
    events,
    experiments,
    export,
    funnels,
    persons,
    releases,
    sessions,
    stream,
)

api_router = APIRouter()
# The stream route comes before sessions, whose /sessions/{session_id} would match it.
for module in (persons, events, export, experiments, funnels, releases, stream, sessions):
    api_router.include_router(module.router)
api_router.include_router(dashboard.router)
