"""Adds the read API to the app: its routers, the published marts and the live stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ingest_api.read.health_watch import HealthWatcher
from ingest_api.routers import events, export, persons, releases, sessions_read, stream
from ingest_api.stream_hub import hub
from warehouse.layout import Layout
from warehouse.serving import NoSnapshotError, ServedMarts

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def _closing_marts(lifespan: Lifespan) -> Lifespan:
    """The app's lifespan, then closing the snapshot connection at shutdown."""

    @asynccontextmanager
    async def wrapped(app: FastAPI) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            try:
                yield state
            finally:
                app.state.marts.close()

    return wrapped


async def on_no_snapshot(request: Request, exc: NoSnapshotError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "60"})


def install_read_api(app: FastAPI, layout: Layout) -> None:
    # Opened lazily on the first read, and reopened whenever a newer snapshot is published.
    app.state.marts = ServedMarts(layout)
    app.router.lifespan_context = _closing_marts(app.router.lifespan_context)
    app.state.health_watcher = HealthWatcher(app.state.marts, hub)
    app.add_exception_handler(NoSnapshotError, on_no_snapshot)
    # The stream route comes before sessions_read, whose /sessions/{session_id} would match it.
    for module in (persons, events, export, releases, stream, sessions_read):
        app.include_router(module.router)
