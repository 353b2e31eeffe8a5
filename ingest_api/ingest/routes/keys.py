"""``GET /api/keys/me``: which org and project a key belongs to. A read route, so it needs an
``rw`` key (a write key gets 403), like every query route."""

from __future__ import annotations

from ingest_api.ingest import ingest_router
from ingest_api.ingest.deps import ReadKey
from ingest_api.ingest.schemas.keys import KeyInfo

router = ingest_router(prefix="/api/keys", tags=["keys"])


@router.get("/me")
async def me(key: ReadKey) -> KeyInfo:
    return KeyInfo(
        key_id=key.key_id,
        kind=key.kind,
        org_id=key.org_id,
        project_id=key.project_id,
        project_name=key.project_name,
    )
