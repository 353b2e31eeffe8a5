from datetime import datetime

import orjson

from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.maintenance import live_data_files
from warehouse.raw_load import (
    LEDGER_TABLE,
    ensure_raw_tables,
    load_hour,
    load_new_files,
    mark_built,
    newest_built,
    unbuilt_window,
)

HOUR = datetime(2026, 1, 18, 12)
LATER = "2026-01-18T12:45:30.5Z"


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


def test_a_micro_batch_appends_only_the_files_its_ledger_does_not_hold(layout: Layout) -> None:
    _land(layout, "org_a", "part-1.ndjson", [_event("e1", "2026-01-18T12:01:00Z")])
    con = connect_pipeline(layout)
    first = load_new_files(con, layout, "events", [HOUR], load_id="batch-1")
    _land(layout, "org_a", "part-2.ndjson", [_event("e2", "2026-01-18T12:02:00Z", LATER)])

    second = load_new_files(con, layout, "events", [HOUR], load_id="batch-2")

    assert (first.files_read, first.rows_loaded, second.files_read, second.rows_loaded) == (
        1,
        1,
        1,
        1,
    )
    assert con.execute("SELECT uuid FROM raw.events ORDER BY uuid").fetchall() == [
        ("e1",),
        ("e2",),
    ]
    # The closed hour's load replaces the hour and its ledger entries whole: nothing doubles.
    whole = load_hour(con, layout, "events", HOUR)
    assert (whole.files_read, whole.rows_loaded, whole.rows_replaced) == (2, 2, 2)
    assert con.execute(f"SELECT count(*) FROM {LEDGER_TABLE}").fetchall() == [(2,)]


def test_the_unbuilt_window_holds_every_row_no_build_covered(layout: Layout) -> None:
    _land(layout, "org_a", "part-1.ndjson", [_event("e1", "2026-01-18T12:01:00Z")])
    con = connect_pipeline(layout)
    load_new_files(con, layout, "events", [HOUR], load_id="killed")  # never built
    _land(layout, "org_a", "part-2.ndjson", [_event("e2", "2026-01-18T12:02:00Z", LATER)])
    load_new_files(con, layout, "events", [HOUR], load_id="next")

    window = unbuilt_window(con)
    # Whole seconds around both batches' rows: 12:30:00 and 12:45:30.5.
    assert window == (datetime(2026, 1, 18, 12, 30), datetime(2026, 1, 18, 12, 45, 31))
    mark_built(con, window)
    assert unbuilt_window(con) is None
    assert newest_built(con) == datetime(2026, 1, 18, 12, 45, 30, 500000)


def test_a_stream_with_nothing_new_gets_no_file(layout: Layout) -> None:
    con = connect_pipeline(layout)
    ensure_raw_tables(con)
    for _ in range(3):  # DuckLake 1.5.5 writes an empty file for an INSERT of no rows
        load_new_files(con, layout, "identities", [HOUR], load_id="quiet")
        load_hour(con, layout, "identities", HOUR)
    assert live_data_files(con).get("raw.identities", 0) == 0


def _quarantined(con) -> list[tuple[int, str]]:
    return con.execute(
        "SELECT line_number, reason FROM raw.quarantined_records ORDER BY line_number"
    ).fetchall()


def test_values_of_another_json_type_are_quarantined_not_converted(layout: Layout) -> None:
    """read_json alone would load an object as its JSON text, true as 1, "7" as 7, and drop an
    offset: the load applies the API's types instead."""
    good = _event("ok", "2026-01-18T12:01:00Z")
    _land(
        layout,
        "org_a",
        "part-1.ndjson",
        [
            good,
            {**good, "uuid": "offset", "timestamp": "2026-01-18T14:00:00+02:00"},
            {**good, "uuid": "object", "distinct_id": {"id": 1}},
            {**good, "uuid": "huge", "distinct_id": "x" * 5_000_000},
            {**good, "uuid": "string", "properties": "plan=pro"},
            {**good, "uuid": "true", "project_id": True},
            {**good, "uuid": "text", "project_id": "7"},
            {**good, "uuid": "fraction", "project_id": 1.5},
            {**good, "uuid": "number", "timestamp": 1768737600},
            {**good, "uuid": "choice", "source": ["native"]},
        ],
    )
    con = connect_pipeline(layout)

    result = load_hour(con, layout, "events", HOUR)

    assert (result.rows_loaded, result.records_quarantined) == (2, 8)
    assert _quarantined(con) == [
        (3, 'distinct_id: {"id":1} does not fit VARCHAR'),
        (4, "distinct_id: not 1 to 200 characters long"),
        (5, "properties: not a JSON object"),
        (6, "project_id: true does not fit BIGINT"),
        (7, 'project_id: "7" does not fit BIGINT'),
        (8, "project_id: 1.5 does not fit BIGINT"),
        (9, "timestamp: 1768737600 does not fit TIMESTAMP"),
        (10, "source: not one of native, track, posthog, sessions, sentry"),
    ]
    assert con.execute("SELECT uuid, timestamp FROM raw.events ORDER BY uuid").fetchall() == [
        ("offset", datetime(2026, 1, 18, 12)),
        ("ok", datetime(2026, 1, 18, 12, 1)),
    ]


NUL = "a\x00b"
GOOD = _event("ok", "2026-01-18T12:01:00Z")
FLAG = {**GOOD, "event": "$feature_flag_called"}


# A record of each kind, each in a file of its own with a good record: every such file fits its
# types, so the fast path reads it, and must find the record itself.
WITH_CONTROL_CHARACTERS = {
    "distinct_id: holds a control character": {"distinct_id": NUL},
    "org_id: holds a control character": {"org_id": "org\x1f"},
    "ip: holds a control character": {"ip": "x\x7f"},
    "environment: holds a control character": {"environment": "prod\x85"},
    "properties.$set keys: holds a control character": {"properties": {"$set": {NUL: 1}}},
    "properties.$feature_flag: holds a control character": {
        **FLAG,
        "properties": {"$feature_flag": NUL},
    },
}
ESCAPED_SET_REASON = "properties.$set keys: holds a control character"
# Text that is not ASCII, and control characters in free-text properties, load.
KEPT = [
    {**GOOD, "uuid": "accents", "distinct_id": 'zoë "q" \\ é'},
    {**GOOD, "uuid": "free text", "properties": {"note": NUL, "k\x00": "\n"}},
    {**FLAG, "uuid": "flag", "properties": {"$feature_flag": "f", "x": NUL, "$set": {}}},
]


def test_text_with_control_characters_is_quarantined_from_files_that_otherwise_load(
    layout: Layout,
) -> None:
    for number, bad in enumerate(WITH_CONTROL_CHARACTERS.values()):
        _land(layout, f"org_{number}", "part-1.ndjson", [GOOD, {**GOOD, **bad, "uuid": "bad"}])
    _land(layout, "org_kept", "part-1.ndjson", KEPT)
    # The fast path looks for "$set" in DuckDB's own JSON text, where no key is escaped.
    escaped = orjson.dumps({**GOOD, "uuid": "bad"}).replace(
        b'"properties":{"plan":"pro"}', b'"properties":{"\\u0024set":{"plan\\u0000":1}}'
    )
    escaped_file = layout.hour_dir("events", "org_escaped", HOUR) / "part-1.ndjson"
    escaped_file.parent.mkdir(parents=True)
    escaped_file.write_bytes(orjson.dumps(GOOD) + b"\n" + escaped + b"\n")
    con = connect_pipeline(layout)

    result = load_hour(con, layout, "events", HOUR)

    assert (result.rows_loaded, result.records_quarantined) == (6 + 3 + 1, 6 + 1)
    reasons = con.execute("SELECT reason, line_number FROM raw.quarantined_records").fetchall()
    assert sorted(reasons) == sorted(
        [*((reason, 2) for reason in WITH_CONTROL_CHARACTERS), (ESCAPED_SET_REASON, 2)]
    )
    kept = con.execute(
        "SELECT distinct_id, properties->>'note' FROM raw.events WHERE uuid <> 'ok' ORDER BY uuid"
    ).fetchall()
    assert kept == [('zoë "q" \\ é', None), ("u1", None), ("u1", NUL)]
