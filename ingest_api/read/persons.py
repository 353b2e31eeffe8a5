"""Persons (``dim_persons``): the merged person behind any of its distinct_ids."""

from __future__ import annotations

from typing import Any

import duckdb

from ingest_api.read.rendering import raw_json

PERSON_COLUMNS = "person_id, distinct_ids, properties, is_identified, created_at, last_seen_at"


def _person(row: tuple) -> dict[str, Any]:
    person_id, distinct_ids, properties, is_identified, created_at, last_seen_at = row
    return {
        "person_id": person_id,
        "distinct_ids": distinct_ids,
        "properties": raw_json(properties),
        "is_identified": is_identified,
        "created_at": created_at,
        "last_seen_at": last_seen_at,
    }


def list_persons(
    cur: duckdb.DuckDBPyConnection, org_id: str, limit: int, offset: int
) -> dict[str, Any]:
    rows = cur.execute(
        f"""
        SELECT {PERSON_COLUMNS} FROM warehouse.analytics.dim_persons
        WHERE org_id = $org
        ORDER BY created_at DESC, person_id
        LIMIT $limit OFFSET $offset
        """,
        {"org": org_id, "limit": limit + 1, "offset": offset},
    ).fetchall()
    more = len(rows) > limit
    return {
        "persons": [_person(row) for row in rows[:limit]],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


def person_by_distinct_id(
    cur: duckdb.DuckDBPyConnection, org_id: str, distinct_id: str
) -> dict[str, Any] | None:
    row = cur.execute(
        f"""
        SELECT {PERSON_COLUMNS} FROM warehouse.analytics.dim_persons_by_distinct_id
        WHERE org_id = $org AND distinct_id = $id
        """,
        {"org": org_id, "id": distinct_id},
    ).fetchone()
    if row is not None and row[1] is None:  # a person of many ids keeps only its key there
        row = cur.execute(
            f"""
            SELECT {PERSON_COLUMNS} FROM warehouse.analytics.dim_persons
            WHERE org_id = $org AND person_id = $person
            """,
            {"org": org_id, "person": row[0]},
        ).fetchone()
    return None if row is None else _person(row)
