from datetime import datetime

import orjson

from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.raw_load import load_hour

HOUR = datetime(2026, 1, 18, 12)


def _event(uuid: str, timestamp: str, received_at: str = "2026-01-18T12:30:00Z") -> dict:
    return {
        "uuid": uuid,
        "org_id": "org_a",
        "project_id": 1,
        "received_at": received_at,
        "source": "native",
        "ip": "127.0.0.1",
        "environment": "production",
        "event": "signed_up",
        "event_display_name": None,
        "distinct_id": "u1",
        "anonymous_id": None,
        "device_id": None,
        "session_id": None,
        "properties": {"plan": "pro"},
        "timestamp": timestamp,
    }


def _land(layout: Layout, org: str, name: str, records: list[dict]) -> None:
    folder = layout.hour_dir("events", org, HOUR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def test_load_hour_replaces_the_hour_and_counts_late_records(layout: Layout) -> None:
    _land(layout, "org_a", "part-1.ndjson", [_event("e1", "2026-01-18T12:01:00Z")])
    _land(layout, "org_b", "part-2.ndjson", [_event("e2", "2026-01-17T08:00:00Z")])
    # A file being written is hidden behind a dot-name and must not be read.
    (layout.hour_dir("events", "org_a", HOUR) / ".part-3.ndjson.tmp").write_text("{broken")
    con = connect_pipeline(layout)

    first = load_hour(con, layout, "events", HOUR)
    second = load_hour(con, layout, "events", HOUR)

    assert (first.files_read, first.rows_loaded, first.rows_replaced, first.late_records) == (
        2,
        2,
        0,
        1,
    )
    assert (second.rows_loaded, second.rows_replaced) == (2, 2)
    rows = con.execute(
        "SELECT uuid, properties->>'plan', timestamp FROM raw.events ORDER BY uuid"
    ).fetchall()
    assert rows == [
        ("e1", "pro", datetime(2026, 1, 18, 12, 1)),
        ("e2", "pro", datetime(2026, 1, 17, 8)),
    ]


def test_load_hour_of_an_empty_hour_clears_it(layout: Layout) -> None:
    _land(layout, "org_a", "part-1.ndjson", [_event("e1", "2026-01-18T12:01:00Z")])
    con = connect_pipeline(layout)
    load_hour(con, layout, "events", HOUR)
    for path in layout.hour_files("events", HOUR):
        path.unlink()

    result = load_hour(con, layout, "events", HOUR)

    assert (result.files_read, result.rows_loaded, result.rows_replaced) == (0, 0, 1)
