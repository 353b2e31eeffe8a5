"""Which data an answer reflects: the published snapshot a read route answered from, said in
response headers on every read route (exports included) and as the top-level ``snapshot`` field
of every JSON object it answers (and of each ``release.health_changed`` event). Both come from
what the process holds about its open snapshot: no query."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from warehouse.published import Publish

SNAPSHOT_ID = "Loom-Snapshot-Id"
PUBLISHED_AT = "Loom-Published-At"
DATA_AS_OF = "Loom-Data-As-Of"

# For the OpenAPI document: the headers of every read route's answer.
SNAPSHOT_HEADERS: dict[str, dict[str, Any]] = {
    SNAPSHOT_ID: {
        "description": "The id of the published lake snapshot this answer was read from.",
        "required": True,
        "schema": {"type": "integer"},
    },
    PUBLISHED_AT: {
        "description": "When that snapshot was published (UTC, ISO 8601).",
        "required": True,
        "schema": {"type": "string", "format": "date-time"},
    },
    DATA_AS_OF: {
        "description": "The newest received time of the records it holds (UTC, ISO 8601); absent"
        " for snapshots published before it was recorded.",
        "schema": {"type": "string", "format": "date-time"},
    },
}


def snapshot_headers(publish: Publish) -> dict[str, str]:
    headers = {SNAPSHOT_ID: str(publish.snapshot_id), PUBLISHED_AT: _iso(publish.published_at)}
    if publish.data_as_of is not None:
        headers[DATA_AS_OF] = _iso(publish.data_as_of)
    return headers


def snapshot_fields(publish: Publish) -> dict[str, Any]:
    """The body's ``snapshot`` object (rendered by orjson like every timestamp of the API)."""
    return {
        "id": publish.snapshot_id,
        "published_at": publish.published_at,
        "data_as_of": publish.data_as_of,
    }


def _iso(moment: datetime) -> str:
    # As orjson renders the bodies' naive UTC timestamps.
    return moment.isoformat() + "Z"
