"""Individual sessions (``fct_sessions``, kept for the session retention period)."""

from __future__ import annotations

from typing import Any, Literal

import duckdb

SessionStatus = Literal["active", "exited", "crashed", "abnormal", "errored"]
# The documented session shape, field for field (``session_id`` is answered as ``id``).
SESSION_FIELDS = (
    "id", "person_id", "status", "release", "environment", "error_count", "crash_count",
    "duration_ms", "platform", "started_at", "ended_at",
)  # fmt: skip
SESSION_COLUMNS = ", ".join("session_id" if name == "id" else name for name in SESSION_FIELDS)


def _session(row: tuple) -> dict[str, Any]:
    return dict(zip(SESSION_FIELDS, row, strict=True))


def list_sessions(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    project_id: int,
    release: str | None,
    status: SessionStatus | None,
    limit: int,
    environment: str | None = None,
) -> dict[str, Any]:
    clauses, params = (
        ["org_id = $org", "project_id = $project"],
        {"org": org_id, "project": project_id},
    )
    if release is not None:
        clauses.append("release = $release")
        params["release"] = release
    if status is not None:
        clauses.append("status = $status")
        params["status"] = status
    if environment is not None:
        clauses.append("environment = $environment")
        params["environment"] = environment
    rows = cur.execute(
        f"""
        SELECT {SESSION_COLUMNS} FROM warehouse.analytics.fct_sessions
        WHERE {" AND ".join(clauses)}
        ORDER BY started_at DESC, session_id DESC
        LIMIT $limit
        """,
        params | {"limit": limit},
    ).fetchall()
    return {"sessions": [_session(row) for row in rows]}


def session_detail(
    cur: duckdb.DuckDBPyConnection, org_id: str, project_id: int, session_id: str
) -> dict[str, Any] | None:
    row = cur.execute(
        f"""
        SELECT {SESSION_COLUMNS} FROM warehouse.analytics.fct_sessions
        WHERE org_id = $org AND project_id = $project AND session_id = $session
        """,
        {"org": org_id, "project": project_id, "session": session_id},
    ).fetchone()
    return None if row is None else {"session": _session(row)}
