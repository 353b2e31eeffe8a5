"""Funnels, read from dbt's table macro ``funnel``
(``dbt_project/models/marts/product_analytics/funnel.sql``): the same definition
``loom dbt show "{{ funnel(...) }}"`` and analysts' SQL use; nothing is counted here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb

FUNNEL_FIELDS = (
    "variant", "step", "event", "persons", "conversion_rate", "step_conversion_rate",
)  # fmt: skip


def funnel(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    steps: Sequence[str],
    window: timedelta,
    start: datetime | None,
    end: datetime | None,
    breakdown_flag: str | None,
) -> list[dict[str, Any]]:
    """One row per step (per variant with a breakdown) of the org's funnel; step-1 events in
    ``[start, end)``."""
    rows = cur.execute(
        """
        SELECT * FROM warehouse.analytics.funnel(
            $steps::VARCHAR[],
            conversion_window := $window,
            start_at := $start::TIMESTAMP,
            end_at := $end::TIMESTAMP,
            breakdown_flag := $flag,
            scope_org_id := $org
        )
        """,
        {
            "steps": list(steps),
            "window": window,
            "start": start,
            "end": end,
            "flag": breakdown_flag or "",
            "org": org_id,
        },
    ).fetchall()
    return [dict(zip(FUNNEL_FIELDS, row, strict=True)) for row in rows]
