"""Poison records and broken lines of one org never stop an hour for the others: through the real
hourly job, what cannot be loaded or computed goes to ``raw.quarantined_records`` with its file,
line and reason, the rest of the hour loads and builds, the quarantine check fails, and fixing the
file then rerunning the hour (the documented replay) loads the fixed records and clears it."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from tests.dagster_project.utils.dataset import H1, event, identify, session_end, session_start
from tests.dagster_project.utils.landing import land, record
from tests.dagster_project.utils.pipeline import PipelineWarehouse

pytestmark = pytest.mark.slow

AT = H1 + timedelta(minutes=10)


def other_org(row: dict) -> dict:
    return {**row, "org_id": "org_b", "project_id": 2}


def lines(*rows: dict | bytes) -> bytes:
    return b"".join((row if isinstance(row, bytes) else orjson.dumps(row)) + b"\n" for row in rows)


def replace_file(path: Path, content: bytes) -> None:
    """What an operator does to fix a landing file: write the fixed copy, rename it over."""
    scratch = path.with_name(f".{path.name}.fixing")
    scratch.write_bytes(content)
    os.replace(scratch, path)


def test_poison_records_are_quarantined_and_the_rest_of_the_hour_loads(tmp_path: Path) -> None:
    warehouse = PipelineWarehouse.create(tmp_path / "data")
    layout = warehouse.layout
    good_start = session_start("a-ok", "user-a", "app@2.0", AT)
    huge_errors = {**session_end("a-ok", "errored", AT + timedelta(minutes=5), AT)}
    huge_errors["error_count"] = 2**31  # does not fit the INTEGER column
    tiny_rate = session_start("a-tiny", "user-a", "app@2.0", AT, rate=1e-320)  # weight 1/0
    (sessions_a,) = land(layout, "sessions", [good_start])
    sessions_a.write_bytes(
        lines(good_start, huge_errors, b'{"uuid": "a-trunc', os.urandom(64).replace(b"\n", b"!"))
        + lines(tiny_rate)
    )
    # The other org's sessions and both orgs' events, with one broken line among org_a's events.
    land(
        layout,
        "sessions",
        [
            other_org(session_start("b-1", "user-b", "app@2.0", AT)),
            other_org(session_end("b-1", "crashed", AT + timedelta(minutes=1), AT, crashes=1)),
            other_org(session_start("b-2", "user-b", "app@2.0", AT)),
        ],
    )
    (events_a,) = land(layout, "events", [event("ea1", "org_a", "user-a", "signed_up", AT, AT)])
    events_a.write_bytes(events_a.read_bytes() + b'{"uuid": "ea2", "org_id": "org_a", "proj\n')
    land(layout, "events", [event("eb1", "org_b", "user-b", "purchase", AT, AT)])

    (run,) = warehouse.run(H1)

    assert run.records_quarantined == {
        "events": 1,
        "identities": 0,
        "sessions": 4,
        "session_aggregates": 0,
        "ingestion_warnings": 0,
    }
    assert run.checks_failed == 2  # the quarantine checks of raw_events and raw_sessions
    quarantined = warehouse.query(
        "select stream, regexp_extract(_file, 'org_id=[^/]+'), line_number, reason"
        " from raw.quarantined_records order by stream, line_number"
    )
    random_bytes = quarantined.pop(3)
    assert quarantined == [
        ("events", "org_id=org_a", 2, "not valid JSON"),
        ("sessions", "org_id=org_a", 2, "error_count: 2147483648 does not fit INTEGER"),
        ("sessions", "org_id=org_a", 3, "not valid JSON"),
        ("sessions", "org_id=org_a", 5, "sample_rate: outside [1e-06, 1]"),
    ]
    # 64 random bytes are almost never UTF-8; when they happen to be, they are not JSON.
    assert random_bytes[:3] == ("sessions", "org_id=org_a", 4)
    assert random_bytes[3].startswith(("not UTF-8 text", "not valid JSON"))
    # Everything else of the hour, of both orgs, went all the way to the marts.
    assert warehouse.query("select uuid from analytics.fct_events order by uuid") == [
        ("ea1",),
        ("eb1",),
    ]
    assert warehouse.query(
        "select org_id, session_id, status from analytics.fct_sessions order by session_id"
    ) == [("org_a", "a-ok", "active"), ("org_b", "b-1", "crashed"), ("org_b", "b-2", "active")]
    assert warehouse.query(
        "select org_id, total_sessions, crashed_sessions from analytics.release_health"
        " order by org_id"
    ) == [("org_a", 1, 0), ("org_b", 2, 1)]

    # The replay: the operator fixes the file (drops the garbage, corrects the values) and reruns
    # the hour; the fixed records load and the quarantine of the hour is empty again.
    fixed_errors = {**huge_errors, "error_count": 3}
    fixed_rate = {**tiny_rate, "sample_rate": 0.5}
    replace_file(sessions_a, lines(good_start, fixed_errors, fixed_rate))
    (rerun,) = warehouse.run(H1)

    assert rerun.records_quarantined == {
        "events": 1,
        "identities": 0,
        "sessions": 0,
        "session_aggregates": 0,
        "ingestion_warnings": 0,
    }
    assert rerun.checks_failed == 1
    assert warehouse.query("select count(*) from raw.quarantined_records") == [(1,)]
    assert warehouse.query(
        "select session_id, status, error_count, sample_rate from analytics.fct_sessions"
        " where org_id = 'org_a' order by session_id"
    ) == [("a-ok", "errored", 3, 1.0), ("a-tiny", "active", 0, 0.5)]
    assert warehouse.query(
        "select total_sessions from analytics.release_health where org_id = 'org_a'"
    ) == [(3,)]


NUL = "a\x00b"
GOOD_EVENT = event("ok", "org_a", "u", "signed_up", AT, AT)
GOOD_IDENTIFY = identify("i-ok", "org_a", "u", "anon", AT, AT)
GOOD_START = session_start("s-ok", "u", "app@2.0", AT)
FLAG_EVENT = event("flag", "org_a", "u", "$feature_flag_called", AT, AT, **{"$feature_flag": NUL})
# Records a file written by hand can hold and the API never writes, by stream, with the reason
# each is quarantined for. Before the raw load applied the API's rules, the object and the 5 MB
# id loaded as text, and the first NUL failed the whole hour in dbt, for every org.
HAND_WRITTEN = {
    "events": [
        (
            record("events", uuid="x1", received_at=AT, event="signed_up", distinct_id="u"),
            "org_id: is missing; project_id: is missing",
        ),
        ({**GOOD_EVENT, "distinct_id": NUL}, "distinct_id: holds a control character"),
        ({**GOOD_EVENT, "anonymous_id": NUL}, "anonymous_id: holds a control character"),
        ({**GOOD_EVENT, "device_id": NUL}, "device_id: holds a control character"),
        ({**GOOD_EVENT, "session_id": NUL}, "session_id: holds a control character"),
        ({**GOOD_EVENT, "environment": NUL}, "environment: holds a control character"),
        (
            {**GOOD_EVENT, "event_display_name": NUL},
            "event_display_name: holds a control character",
        ),
        (
            {**GOOD_EVENT, "properties": {"$set": {NUL: 1}}},
            "properties.$set keys: holds a control character",
        ),
        (FLAG_EVENT, "properties.$feature_flag: holds a control character"),
        ({**GOOD_EVENT, "distinct_id": {"id": 1}}, 'distinct_id: {"id":1} does not fit VARCHAR'),
        (
            {**GOOD_EVENT, "distinct_id": "x" * 5_000_000},
            "distinct_id: not 1 to 200 characters long",
        ),
        ({**GOOD_EVENT, "properties": "plan=pro"}, "properties: not a JSON object"),
    ],
    "identities": [
        ({**GOOD_IDENTIFY, "distinct_id": NUL}, "distinct_id: holds a control character"),
        ({**GOOD_IDENTIFY, "other_id": NUL}, "other_id: holds a control character"),
        ({**GOOD_IDENTIFY, "set": {NUL: 1}}, "set keys: holds a control character"),
        (
            {**GOOD_IDENTIFY, "other_id": None, "properties": {"$anon_distinct_id": NUL}},
            "properties.$anon_distinct_id: holds a control character",
        ),
    ],
    "sessions": [
        ({**GOOD_START, "session_id": NUL}, "session_id: holds a control character"),
        ({**GOOD_START, "release": NUL}, "release: holds a control character"),
        ({**GOOD_START, "environment": NUL}, "environment: holds a control character"),
        ({**GOOD_START, "error_count": True}, "error_count: true does not fit INTEGER"),
    ],
}


def test_hand_written_records_breaking_the_api_rules_are_quarantined_and_the_hour_builds(
    tmp_path: Path,
) -> None:
    warehouse = PipelineWarehouse.create(tmp_path / "data")
    good = {"events": GOOD_EVENT, "identities": GOOD_IDENTIFY, "sessions": GOOD_START}
    for stream, bad in HAND_WRITTEN.items():
        (path,) = land(warehouse.layout, stream, [good[stream]])
        path.write_bytes(lines(good[stream], *(line for line, _ in bad)))
    # The other org's hour, in files of its own.
    land(warehouse.layout, "events", [event("b1", "org_b", "buyer", "purchase", AT, AT)])
    land(
        warehouse.layout,
        "identities",
        [other_org(identify("ib", "org_b", "buyer", "anon-b", AT, AT))],
    )
    land(warehouse.layout, "sessions", [other_org(session_start("b-1", "buyer", "app@2.0", AT))])

    (run,) = warehouse.run(H1)

    assert run.records_quarantined == {
        stream: len(HAND_WRITTEN.get(stream, [])) for stream in run.records_quarantined
    }
    quarantined = warehouse.query(
        "select stream, line_number, reason from raw.quarantined_records"
        " order by stream, line_number"
    )
    assert quarantined == [
        (stream, number, reason)
        for stream, bad in sorted(HAND_WRITTEN.items())
        for number, (_, reason) in enumerate(bad, start=2)
    ]
    # Everything else of the hour, of both orgs, went all the way to the marts.
    # (identity operations are events too)
    assert warehouse.query("select org_id, uuid from analytics.fct_events order by uuid") == [
        ("org_b", "b1"),
        ("org_a", "i-ok"),
        ("org_b", "ib"),
        ("org_a", "ok"),
    ]
    assert warehouse.query(
        "select org_id, session_id from analytics.fct_sessions order by session_id"
    ) == [("org_b", "b-1"), ("org_a", "s-ok")]
    assert warehouse.query(
        "select org_id, count(*) from analytics.dim_persons_by_distinct_id"
        " where distinct_id in ('u', 'anon', 'buyer', 'anon-b') group by org_id order by org_id"
    ) == [("org_a", 2), ("org_b", 2)]
