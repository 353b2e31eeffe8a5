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
from ingest_api.read.snapshots import SNAPSHOT_HEADERS

# The stream route comes before sessions, whose /sessions/{session_id} would match it.
ROUTES = (persons, events, export, experiments, funnels, releases, stream, sessions, dashboard)

api_router = APIRouter()
for module in ROUTES:
    # Every answer says which snapshot it was read from (a route's own 200 entry, like the
    # stream's, replaces this one).
    api_router.include_router(module.router, responses={200: {"headers": SNAPSHOT_HEADERS}})
