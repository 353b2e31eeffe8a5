"""Dependency aliases of the read routes: the published marts and the caller's project."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from ingest_api.deps import ReadKey
from warehouse.registry import Project
from warehouse.serving import ServedMarts


async def served_marts(request: Request) -> ServedMarts:
    return request.app.state.marts


async def readable_project(
    request: Request,
    key: ReadKey,
    project_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The project's numeric id.")],
) -> Project:
    """The project, when it belongs to the key's org. Another org's project answers exactly like
    one that does not exist, so ids cannot be probed across tenants."""
    project = request.app.state.registry.project(project_id)
    if project is None or project.org_id != key.org_id:
        raise HTTPException(404, f"project {project_id} not found")
    return project


Marts = Annotated[ServedMarts, Depends(served_marts)]
ReadableProject = Annotated[Project, Depends(readable_project)]
