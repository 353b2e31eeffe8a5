"""The ingest API: routes that validate, authenticate and durably land events, identities and
sessions (``routes/``), the parsing and validation behind them (``routing.py``, ``schemas/``)
and the landing writer (``landing.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ingest_api.api_types import ErrorBody
from ingest_api.ingest.routing import IngestRoute

# Declaring "4XX" replaces FastAPI's default 422 entry: this API answers validation errors with
# 400 (413 for oversized properties) in the ErrorBody shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Rejected: nothing was stored."},
    503: {"model": ErrorBody, "description": "Could not store the records; retry."},
}


def ingest_router(route_class: type[IngestRoute] = IngestRoute, **kwargs: Any) -> APIRouter:
    return APIRouter(route_class=route_class, responses=ERROR_RESPONSES, **kwargs)
