"""Landing files for tests, written the way the ingest API writes them (warehouse/streams.py)."""

from __future__ import annotations

import itertools
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from warehouse.layout import Layout
from warehouse.streams import STREAM_COLUMNS

_file_numbers = itertools.count(1)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(stream: str, **values: Any) -> dict[str, Any]:
    """A record with exactly the stream's columns; datetimes become ISO strings."""
    unknown = set(values) - set(STREAM_COLUMNS[stream])
    assert not unknown, f"not {stream} columns: {unknown}"
    return {
        name: iso(values[name]) if isinstance(values.get(name), datetime) else values.get(name)
        for name in STREAM_COLUMNS[stream]
    }


def land(layout: Layout, stream: str, records: list[dict[str, Any]]) -> list[Path]:
    """One file per (org, received hour): dot-file, fsync, rename, as the ingest writer does."""
    by_dir: dict[Path, list[dict[str, Any]]] = {}
    for item in records:
        received = datetime.fromisoformat(item["received_at"].removesuffix("Z"))
        by_dir.setdefault(layout.hour_dir(stream, item["org_id"], received), []).append(item)
    paths = []
    for folder, items in by_dir.items():
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{next(_file_numbers):06d}.ndjson"
        scratch = folder / f".{name}.tmp"
        with scratch.open("wb") as handle:
            handle.write(b"".join(orjson.dumps(item) + b"\n" for item in items))
            handle.flush()
            os.fsync(handle.fileno())
        scratch.rename(folder / name)
        paths.append(folder / name)
    return paths
