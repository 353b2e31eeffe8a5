"""Events (``fct_events``): filtered, newest first, paged with an opaque keyset cursor.

The cursor is the (timestamp, uuid) of the last event of a page, so the next page starts exactly
after it even when new events arrive in between (no offset drift, no duplicates)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import duckdb
import orjson
from fastapi import HTTPException, Query

from ingest_api.event_names import StoredEventName
from ingest_api.read.rendering import raw_json

EVENT_FIELDS = (
    "uuid", "event", "event_display_name", "distinct_id", "person_id", "properties", "timestamp",
    "environment", "project_id", "session_id", "device_id",
)  # fmt: skip
EVENT_COLUMNS = ", ".join(EVENT_FIELDS)

EventName = Annotated[
    StoredEventName | None,
    Query(
        description="The stored name (`purchase_completed`) or the name as sent"
        " (`Purchase Completed`): both find every event stored under it."
    ),
]


@dataclass(frozen=True)
class EventFilter:
    org_id: str
    event_name: str | None = None
    distinct_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses, params = ["org_id = $org"], {"org": self.org_id}
        if self.event_name is not None:  # the stored name (the route normalized it)
            clauses.append("event = $event")
            params["event"] = self.event_name
        if self.distinct_id is not None:
            clauses.append("distinct_id = $distinct_id")
            params["distinct_id"] = self.distinct_id
        if self.start is not None:
            clauses.append("timestamp >= $start")
            params["start"] = self.start
        if self.end is not None:
            clauses.append("timestamp < $end")
            params["end"] = self.end
        return " AND ".join(clauses), params


def encode_cursor(timestamp: datetime, uuid: str) -> str:
    raw = orjson.dumps([timestamp.isoformat(), uuid])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        timestamp, uuid = orjson.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(timestamp), str(uuid)
    except (binascii.Error, ValueError, TypeError) as error:
        raise HTTPException(
            400, "cursor: not a cursor this API returned (pass next_cursor unchanged)"
        ) from error


def _event(row: tuple) -> dict[str, Any]:
    event = dict(zip(EVENT_FIELDS, row, strict=True))
    event["properties"] = raw_json(event["properties"])
    return event


def list_events(
    cur: duckdb.DuckDBPyConnection, where: EventFilter, limit: int, cursor: str | None
) -> dict[str, Any]:
    sql, params = where.where()
    if cursor is not None:
        after_timestamp, after_uuid = decode_cursor(cursor)
        sql += " AND (timestamp < $after_ts OR (timestamp = $after_ts AND uuid < $after_uuid))"
        params |= {"after_ts": after_timestamp, "after_uuid": after_uuid}
    rows = cur.execute(
        f"""
        SELECT {EVENT_COLUMNS} FROM warehouse.analytics.fct_events
        WHERE {sql}
        ORDER BY timestamp DESC, uuid DESC
        LIMIT $limit
        """,
        params | {"limit": limit + 1},
    ).fetchall()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = dict(zip(EVENT_FIELDS, page[-1], strict=True))
        next_cursor = encode_cursor(last["timestamp"], last["uuid"])
    return {"events": [_event(row) for row in page], "next_cursor": next_cursor}
