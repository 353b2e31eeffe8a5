"""The whole stack running as a user runs it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.published import NoSnapshotError, latest_published


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

    def wait_until_serving_latest_publish(self, timeout: float = 30) -> None:
        """The API follows new publishes within about a second (``PublishedMarts``); wait until
        it answers from the one the pipeline just made."""
        with connect_reader(self.layout) as con:
            published = latest_published(con)
        assert published is not None, "the pipeline published nothing"
        deadline = time.monotonic() + timeout
        while self._serving() != published:
            assert time.monotonic() < deadline, f"the API never switched to snapshot {published}"
            time.sleep(0.1)

    def _serving(self) -> int | None:
        try:
            return self.app.state.marts.snapshot_id()
        except NoSnapshotError:  # until its follower has seen the first publish
            return None
