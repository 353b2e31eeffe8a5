"""Adds the read API to the app: its routers, the published marts, the live stream and the
dashboard page over them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ingest_api.read.health_watch import HealthWatcher
from ingest_api.routers import (
    dashboard,
    events,
    experiments,
    export,
    funnels,
    persons,
    releases,
    sessions_read,
    stream,
)
from ingest_api.stream_hub import hub
from warehouse.layout import Layout
from warehouse.published import CatalogUnavailable, NoSnapshotError, PublishedMarts

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def _following_marts(lifespan: Lifespan) -> Lifespan:
    """The app's lifespan, with the marts following new publishes while the app runs."""

    @asynccontextmanager
    async def wrapped(app: FastAPI) -> AsyncIterator[Any]:
        app.state.marts.start()
        async with lifespan(app) as state:
            try:
                yield state
            finally:
                app.state.marts.close()

    return wrapped


async def on_no_snapshot(request: Request, exc: NoSnapshotError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "60"})


async def on_catalog_unavailable(request: Request, exc: CatalogUnavailable) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{exc}; the warehouse cannot be read right now, retry"},
        status_code=503,
        headers={"Retry-After": "10"},
    )


def install_read_api(app: FastAPI, layout: Layout) -> None:
    # Opened on the first read, then switched to each newer published snapshot.
    app.state.marts = PublishedMarts(layout)
    app.router.lifespan_context = _following_marts(app.router.lifespan_context)
    app.state.health_watcher = HealthWatcher(app.state.marts, hub)
    app.add_exception_handler(NoSnapshotError, on_no_snapshot)
    app.add_exception_handler(CatalogUnavailable, on_catalog_unavailable)
    # The stream route comes before sessions_read, whose /sessions/{session_id} would match it.
    routers = (persons, events, export, experiments, funnels, releases, stream, sessions_read)
    for module in (*routers, dashboard):
        app.include_router(module.router)
    app.mount(dashboard.ASSETS_PATH, dashboard.assets, name="dashboard-assets")
