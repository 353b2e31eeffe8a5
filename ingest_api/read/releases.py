"""Release health, read from the marts dbt builds for it.

Without a window, a release's health is the ``release_health`` mart; with ``start_date`` /
``end_date`` it is dbt's table function ``project_release_health_between(org, project, start,
end)``. The formulas live in dbt (``dbt_project/macros/release_health.sql``); nothing is
recomputed here. Why the windowed answers survive session retention: docs/read-api.md,
"Release health comes from dbt"."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

import duckdb

TrendInterval = Literal["hour", "day", "week"]

DOCUMENTED_LIST_FIELDS = (
    "release", "environment", "crash_free_session_rate", "crash_free_user_rate", "adoption_rate",
    "adoption_stage", "total_sessions", "crashed_sessions", "total_users",
)  # fmt: skip
# Beyond the documented shapes, in both: what the stage follows, and the error rate and duration.
EXTRA_FIELDS = ("current_adoption_rate", "peak_adoption_rate", "error_rate", "avg_duration_ms")
LIST_FIELDS = (*DOCUMENTED_LIST_FIELDS, *EXTRA_FIELDS)
DETAIL_FIELDS = (
    *DOCUMENTED_LIST_FIELDS, "crashed_users", "first_seen", "last_seen", "crash_free_rate_trend",
    *EXTRA_FIELDS,
)  # fmt: skip


class ReleaseKey(NamedTuple):
    org_id: str
    project_id: int
    release: str
    environment: str


def _source(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    project_id: int,
    start: datetime | None,
    end: datetime | None,
) -> tuple[str, dict[str, Any]]:
    """The relation to read the project's health from: the whole-history mart, or dbt's
    one-project table macro over a window. A window with one open side takes the other from the
    project's whole history. Bounds are passed as values, not subqueries: the macro repeats them
    in several places, and each subquery would be one more join to plan."""
    if start is None and end is None:
        return "warehouse.analytics.release_health", {}
    if start is None or end is None:
        first, last = cur.execute(
            "SELECT min(window_start), max(window_end) FROM warehouse.analytics.release_health"
            " WHERE org_id = $org AND project_id = $project",
            {"org": org_id, "project": project_id},
        ).fetchone()
        start, end = start or first, end or last
    return (
        "warehouse.analytics.project_release_health_between"
        "($org, $project, $start::TIMESTAMP, $end::TIMESTAMP)",
        {"start": start, "end": end},
    )


def list_releases(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    project_id: int,
    environment: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    source, params = _source(cur, org_id, project_id, start, end)
    clauses = ["org_id = $org", "project_id = $project"]
    if environment is not None:
        clauses.append("environment = $environment")
        params["environment"] = environment
    rows = cur.execute(
        f"""
        SELECT {", ".join(LIST_FIELDS)} FROM {source}
        WHERE {" AND ".join(clauses)}
        ORDER BY environment, last_seen DESC, release
        """,
        params | {"org": org_id, "project": project_id},
    ).fetchall()
    return {"releases": [dict(zip(LIST_FIELDS, row, strict=True)) for row in rows]}


def release_detail(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    project_id: int,
    release: str,
    environment: str | None,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any] | None:
    """One release's health; without ``environment``, in the environment it had most sessions."""
    source, params = _source(cur, org_id, project_id, start, end)
    clauses = ["org_id = $org", "project_id = $project", "release = $release"]
    if environment is not None:
        clauses.append("environment = $environment")
        params["environment"] = environment
    row = cur.execute(
        f"""
        SELECT {", ".join(DETAIL_FIELDS)} FROM {source}
        WHERE {" AND ".join(clauses)}
        ORDER BY total_sessions DESC, environment
        LIMIT 1
        """,
        params | {"org": org_id, "project": project_id, "release": release},
    ).fetchone()
    return None if row is None else dict(zip(DETAIL_FIELDS, row, strict=True))


def health_trend(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    project_id: int,
    interval: TrendInterval,
    start: datetime | None,
    end: datetime | None,
    environment: str | None = None,
    release: str | None = None,
) -> dict[str, Any]:
    """Crash-free rates of the project per hour, day or ISO week (buckets starting in the range),
    of one environment and/or release when given: then from dbt's table macro
    ``project_health_trend``, which computes the mart's numbers over only those rows."""
    clauses = ["org_id = $org", "project_id = $project", "grain = $grain"]
    params: dict[str, Any] = {"org": org_id, "project": project_id, "grain": interval}
    source = "warehouse.analytics.release_health_trend"
    if environment is not None or release is not None:
        source = (
            "warehouse.analytics.project_health_trend($org, $project, $grain,"
            " environment_filter := $environment, release_filter := $release)"
        )
        params |= {"environment": environment or "", "release": release or ""}
    if start is not None:
        clauses.append("bucket_start >= $start")
        params["start"] = start
    if end is not None:
        clauses.append("bucket_start < $end")
        params["end"] = end
    rows = cur.execute(
        f"""
        SELECT bucket_start, crash_free_session_rate, crash_free_user_rate, total_sessions
        FROM {source}
        WHERE {" AND ".join(clauses)}
        ORDER BY bucket_start
        """,
        params,
    ).fetchall()
    fields = ("timestamp", "crash_free_session_rate", "crash_free_user_rate", "total_sessions")
    return {"trend": [dict(zip(fields, row, strict=True)) for row in rows]}


def current_release_health(cur: duckdb.DuckDBPyConnection) -> dict[ReleaseKey, dict[str, Any]]:
    """Every release's whole-history health, as ``release.health_changed`` carries it."""
    rows = cur.execute(
        f"SELECT org_id, project_id, {', '.join(DETAIL_FIELDS)}"
        " FROM warehouse.analytics.release_health"
    ).fetchall()
    return {
        ReleaseKey(*row[:4]): {
            "project_id": row[1],
            **dict(zip(DETAIL_FIELDS, row[2:], strict=True)),
        }
        for row in rows
    }
