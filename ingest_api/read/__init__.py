"""The read API: queries over the published marts (see :mod:`warehouse.published`).

Routes (``routes/``) stay thin; the SQL lives in plain functions here that take a DuckDB cursor
on the current snapshot and the caller's org (and project), so every query is scoped by
construction.
"""

from __future__ import annotations

from typing import Any

from ingest_api.api_types import ErrorBody

# "4XX" replaces FastAPI's default 422 entry: bad parameters are answered 400 in the ErrorBody
# shape, naming the field (the ingest API's validation handler).
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorBody,
        "description": "Bad parameters (400), not found (404), or an `as_of` older than every"
        " published snapshot kept (410, naming the oldest time kept).",
    },
    401: {"description": "Missing, unknown or revoked API key."},
    403: {"description": "A write key: reading needs a loom_analytics_rw_ key."},
    503: {
        "description": (
            "No pipeline run has been published yet, or the lake cannot be reached (both with"
            " Retry-After); or a file of the lake this read needs is damaged (no Retry-After)."
        )
    },
}
