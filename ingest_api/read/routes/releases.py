"""Release health of a project: releases, one release, and the trend over time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from ingest_api.read import READ_ERRORS
from ingest_api.read.deps import ProjectScope
from ingest_api.read.releases import TrendInterval, health_trend, list_releases, release_detail
from ingest_api.read.rendering import JsonResponse
from ingest_api.read.schemas import HealthTrend, ReleaseDetail, ReleaseList
from ingest_api.read.timeutil import QueryTime, time_range

router = APIRouter(prefix="/api/projects", tags=["release health"], responses=READ_ERRORS)

WINDOW_HELP = "ISO 8601; whole hours (start floored, end ceiled). Default: the whole history."
Start = Annotated[QueryTime | None, Query(description=f"Inclusive. {WINDOW_HELP}")]
End = Annotated[QueryTime | None, Query(description=f"Exclusive. {WINDOW_HELP}")]


@router.get("/{project_id}/releases", response_model=ReleaseList)
def releases(
    reader: ProjectScope,
    environment: str | None = None,
    start_date: Start = None,
    end_date: End = None,
) -> JsonResponse:
    """Every release with sessions in the window, with its sampling-adjusted health."""
    start, end = time_range(start_date, end_date)
    with reader.cursor() as cur:
        found = list_releases(cur, reader.org_id, reader.project_id, environment, start, end)
    return reader.answer(found)


# `:path`: a release may hold '/' (sent as %2F, which the server decodes before routing).
@router.get("/{project_id}/releases/{version:path}", response_model=ReleaseDetail)
def release(
    reader: ProjectScope,
    version: str,
    environment: Annotated[
        str | None, Query(description="Default: the environment with most sessions.")
    ] = None,
    start_date: Start = None,
    end_date: End = None,
) -> JsonResponse:
    """One release's health, with crashed users, first/last seen and the crash-free trend."""
    start, end = time_range(start_date, end_date)
    with reader.cursor() as cur:
        found = release_detail(
            cur, reader.org_id, reader.project_id, version, environment, start, end
        )
    if found is None:
        raise HTTPException(
            404, f"release {version!r} has no sessions in this window", reader.snapshot_headers()
        )
    return reader.answer(found)


@router.get("/{project_id}/health/trend", response_model=HealthTrend)
def trend(
    reader: ProjectScope,
    interval: TrendInterval = "day",
    start_date: Annotated[
        QueryTime | None, Query(description="Buckets starting at or after.")
    ] = None,
    end_date: Annotated[QueryTime | None, Query(description="Buckets starting before.")] = None,
    environment: Annotated[
        str | None, Query(min_length=1, description="Only this environment's sessions.")
    ] = None,
    release: Annotated[
        str | None, Query(min_length=1, description="Only this release's sessions.")
    ] = None,
) -> JsonResponse:
    """Crash-free session and user rates of the project per hour, day or ISO week."""
    start, end = time_range(start_date, end_date)
    with reader.cursor() as cur:
        found = health_trend(
            cur, reader.org_id, reader.project_id, interval, start, end, environment, release
        )
    return reader.answer(found)
