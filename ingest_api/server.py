"""Running the API under uvicorn, with logs that never contain a client address or a key."""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import logging
import re
from functools import partial
from typing import Any
from urllib.parse import unquote, unquote_plus

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ingest_api.timeouts import BoundedHttpToolsProtocol, Timeouts
from warehouse.registry import KEY_PREFIX
from warehouse.settings import Settings, get_settings

# Query parameters that carry a key: Sentry's browser SDKs send ?sentry_key=, and clients put
# keys (valid or not) wherever they think one goes.
CREDENTIAL_PARAMETERS = frozenset(
    {"sentry_key", "sentry_secret", "api_key", "apikey", "token", "access_token", "key"}
)
REDACTED = "[redacted]"
KEY_TEXT = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_]*")


def redact_credentials(target: str) -> str:
    """A request target (path and query) with the value of every credential parameter, and every
    path segment or parameter holding a key of ours, replaced by ``[redacted]``."""
    path, question, query = target.partition("?")
    segments = [REDACTED if KEY_PREFIX in unquote(part) else part for part in path.split("/")]
    parameters = []
    for parameter in query.split("&") if question else []:
        name, equals, value = parameter.partition("=")
        if KEY_PREFIX in unquote_plus(name):
            parameter = REDACTED
        elif unquote_plus(name).strip().lower() in CREDENTIAL_PARAMETERS or (
            KEY_PREFIX in unquote_plus(value)
        ):
            parameter = f"{name}{equals}{REDACTED}"
        parameters.append(parameter)
    return "/".join(segments) + question + "&".join(parameters)


class RedactAccessRecord(logging.Filter):
    """uvicorn's access records carry the client address and the request target as arguments;
    replace the address and redact the target before any handler or formatter sees them. Client
    IPs are stored with events and keys only as hashes, never logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            _, method, target, version, status = record.args
            record.args = ("-", method, redact_credentials(str(target)), version, status)
        return True


class RedactKeys(logging.Filter):
    """Any other record of the server: a key of ours in its text is replaced. The last line of
    defence, for messages that quote what a client sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if KEY_PREFIX in message:
            record.msg, record.args = KEY_TEXT.sub(REDACTED, message), ()
        return True


def log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "redact_access_record": {"()": RedactAccessRecord},
        "redact_keys": {"()": RedactKeys},
    }
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_access_record"]
    config["handlers"]["default"]["filters"] = ["redact_keys"]
    config["formatters"]["access"]["fmt"] = '%(levelprefix)s "%(request_line)s" %(status_code)s'
    return config


def uvicorn_config(
    settings: Settings | None = None,
    app: Any = "ingest_api.main:create_server_app",
    **overrides: Any,
) -> uvicorn.Config:
    """``app`` is the factory's import path (what ``loom serve`` runs) or an app instance."""
    settings = settings or get_settings()
    timeouts = Timeouts(settings.header_timeout_seconds, settings.body_timeout_seconds)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": log_config(),
        "factory": isinstance(app, str),
        # uvicorn calls a protocol class with its own arguments: a partial works as one.
        "http": partial(BoundedHttpToolsProtocol, timeouts),
        **overrides,
    }
    return uvicorn.Config(app, **options)


# glibc's mallopt parameter, and its default value.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def return_big_buffers_to_the_os() -> None:
    """Keep glibc allocating buffers of 128 KiB and more (request bodies, landing files) with
    mmap, so each goes back to the OS when freed. By default glibc raises that threshold to the
    largest buffer freed so far, keeps later ones in its heap, and the server's memory grew with
    every round of the largest requests; fixed, it stays level."""
    name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    if mallopt is not None:  # glibc; other C libraries keep their own ways
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def serve(settings: Settings | None = None, **overrides: Any) -> None:
    return_big_buffers_to_the_os()
    uvicorn.Server(uvicorn_config(settings, **overrides)).run()
