"""What a read route depends on: one dependency per route, giving the caller's scope (its org,
and on project routes the project) with the published marts to read it from, as of the time the
request asks for (``as_of``; the newest publish when it asks for none).

Each is a single ``async def`` that authenticates by itself rather than through sub-dependencies:
FastAPI resolves every dependency level on every request, and on these routes, whose queries
take a couple of milliseconds, that resolution was a visible share of the latency."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import duckdb
from fastapi import Depends, HTTPException, Path, Query, Request

from ingest_api.auth import authenticate_reader
from ingest_api.read.rendering import JsonResponse
from ingest_api.read.snapshots import snapshot_fields, snapshot_headers
from ingest_api.read.timeutil import QueryTime, query_time
from warehouse.published import Publish, PublishedMarts

ProjectId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The project's numeric id.")]
AsOf = Annotated[
    QueryTime | None,
    Query(
        description="Answer from the snapshot published at or before this time (ISO 8601; a"
        " time older than every snapshot kept is a 410 naming the oldest). Default: the newest."
    ),
]


@dataclass
class OrgReader:
    """An rw key's org, and the marts its reads are answered from."""

    org_id: str
    marts: PublishedMarts
    key_id: str  # the key that asked: a stream ends when it is revoked
    as_of: datetime | None = None
    answered_from: Publish | None = None  # the publish the answer is read from, once known

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the snapshot this request answers from."""
        with self.marts.reading(self.as_of) as (publish, cursor):
            self.answered_from = publish
            yield cursor

    def pin(self) -> Publish:
        """The publish this request answers from, for an answer read after the route returns."""
        self.answered_from = self.marts.answering(self.as_of)
        return self.answered_from

    def snapshot_headers(self) -> dict[str, str]:
        assert self.answered_from is not None, "read through cursor() or pin() first"
        return snapshot_headers(self.answered_from)

    def answer(self, body: dict[str, Any]) -> JsonResponse:
        """``body`` with the ``snapshot`` it was read from, in a field and in the headers."""
        assert self.answered_from is not None, "read through cursor() first"
        return JsonResponse(
            {**body, "snapshot": snapshot_fields(self.answered_from)},
            headers=snapshot_headers(self.answered_from),
        )


@dataclass
class ProjectReader(OrgReader):
    """An rw key's org and one of the org's projects."""

    project_id: int = field(kw_only=True)


async def org_reader(request: Request, as_of: AsOf = None) -> OrgReader:
    key = await authenticate_reader(request)
    return OrgReader(key.org_id, request.app.state.marts, key.key_id, query_time(as_of, "as_of"))


async def project_reader(
    request: Request, project_id: ProjectId, as_of: AsOf = None
) -> ProjectReader:
    """The project, when it belongs to the key's org. Another org's project answers exactly like
    one that does not exist, so ids cannot be probed across tenants."""
    reader = await live_project_reader(request, project_id)
    reader.as_of = query_time(as_of, "as_of")
    return reader


async def live_project_reader(request: Request, project_id: ProjectId) -> ProjectReader:
    """:func:`project_reader` without ``as_of``, for the live stream."""
    key = await authenticate_reader(request)
    project = request.app.state.registry.project(project_id)
    if project is None or project.org_id != key.org_id:
        raise HTTPException(404, f"project {project_id} not found")
    return ProjectReader(
        key.org_id, request.app.state.marts, key.key_id, project_id=project.project_id
    )


OrgScope = Annotated[OrgReader, Depends(org_reader)]
ProjectScope = Annotated[ProjectReader, Depends(project_reader)]
LiveProjectScope = Annotated[ProjectReader, Depends(live_project_reader)]
