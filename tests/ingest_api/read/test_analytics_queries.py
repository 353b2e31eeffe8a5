"""Persons, events and export over real HTTP, against the hand-built dataset."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_api.read.schemas import EventPage, PersonDetail, PersonList
from tests.ingest_api.read.utils.dataset import DAY, EVENTS_A, Event, at
from tests.ingest_api.read.utils.warehouse import Built
from warehouse.dbt import person_uuid

pytestmark = pytest.mark.slow

# The identity operations are events too, named and shaped as PostHog's SDKs send them: the
# identify's linked id and person properties, the $set's properties, in `properties`.
IDENTITY_EVENTS_A = [
    Event(
        "i1",
        "alice",
        "$identify",
        at(DAY, 9, 30),
        {"$anon_distinct_id": "anon-1", "$set": {"email": "alice@example.com", "plan": "pro"}},
    ),
    Event(
        "i2",
        "bob",
        "$set",
        at(DAY, 9, 40),
        {"$set": {"plan": "free"}, "$set_once": {"first_page": "/docs"}},
    ),
]
ALL_EVENTS_A = EVENTS_A + IDENTITY_EVENTS_A


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def test_person_by_any_distinct_id_is_the_merged_person(
    client_a: httpx.Client, built: Built, published: dict
) -> None:
    org = built.tenants.org_a
    expected = {
        # identify(alice ← anon-1): one person that keeps the id of its first distinct_id
        "person_id": person_uuid(org, "anon-1"),
        "distinct_ids": ["alice", "anon-1"],
        "properties": {"email": "alice@example.com", "plan": "pro"},
        "is_identified": True,
        "created_at": "2026-11-20T09:00:00Z",
        "last_seen_at": "2026-11-20T09:50:00Z",
        "snapshot": published,
    }

    for distinct_id in ("alice", "anon-1"):
        response = client_a.get(f"/api/analytics/persons/{distinct_id}")
        assert response.status_code == 200
        assert response.json() == expected
    bob = client_a.get("/api/analytics/persons/bob").json()
    assert bob == {
        "person_id": person_uuid(org, "bob"),
        "distinct_ids": ["bob"],
        "properties": {"plan": "free", "first_page": "/docs"},
        "is_identified": False,
        "created_at": "2026-11-19T23:59:59Z",
        "last_seen_at": "2026-11-20T09:40:00Z",
        "snapshot": published,
    }
    PersonDetail.model_validate(bob)


def test_unknown_distinct_id_is_404(client_a: httpx.Client) -> None:
    response = client_a.get("/api/analytics/persons/nobody")
    assert response.status_code == 404
    assert "nobody" in response.json()["detail"]


def test_persons_pages_through_every_person_of_the_org_newest_first(
    client_a: httpx.Client, built: Built
) -> None:
    # 2 from events (alice+anon-1, bob) + 166 session users (20 old, 100 user_, 45 legacy, qa)
    first = client_a.get("/api/analytics/persons").json()
    second = client_a.get("/api/analytics/persons", params={"offset": 100}).json()

    PersonList.model_validate(first)
    assert (len(first["persons"]), first["limit"], first["offset"], first["next_offset"]) == (
        100,
        100,
        0,
        100,
    )
    assert (len(second["persons"]), second["next_offset"]) == (68, None)
    ids = [p["person_id"] for p in first["persons"] + second["persons"]]
    assert len(set(ids)) == 168
    created = [p["created_at"] for p in first["persons"] + second["persons"]]
    assert created == sorted(created, reverse=True)
    # The newest person: qa's first session (10:30) is the latest first sighting.
    assert first["persons"][0]["person_id"] == person_uuid(built.tenants.org_a, "qa")
    assert created[-1] == "2026-10-01T10:00:00Z"  # old_0, the oldest


def test_persons_limit_has_a_documented_maximum(client_a: httpx.Client) -> None:
    assert (
        len(client_a.get("/api/analytics/persons", params={"limit": 1000}).json()["persons"]) == 168
    )
    response = client_a.get("/api/analytics/persons", params={"limit": 1001})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "query.limit"


def _expected_event(event, org: str, project: int) -> dict:
    person_of = {"anon-1": "anon-1", "alice": "anon-1", "bob": "bob"}
    return {
        "uuid": f"{org}-{event.uuid}",
        "event": event.event,
        "event_display_name": None,  # all sent with native names
        "distinct_id": event.distinct_id,
        "person_id": person_uuid(org, person_of[event.distinct_id]),
        "properties": event.properties,
        "timestamp": _iso(event.timestamp),
        "environment": "production",
        "project_id": project,
        "session_id": None,
        "device_id": None,
    }


def test_events_newest_first_with_the_person_on_every_event(
    client_a: httpx.Client, built: Built, published: dict
) -> None:
    org, project = built.tenants.org_a, built.tenants.project_a
    page = client_a.get("/api/analytics/events").json()

    EventPage.model_validate(page)
    newest_first = sorted(ALL_EVENTS_A, key=lambda e: e.timestamp, reverse=True)
    # e6 was landed twice (a retry with the same uuid) and is listed once; anon-1's events
    # from before the identify belong to alice's person; the identify and the $set are listed.
    assert page == {
        "events": [_expected_event(event, org, project) for event in newest_first],
        "next_cursor": None,
        "snapshot": published,
    }


def test_events_cursor_pages_without_gaps_or_repeats(client_a: httpx.Client, built: Built) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client_a.get("/api/analytics/events", params=params).json()
        pages += 1
        seen += [event["uuid"].rsplit("-", 1)[1] for event in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert seen == ["e6", "e3", "i2", "i1", "e5", "e4", "e2", "e1", "e0"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"event_name": "$pageview"}, ["e6", "e4", "e2", "e1", "e0"]),
        ({"event_name": "$identify"}, ["i1"]),
        ({"distinct_id": "anon-1"}, ["e2", "e1"]),
        # start inclusive, end exclusive; offsets are converted to UTC
        (
            {"start_date": "2026-11-20T09:10:00Z", "end_date": "2026-11-20T10:45:00+01:00"},
            ["i2", "i1", "e5", "e4", "e2"],
        ),
        ({"event_name": "$pageview", "distinct_id": "bob", "start_date": "2026-11-20"}, ["e4"]),
    ],
)
def test_events_filters(client_a: httpx.Client, params: dict, expected: list[str]) -> None:
    page = client_a.get("/api/analytics/events", params=params).json()
    assert [event["uuid"].rsplit("-", 1)[1] for event in page["events"]] == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"start_date": "yesterday"}, "query.start_date"),
        ({"start_date": "2026-11-21", "end_date": "2026-11-20"}, "end_date"),
        ({"start_date": "0001-01-01T00:00:00+01:00"}, "start_date: must be between"),
        ({"limit": 0}, "query.limit"),
    ],
)
def test_events_bad_parameters_are_400_naming_the_field(
    client_a: httpx.Client, params: dict, field: str
) -> None:
    response = client_a.get("/api/analytics/events", params=params)
    assert response.status_code == 400
    assert field in response.text


EXPORT_RANGE = {"start_date": "2026-11-19T12:00:00Z", "end_date": "2026-11-21T00:00:00Z"}
OLDEST_FIRST = [e.uuid for e in sorted(ALL_EVENTS_A, key=lambda e: e.timestamp)]


def test_export_ndjson_streams_the_range_oldest_first(client_a: httpx.Client, built: Built) -> None:
    org = built.tenants.org_a
    with client_a.stream("GET", "/api/analytics/export", params=EXPORT_RANGE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["transfer-encoding"] == "chunked"
        lines = [orjson.loads(line) for line in response.iter_lines() if line]

    assert [row["uuid"].rsplit("-", 1)[1] for row in lines] == OLDEST_FIRST
    alice_checkout = next(row for row in lines if row["uuid"].endswith("-e3"))
    assert alice_checkout == {
        "uuid": f"{org}-e3",
        "event": "checkout_completed",
        "event_display_name": None,
        "distinct_id": "alice",
        "person_id": person_uuid(org, "anon-1"),
        "properties": {"currency": "EUR", "amount": 42},
        "timestamp": "2026-11-20T09:45:00Z",
        "environment": "production",
        "project_id": built.tenants.project_a,
        "session_id": None,
        "device_id": None,
        "received_at": "2026-11-20T09:45:01Z",
    }


def test_export_csv(client_a: httpx.Client, built: Built) -> None:
    response = client_a.get("/api/analytics/export", params={**EXPORT_RANGE, "format": "csv"})

    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["uuid"].rsplit("-", 1)[1] for row in rows] == OLDEST_FIRST
    # times as in NDJSON and every JSON answer
    assert (rows[0]["timestamp"], rows[0]["received_at"]) == (
        "2026-11-19T23:59:59Z",
        "2026-11-20T00:00:00Z",
    )
    assert orjson.loads(rows[-1]["properties"]) == {"$current_url": "/thanks"}
    assert rows[-1]["person_id"] == person_uuid(built.tenants.org_a, "anon-1")


def test_export_parquet(client_a: httpx.Client) -> None:
    response = client_a.get(
        "/api/analytics/export",
        params={**EXPORT_RANGE, "format": "parquet", "event_name": "$pageview"},
    )

    table = pq.read_table(pa.BufferReader(response.content))
    assert [uuid.rsplit("-", 1)[1] for uuid in table.column("uuid").to_pylist()] == [
        "e0",
        "e1",
        "e2",
        "e4",
        "e6",
    ]
    # timestamp with time zone, UTC: no reader takes them for local times
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("received_at").type == pa.timestamp("us", tz="UTC")
    assert table.column("timestamp")[0].as_py().isoformat() == "2026-11-19T23:59:59+00:00"


def test_export_of_an_empty_range_is_a_valid_empty_file(client_a: httpx.Client) -> None:
    params = {"start_date": "2025-01-01", "end_date": "2025-01-03"}
    parquet = client_a.get("/api/analytics/export", params={**params, "format": "parquet"})
    csv_text = client_a.get("/api/analytics/export", params={**params, "format": "csv"}).text
    ndjson = client_a.get("/api/analytics/export", params=params)

    assert pq.read_table(pa.BufferReader(parquet.content)).num_rows == 0
    assert csv_text.splitlines()[0].startswith('"uuid","event"')
    assert len(csv_text.splitlines()) == 1
    assert (ndjson.status_code, ndjson.content) == (200, b"")


def test_export_needs_a_range(client_a: httpx.Client) -> None:
    response = client_a.get("/api/analytics/export", params={"start_date": "2026-11-20"})
    assert response.status_code == 400
    assert "query.end_date" in response.text


def test_export_reads_the_range_batch_by_batch(built: Built) -> None:
    """The encoder gets one record batch at a time and yields it before reading the next, so
    memory holds a batch, not the range."""
    from ingest_api.read.events import EventFilter
    from ingest_api.read.export import export_events
    from warehouse.published import PublishedMarts

    marts = PublishedMarts(built.layout)
    where = EventFilter(
        built.tenants.org_a, None, None, datetime(2026, 11, 19, 12), datetime(2026, 11, 21)
    )
    chunks = export_events(marts, where, "ndjson", batch_rows=2)
    first = next(chunks)
    assert first.count(b"\n") == 1  # day one: only e0
    rest = list(chunks)
    assert [chunk.count(b"\n") for chunk in rest] == [2, 2, 2, 2]  # day two, in batches of two
    marts.close()
