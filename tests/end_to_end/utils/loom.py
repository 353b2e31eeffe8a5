"""The whole stack running as a user runs it."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from warehouse.layout import Layout


@dataclass(frozen=True)
class RunningLoom:
    base_url: str
    app: FastAPI
    layout: Layout
    key: str
    org_id: str
    project_id: int

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)
