"""Valid request bodies to start from, and the errors a 400 lists."""

from __future__ import annotations

import httpx

EVENT = {"event": "signed_up", "distinct_id": "user_1", "properties": {"plan": "pro"}}


def errors_of(response: httpx.Response) -> list[tuple[int | None, str, str]]:
    return [(e["index"], e["field"], e["type"]) for e in response.json()["errors"]]


SESSION_START = {
    "session_id": "ses_1",
    "distinct_id": "user_123",
    "release": "1.2.3",
    "environment": "production",
    "platform": "javascript",
    "started_at": "2026-01-18T12:00:00Z",
    "sample_rate": 1.0,
}
SESSION_END = {
    "session_id": "ses_1",
    "status": "exited",
    "error_count": 0,
    "crash_count": 0,
    "ended_at": "2026-01-18T12:30:00Z",
    "duration_ms": 1800000,
}
