"""Query-string times. The warehouse stores naive UTC; an ISO 8601 value with an offset is
converted to UTC, one without is taken as UTC. Ranges are half-open: ``start <= t < end``."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException


def naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def time_range(
    start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    start, end = naive_utc(start), naive_utc(end)
    if start is not None and end is not None and end <= start:
        raise HTTPException(400, f"end_date ({end:%Y-%m-%dT%H:%M:%SZ}) must be after start_date")
    return start, end
