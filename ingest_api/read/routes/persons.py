"""Persons: list the org's persons, or fetch the merged person behind a distinct_id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from ingest_api.read import READ_ERRORS
from ingest_api.read.deps import OrgScope
from ingest_api.read.persons import list_persons, person_by_distinct_id
from ingest_api.read.rendering import JsonResponse
from ingest_api.read.schemas import PersonDetail, PersonList

MAX_PERSONS_PAGE = 1000
MAX_OFFSET = 2**63 - 1  # DuckDB's OFFSET is a BIGINT: beyond it the query fails

router = APIRouter(prefix="/api/analytics", tags=["analytics: query"], responses=READ_ERRORS)


@router.get("/persons", response_model=PersonList)
def persons(
    reader: OrgScope,
    limit: Annotated[int, Query(ge=1, le=MAX_PERSONS_PAGE, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JsonResponse:
    """The org's persons, newest first (at most 1,000 per page)."""
    with reader.cursor() as cur:
        found = list_persons(cur, reader.org_id, limit, offset)
    return reader.answer(found)


# `:path`: a distinct_id may hold '/' (sent as %2F, which the server decodes before routing).
@router.get("/persons/{distinct_id:path}", response_model=PersonDetail)
def person(reader: OrgScope, distinct_id: str) -> JsonResponse:
    """The merged person that ``distinct_id`` belongs to, with every one of its distinct_ids."""
    with reader.cursor() as cur:
        found = person_by_distinct_id(cur, reader.org_id, distinct_id)
    if found is None:
        raise HTTPException(
            404, f"no person with distinct_id {distinct_id!r}", reader.snapshot_headers()
        )
    return reader.answer(found)
