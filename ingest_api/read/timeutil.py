"""Query-string times. The warehouse stores naive UTC; an ISO 8601 value with an offset is
converted to UTC, one without is taken as UTC. Ranges are half-open: ``start <= t < end``, in the
years :data:`EARLIEST` .. :data:`LATEST` as written (so window arithmetic can never overflow), which
the OpenAPI states as a pattern; an offset may move a time a day past either end in UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import HTTPException
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from ingest_api.api_types import QUERY_TIME_HELP, UNIX_TIME_TEXT
from warehouse.layout import naive_utc

EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(2200, 1, 1)
YEAR_PATTERN = r"^(19[7-9][0-9]|2[01][0-9]{2})-"  # 1970 to 2199, as written


def _iso_8601_only(value: Any) -> Any:
    # The schema says date-time; pydantic alone would also read "0.5" as a unix time.
    if isinstance(value, str) and UNIX_TIME_TEXT.fullmatch(value):
        raise PydanticCustomError("timestamp", "not a timestamp: " + QUERY_TIME_HELP)
    return value


QueryTime = Annotated[
    datetime,
    BeforeValidator(_iso_8601_only),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": YEAR_PATTERN}),
]


def query_time(moment: datetime | None, field: str) -> datetime | None:
    """``moment`` as naive UTC, or a 400 naming ``field`` when it is outside the range."""
    if moment is None:
        return None
    if not EARLIEST.year <= moment.year < LATEST.year:
        raise HTTPException(
            400,
            f"{field}: must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (its year as "
            "written)",
        )
    return naive_utc(moment) if moment.tzinfo is not None else moment


def time_range(
    start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    start, end = query_time(start, "start_date"), query_time(end, "end_date")
    if start is not None and end is not None and end <= start:
        raise HTTPException(400, f"end_date ({end:%Y-%m-%dT%H:%M:%SZ}) must be after start_date")
    return start, end
