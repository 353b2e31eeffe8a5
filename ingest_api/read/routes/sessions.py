"""Individual sessions of a project, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from ingest_api.read import READ_ERRORS
from ingest_api.read.deps import ProjectScope
from ingest_api.read.rendering import JsonResponse
from ingest_api.read.schemas import SessionDetail, SessionList
from ingest_api.read.sessions import SessionStatus, list_sessions, session_detail

MAX_SESSIONS_PAGE = 1000

router = APIRouter(prefix="/api/projects", tags=["release health"], responses=READ_ERRORS)


@router.get("/{project_id}/sessions", response_model=SessionList)
def sessions(
    reader: ProjectScope,
    release: str | None = None,
    status: SessionStatus | None = None,
    environment: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SESSIONS_PAGE)] = 100,
) -> JsonResponse:
    """Recent sessions (the last 30 days are kept individually)."""
    with reader.cursor() as cur:
        found = list_sessions(
            cur, reader.org_id, reader.project_id, release, status, limit, environment
        )
    return reader.answer(found)


# `:path`: a session id may hold '/' (sent as %2F, which the server decodes before routing).
@router.get("/{project_id}/sessions/{session_id:path}", response_model=SessionDetail)
def session(reader: ProjectScope, session_id: str) -> JsonResponse:
    with reader.cursor() as cur:
        found = session_detail(cur, reader.org_id, reader.project_id, session_id)
    if found is None:
        raise HTTPException(
            404,
            f"session {session_id!r} not found in project {reader.project_id}",
            reader.snapshot_headers(),
        )
    return reader.answer(found)
