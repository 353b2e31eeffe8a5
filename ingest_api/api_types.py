"""Types both halves of the API use: the error body every 4xx and 5xx carries, and the text of
times in a query."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

QUERY_TIME_HELP = "send ISO 8601, e.g. 2026-01-18T12:00:00Z"
# Text pydantic would read as a unix time: refused in a query, only digits in a body.
UNIX_TIME_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


class FieldError(BaseModel):
    index: int | None = Field(description="Position of the bad item in a batch; null otherwise.")
    field: str
    reason: str
    type: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []
