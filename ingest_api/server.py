"""Running the API under uvicorn, with access logs that never contain a client address."""

from __future__ import annotations

import copy
import logging
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from warehouse.settings import Settings, get_settings


class ScrubClientAddress(logging.Filter):
    """uvicorn's access records carry the client address as their first argument; replace it
    before any handler or formatter sees it. Client IPs are stored with events, never logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = ("-", *record.args[1:])
        return True


def log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"scrub_client_address": {"()": ScrubClientAddress}}
    config["loggers"]["uvicorn.access"]["filters"] = ["scrub_client_address"]
    config["formatters"]["access"]["fmt"] = '%(levelprefix)s "%(request_line)s" %(status_code)s'
    return config


def uvicorn_config(
    settings: Settings | None = None, app: Any = "ingest_api.main:create_app", **overrides: Any
) -> uvicorn.Config:
    """``app`` is the factory's import path (what ``loom serve`` runs) or an app instance."""
    settings = settings or get_settings()
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": log_config(),
        "factory": isinstance(app, str),
        **overrides,
    }
    return uvicorn.Config(app, **options)


def serve(settings: Settings | None = None, **overrides: Any) -> None:
    uvicorn.Server(uvicorn_config(settings, **overrides)).run()
