"""JSON responses rendered by orjson: naive warehouse timestamps come out as UTC with ``Z``
(``2026-01-18T12:00:00Z``), and JSON columns are embedded as they are stored, without a parse and
re-serialize round trip."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, option=OPTIONS)


def raw_json(value: str | None) -> orjson.Fragment | None:
    """A JSON column (DuckDB returns its text) embedded verbatim."""
    return None if value is None else orjson.Fragment(value)


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
