"""``/api/keys/me``: what a key is."""

from __future__ import annotations

from pydantic import BaseModel


class KeyInfo(BaseModel):
    key_id: str
    kind: str
    org_id: str
    project_id: int
    project_name: str
