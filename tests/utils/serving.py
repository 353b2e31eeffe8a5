"""Waiting for a running API to answer from the pipeline's latest publish."""

from __future__ import annotations

import time

from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.published import NoSnapshotError, PublishedMarts, latest_published


def wait_until_serving_latest_publish(
    marts: PublishedMarts, layout: Layout, timeout: float = 30
) -> None:
    """The API follows new publishes within about a second (its ``PublishedMarts``); wait until
    it answers from the one the pipeline just made."""
    with connect_reader(layout) as con:
        published = latest_published(con)
    assert published is not None, "the pipeline published nothing"
    deadline = time.monotonic() + timeout
    while _serving(marts) != published:
        assert time.monotonic() < deadline, f"the API never switched to snapshot {published}"
        time.sleep(0.1)


def _serving(marts: PublishedMarts) -> int | None:
    try:
        return marts.snapshot_id()
    except NoSnapshotError:  # until its follower has seen the first publish
        return None
