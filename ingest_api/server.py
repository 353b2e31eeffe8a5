"""Running the API under uvicorn, with access logs that never contain a client address."""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
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


# glibc's mallopt parameter, and its default value.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def return_big_buffers_to_the_os() -> None:
    """Keep glibc allocating buffers of 128 KiB and more (request bodies, landing files) with
    mmap, so each goes back to the OS when freed. By default glibc raises that threshold to the
    largest buffer freed so far (20 MB bodies), keeps later ones in its heap, and the server's
    memory grew by some 80 MB with every round of the largest requests; fixed, it stays level."""
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt is not None:  # glibc; other C libraries keep their own ways
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def serve(settings: Settings | None = None, **overrides: Any) -> None:
    return_big_buffers_to_the_os()
    uvicorn.Server(uvicorn_config(settings, **overrides)).run()
