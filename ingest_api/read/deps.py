"""What a read route depends on: one dependency per route, giving the caller's scope (its org,
and on project routes the project) with the published marts to read it from.

Each is a single ``async def`` that authenticates by itself rather than through sub-dependencies:
FastAPI resolves every dependency level on every request, and on these routes, whose queries
take a couple of milliseconds, that resolution was a visible share of the latency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from ingest_api.auth import authenticate_reader
from warehouse.published import PublishedMarts


@dataclass(frozen=True)
class OrgReader:
    """An rw key's org, and the marts its reads are answered from."""

    org_id: str
    marts: PublishedMarts
    key_id: str  # the key that asked: a stream ends when it is revoked


@dataclass(frozen=True)
class ProjectReader(OrgReader):
    """An rw key's org and one of the org's projects."""

    project_id: int


async def org_reader(request: Request) -> OrgReader:
    key = await authenticate_reader(request)
    return OrgReader(key.org_id, request.app.state.marts, key.key_id)


async def project_reader(
    request: Request,
    project_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The project's numeric id.")],
) -> ProjectReader:
    """The project, when it belongs to the key's org. Another org's project answers exactly like
    one that does not exist, so ids cannot be probed across tenants."""
    key = await authenticate_reader(request)
    project = request.app.state.registry.project(project_id)
    if project is None or project.org_id != key.org_id:
        raise HTTPException(404, f"project {project_id} not found")
    return ProjectReader(key.org_id, request.app.state.marts, key.key_id, project.project_id)


OrgScope = Annotated[OrgReader, Depends(org_reader)]
ProjectScope = Annotated[ProjectReader, Depends(project_reader)]
