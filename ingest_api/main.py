"""The ingest API application: ``create_app()`` composes routers, error handlers and the
long-lived resources (key registry, landing writer) that live for the app's lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware

from ingest_api.errors import (
    on_landing_unavailable,
    on_registry_unavailable,
    on_validation_error,
)
from ingest_api.landing import LandingUnavailable, LandingWriter
from ingest_api.query_parameters import known_query_parameters_only
from ingest_api.read.install import install_read_api
from ingest_api.routers import analytics, health, keys, posthog, sentry, sessions, track
from warehouse.layout import Layout
from warehouse.registry import Registry, RegistryUnavailable
from warehouse.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    layout = Layout.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.registry = Registry.open(layout)
        app.state.writer = LandingWriter(
            layout, flush_interval=settings.async_flush_interval_seconds
        )
        await app.state.writer.start()
        # Everything loaded so far (FastAPI, pydantic, the app) lives as long as the process:
        # move it out of the collector's way, so full collections scan only request garbage
        # instead of stalling a request for tens of milliseconds.
        gc.freeze()
        try:
            yield
        finally:
            await app.state.writer.close()  # shutdown flushes everything queued
            app.state.registry.close()
            # Frozen objects are never collected: give DuckDB's Python objects back to the
            # collector so they are freed before the interpreter exits (else nanobind reports
            # them as leaked on every shutdown).
            gc.unfreeze()
            gc.collect()

    app = FastAPI(
        title="Loom ingest API",
        version="1.0",
        summary="Validates, authenticates and durably lands events, identities and sessions.",
        lifespan=lifespan,
        dependencies=[Depends(known_query_parameters_only)],
    )
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(LandingUnavailable, on_landing_unavailable)
    app.add_exception_handler(RegistryUnavailable, on_registry_unavailable)
    # Browsers call the API from any site (posthog-js on a customer's pages). Keys travel in
    # headers or bodies, never in cookies, so an origin gains nothing a key would not give it.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Sentry-Auth"],
    )
    for module in (analytics, track, posthog, sentry, sessions, keys, health):
        app.include_router(module.router)
    install_read_api(app, layout)  # read routes over the published marts (issue 6)
    return app
