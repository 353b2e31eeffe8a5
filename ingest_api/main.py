"""The Loom API: ``create_app()`` composes the ingest routes (``ingest/``), the read routes
(``read/``) and the alert rules (``alerts/``), their error handlers, and the long-lived resources
that live for the app's lifespan: the key registry (and the alert rules beside it), the landing
writer and the published marts."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect

import ingest_api.alerts.routes
import ingest_api.ingest.routes
import ingest_api.read.routes
from ingest_api.alerts.watch import AlertWatcher
from ingest_api.errors import (
    on_catalog_unavailable,
    on_client_disconnect,
    on_lake_file_damaged,
    on_landing_unavailable,
    on_no_snapshot,
    on_registry_unavailable,
    on_time_not_kept,
    on_validation_error,
)
from ingest_api.ingest.landing import LandingUnavailable, LandingWriter
from ingest_api.metrics import ApiMetrics, MetricsMiddleware
from ingest_api.metrics import router as metrics_router
from ingest_api.query_parameters import (
    known_query_parameters_only,
    no_control_characters,
    stating_text_rules,
)
from ingest_api.read.health_watch import HealthWatcher
from ingest_api.read.key_watch import KeyWatcher
from ingest_api.read.routes import dashboard
from ingest_api.stream_hub import hub
from warehouse.alert_store import AlertStore
from warehouse.layout import Layout
from warehouse.published import (
    CatalogUnavailable,
    LakeFileDamaged,
    NoSnapshotError,
    PublishedMarts,
    TimeNotKept,
)
from warehouse.registry import Registry, RegistryUnavailable
from warehouse.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, freeze_heap: bool = False) -> FastAPI:
    """The app; ``freeze_heap`` for a server process (:func:`create_server_app`)."""
    settings = settings or get_settings()
    layout = Layout.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.registry = Registry.open(layout)
        app.state.key_watcher = KeyWatcher(app.state.registry, hub)
        app.state.alerts = AlertStore(app.state.registry)
        app.state.alert_watcher = AlertWatcher(app.state.alerts, hub)
        app.state.writer = LandingWriter(
            layout,
            flush_interval=settings.async_flush_interval_seconds,
            spill_bytes=settings.async_spill_bytes,
            observer=metrics,
        )
        await app.state.writer.start()
        if metrics is not None:
            metrics.follow(app.state.marts, lambda: app.state.writer.pending_records)
        app.state.marts.start()  # follow new publishes while the app runs
        if freeze_heap:
            gc.freeze()
        try:
            yield
        finally:
            await app.state.writer.close()  # shutdown flushes everything queued
            await app.state.key_watcher.stop()  # it reads the registry
            app.state.registry.close()
            app.state.marts.close()
            if freeze_heap:
                # Frozen objects are never collected: give DuckDB's Python objects back to the
                # collector so they are freed before the interpreter exits (else nanobind reports
                # them as leaked on every shutdown).
                gc.unfreeze()
                gc.collect()

    app = FastAPI(
        title="Loom API",
        version="1.0",
        summary=(
            "Validates, authenticates and durably lands events, identities and sessions; serves "
            "persons, events, release health and sessions from the published marts."
        ),
        lifespan=lifespan,
        dependencies=[Depends(known_query_parameters_only), Depends(no_control_characters)],
    )
    generated_openapi = app.openapi  # FastAPI's, which keeps what it generates
    app.openapi = lambda: stating_text_rules(generated_openapi())  # type: ignore[method-assign]
    app.state.settings = settings
    # Off only to measure what counting costs (bench/bench_ingest.py).
    metrics = (
        ApiMetrics(settings.metrics_max_orgs, layout.pipeline_metrics_path)
        if settings.metrics_enabled
        else None
    )
    app.state.metrics = metrics
    # Opened on the first read, then switched to each newer published snapshot.
    app.state.marts = PublishedMarts(layout)
    app.state.health_watcher = HealthWatcher(app.state.marts, hub)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ClientDisconnect, on_client_disconnect)
    app.add_exception_handler(LandingUnavailable, on_landing_unavailable)
    app.add_exception_handler(RegistryUnavailable, on_registry_unavailable)
    app.add_exception_handler(NoSnapshotError, on_no_snapshot)
    app.add_exception_handler(CatalogUnavailable, on_catalog_unavailable)
    app.add_exception_handler(LakeFileDamaged, on_lake_file_damaged)
    app.add_exception_handler(TimeNotKept, on_time_not_kept)
    # Browsers call the API from any site (posthog-js on a customer's pages). Keys travel in
    # headers or bodies, never in cookies, so an origin gains nothing a key would not give it.
    # Credentials allowed (so the origin is echoed, as PostHog's capture does): posthog-js
    # releases before 1.1xx send every request withCredentials.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=True,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Sentry-Auth"],
    )
    app.include_router(ingest_api.ingest.routes.api_router)
    app.include_router(ingest_api.read.routes.api_router)
    app.include_router(ingest_api.alerts.routes.router)
    if metrics is not None:
        app.include_router(metrics_router)
        # Added last, so outermost: it times everything the app does for a request.
        app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.mount(dashboard.ASSETS_PATH, dashboard.assets, name="dashboard-assets")
    return app


def create_server_app() -> FastAPI:
    """The app a server process runs (``loom serve``). Everything its startup loaded (FastAPI,
    pydantic, the app) lives as long as the process: it is moved out of the collector's way, so
    full collections scan only request garbage instead of stalling a request for tens of
    milliseconds. Not for apps made within another program (tests): the full collection at their
    shutdown walks that program's whole heap."""
    return create_app(freeze_heap=True)
