"""A hand-built day and a half of landed records with known answers, for the dbt tests.

Every identity rule, session status and release-health formula has its own small cast of ids,
so each test checks exact values. Times are UTC on 2026-01-18 ("day 1") and 2026-01-19 ("day 2").
Records are received right after they happen unless a case needs them late.
"""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime, timedelta

from bench.generate import (
    event_record,
    identity_record,
    iso,
    session_end_record,
    session_start_record,
    write_records,
)
from warehouse.layout import Layout

ORG = "org_a"
OTHER_ORG = "org_b"
PROJECT = 1
OTHER_PROJECT = 2
DAY_1 = datetime(2026, 1, 18)
DAY_2 = datetime(2026, 1, 19)
FIRST_HOUR = DAY_1 + timedelta(hours=9)
# The windows the windowed tests run (received time, end exclusive); together they cover every
# record of the scenario, and the last one ends where an unwindowed build's clock ends.
# In reverse, the last two bring a late identify, a retried event's second copy and a late
# session end before the windows holding what they refer to. In order, the third one's clock
# passes s-h's deadline before the fourth brings its late end.
WINDOWS: list[tuple[datetime, datetime]] = [
    (DAY_1, DAY_1 + timedelta(hours=11)),
    (DAY_1 + timedelta(hours=11), DAY_1 + timedelta(hours=13)),
    (DAY_1 + timedelta(hours=13), DAY_2 + timedelta(hours=11)),
    (DAY_2 + timedelta(hours=11), DAY_2 + timedelta(hours=12)),
]
# Landed only by the retention test, after pruning day 1 (see late_identify_after_prune).
AFTER_PRUNE_WINDOW = (datetime(2026, 1, 20, 9), datetime(2026, 1, 20, 10))


def at(day: datetime, hhmm: str, seconds: int = 0) -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return day + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def received(moment: datetime) -> datetime:
    return moment + timedelta(seconds=1)


def stable_uuid(*parts: object) -> str:
    # the same scenario lands the same uuids every time, so separately built warehouses compare
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "|".join(map(repr, parts))))


def _event(
    distinct_id,
    moment,
    event="$pageview",
    properties=None,
    *,
    org=ORG,
    project=PROJECT,
    received_at=None,
    uuid=None,
):
    return event_record(
        org_id=org,
        project_id=project,
        event=event,
        distinct_id=distinct_id,
        timestamp=moment,
        received_at=received_at or received(moment),
        properties=properties,
        uuid=uuid or stable_uuid(org, distinct_id, moment, event, properties),
    )


def _identity(kind, into_id, other_id, moment, *, received_at=None, set=None, set_once=None):
    return identity_record(
        org_id=ORG,
        project_id=PROJECT,
        kind=kind,
        distinct_id=into_id,
        other_id=other_id,
        timestamp=moment,
        received_at=received_at or received(moment),
        set=set,
        set_once=set_once,
        uuid=stable_uuid(kind, into_id, other_id, moment),
    )


def events() -> list[dict]:
    d1 = DAY_1
    return [
        # late identify: u1 was seen on another device first, a1 browsed anonymously
        _event("u1", at(d1, "09:00")),
        _event("a1", at(d1, "10:00")),
        _event("a1", at(d1, "10:20"), "signed_up"),
        _event("u1", at(d1, "12:40"), "checkout_started", {"currency": "USD"}, uuid="dup-1"),
        # ... and the same event retried, landing again an hour later: counted once
        _event(
            "u1",
            at(d1, "12:40"),
            "checkout_started",
            {"currency": "USD"},
            uuid="dup-1",
            received_at=at(d1, "13:05"),
        ),
        _event("u1", at(d1, "12:50"), "checkout_completed", {"currency": "USD", "amount": 20}),
        # identify of an id never seen before: it joins the anonymous person
        _event("a1b", at(d1, "10:00")),
        # property conflict on merge: the person merged into wins
        _event(
            "u2",
            at(d1, "09:10"),
            properties={"$set": {"plan": "pro"}, "$set_once": {"referrer": "seo"}},
        ),
        _event(
            "a2",
            at(d1, "10:10"),
            properties={"$set": {"plan": "free", "theme": "dark"}, "$set_once": {"referrer": "ad"}},
        ),
        _event("a2", at(d1, "11:30"), properties={"$set": {"theme": "light"}}),
        # refused / dangerous merges
        _event("a3", at(d1, "09:00")),
        _event("u3x", at(d1, "09:45")),
        _event("a4", at(d1, "09:00")),
        _event("u4x", at(d1, "09:45")),
        # never-merged ids still get persons of their own
        _event("anonymous", at(d1, "09:00")),
        _event("None", at(d1, "09:00")),
        # arrival order: v9 exists before either identify
        _event("v9", at(d1, "09:00")),
        # $set / $set_once precedence for one person
        _event(
            "u10",
            at(d1, "10:00"),
            properties={"$set_once": {"source": "ad"}, "$set": {"source": "organic"}},
        ),
        _event("u10", at(d1, "10:10"), properties={"$set_once": {"first_page": "/a"}}),
        _event(
            "u10",
            at(d1, "10:05"),
            properties={"$set_once": {"first_page": "/b"}},
            received_at=at(d1, "12:00"),
        ),
        _event(
            "u10",
            at(d1, "10:30"),
            properties={"$set": {"color": "red"}},
            received_at=at(d1, "12:01"),
        ),
        _event("u10", at(d1, "10:20"), properties={"$set": {"color": "blue"}}),
        # funnel: f1 converts fully, f2 stops after step 2, f3 completes too late, f4 out of order
        *_funnel_events(),
        # another org with the same ids: never mixed with org_a
        _event("a1", at(d1, "10:00"), org=OTHER_ORG, project=OTHER_PROJECT),
        _event("u1", at(d1, "10:30"), org=OTHER_ORG, project=OTHER_PROJECT),
        *_person_less_events(),
    ]


PERSON_LESS = {"$process_person_profile": False}


def _person_less_events() -> list[dict]:
    """PostHog's person-less events: pl1's make no person until its own event (in the third
    window) does, pl2's never get one, pl3's join the person that identifies pl3."""
    d1 = DAY_1
    return [
        _event("pl1", at(d1, "10:05"), properties={**PERSON_LESS, "$set": {"plan": "ghost"}}),
        _event("pl1", at(d1, "14:00"), "signed_up"),
        _event("pl2", at(d1, "10:06"), properties={**PERSON_LESS, "$set_once": {"a": 1}}),
        _event("pl3", at(d1, "10:07"), properties=PERSON_LESS),
        _event("u_pl3", at(d1, "10:30")),
    ]


def _funnel_events() -> list[dict]:
    d1 = DAY_1
    flag = "$feature_flag_called"
    return [
        _event(
            "f1",
            at(d1, "09:00"),
            flag,
            {"$feature_flag": "new-checkout", "$feature_flag_response": "test"},
        ),
        _event("f1", at(d1, "09:10"), "viewed_pricing"),
        _event("f1", at(d1, "09:20"), "started_trial"),
        _event("f1", at(d1, "09:30"), "subscribed"),
        _event(
            "f2",
            at(d1, "09:00"),
            flag,
            {"$feature_flag": "new-checkout", "$feature_flag_response": "control"},
        ),
        _event("f2", at(d1, "09:05"), "viewed_pricing"),
        _event("f2", at(d1, "09:15"), "started_trial"),
        _event(
            "f3",
            at(d1, "09:00"),
            flag,
            {"$feature_flag": "new-checkout", "$feature_flag_response": "control"},
        ),
        _event(
            "f3",
            at(d1, "09:01"),
            flag,
            {"$feature_flag": "new-checkout", "$feature_flag_response": "test"},
        ),
        _event("f3", at(d1, "09:10"), "viewed_pricing"),
        _event("f3", at(d1, "09:20"), "started_trial"),
        _event("f3", at(d1 + timedelta(hours=2), "09:20"), "subscribed"),  # after the 1-hour window
        _event(
            "f4",
            at(d1, "09:00"),
            flag,
            {"$feature_flag": "new-checkout", "$feature_flag_response": "test"},
        ),
        _event("f4", at(d1, "09:10"), "started_trial"),
        _event("f4", at(d1, "09:20"), "viewed_pricing"),
    ]


def identities() -> list[dict]:
    d1 = DAY_1
    return [
        _identity("identify", "u1", "a1", at(d1, "12:30"), set={"email": "u1@example.com"}),
        _identity("identify", "u1b", "a1b", at(d1, "12:00")),
        _identity("identify", "u2", "a2", at(d1, "11:00")),
        # a3 is identified as u3, so u3x may not take it ...
        _identity("identify", "u3", "a3", at(d1, "09:30")),
        _identity("identify", "u3x", "a3", at(d1, "10:00")),
        # ... unless it insists
        _identity("identify", "u4", "a4", at(d1, "09:30")),
        _identity("merge_dangerously", "u4x", "a4", at(d1, "10:00")),
        # illegal ids are never merged (PostHog's list, with its casing rules); 'NULL' is legal
        _identity("identify", "u5", "anonymous", at(d1, "10:00")),
        _identity("identify", "u5", "None", at(d1, "10:01")),
        _identity("alias", "u5", "0", at(d1, "10:02")),
        _identity("identify", "u5", "Anonymous", at(d1, "10:03")),
        _identity("identify", "u5", '"guest"', at(d1, "10:04")),
        _identity("identify", "u5", " ", at(d1, "10:05")),
        _identity("identify", "guest", "a5", at(d1, "10:06")),
        _identity("identify", "u5", "NULL", at(d1, "10:07")),
        # chain and cycle
        _identity("alias", "b6", "a6", at(d1, "10:00")),
        _identity("alias", "c6", "b6", at(d1, "10:10")),
        _identity("alias", "d6", "c6", at(d1, "10:20")),
        _identity("alias", "y7", "x7", at(d1, "10:00")),
        _identity("alias", "z7", "y7", at(d1, "10:05")),
        _identity("alias", "x7", "z7", at(d1, "10:10")),
        # shared device s9: u9 identifies first (in event time) but arrives last
        _identity("identify", "v9", "s9", at(d1, "11:00")),
        _identity("identify", "u9", "s9", at(d1, "10:00"), received_at=at(d1, "13:30")),
        # an identity `set` operation: $set wins over $set_once of the same call
        _identity(
            "set", "u10", None, at(d1, "10:40"), set={"tier": "gold"}, set_once={"tier": "silver"}
        ),
        _identity("identify", "u_pl3", "pl3", at(d1, "10:40")),
        # person-less identity operations apply to no person: no link, no property
        {
            **_identity("identify", "u_pl4", "a_pl4", at(d1, "10:40"), set={"x": 1}),
            "properties": PERSON_LESS,
        },
        {
            **_identity("set", "u_pl3", None, at(d1, "10:41"), set={"x": 1}),
            "properties": PERSON_LESS,
        },
    ]


def _session(
    session_id,
    distinct_id,
    release,
    started_at,
    *,
    rate=1.0,
    environment="production",
    end: dict | None = None,
    end_received_at=None,
    org=ORG,
    project=PROJECT,
):
    records = [
        session_start_record(
            org_id=org,
            project_id=project,
            session_id=session_id,
            distinct_id=distinct_id,
            release=release,
            started_at=started_at,
            received_at=received(started_at),
            environment=environment,
            sample_rate=rate,
        )
    ]
    if end is not None:
        ended_at = end.pop("ended_at")
        records.append(
            session_end_record(
                org_id=org,
                project_id=project,
                session_id=session_id,
                ended_at=ended_at,
                received_at=end_received_at or received(ended_at),
                duration_ms=int((ended_at - started_at).total_seconds() * 1000),
                **end,
            )
        )
    return records


def sessions() -> list[dict]:
    d1, d2 = DAY_1, DAY_2
    records: list[dict] = []
    # the release-health spec's example: 1,000 stored sessions at rate 0.1, 50 of them crashed,
    # 1,000 users
    for i in range(1000):
        started = at(d1, "10:00", seconds=i)
        crashed = i < 50
        records += _session(
            f"seed-{i}",
            f"seed-user-{i}",
            "2.0.0",
            started,
            rate=0.1,
            end={
                "ended_at": started + timedelta(minutes=5),
                "status": "crashed" if crashed else "exited",
                "crash_count": 1 if crashed else 0,
            },
        )
    minutes = timedelta(minutes=1)
    records += _session("s-a", "pu1", "1.9.0", at(d1, "10:05"), end={"ended_at": at(d1, "10:35")})
    records += _session(
        "s-b",
        "pu2",
        "1.9.0",
        at(d1, "10:10"),
        end={"ended_at": at(d1, "10:20"), "status": "errored", "error_count": 2},
    )
    records += _session(
        "s-c",
        "pu3",
        "1.9.0",
        at(d1, "10:15"),
        end={"ended_at": at(d1, "10:16"), "status": "crashed", "crash_count": 1},
    )
    records += _session("s-d", "pu4", "1.9.0", at(d1, "10:20"))  # never ends: abnormal after 24 h
    records += _session(
        "s-e",
        "pu5",
        "1.9.0",
        at(d1, "10:25"),
        end={"ended_at": at(d1, "10:26"), "status": "abnormal"},
    )
    # ends after 10 minutes with a handled error, but its end only arrives the next day, after
    # the timeout: abnormal until then, errored once it arrives
    records += _session(
        "s-h",
        "pu7",
        "1.9.0",
        at(d1, "10:40"),
        end={"ended_at": at(d1, "10:50"), "status": "errored", "error_count": 1},
        end_received_at=at(d2, "11:10"),
    )
    # the anonymous a1 and, after identifying, u1: one user
    records += _session("s-j", "a1", "1.9.0", at(d1, "10:30"), end={"ended_at": at(d1, "10:45")})
    records += _session("s-k", "u1", "1.9.0", at(d1, "13:00"), end={"ended_at": at(d1, "13:10")})
    records += _session(
        "s-i",
        "pu1",
        "1.9.0",
        at(d1, "10:05"),
        environment="staging",
        end={"ended_at": at(d1, "10:15")},
    )
    # mixed sample rates in one release: 1 crashed + 3 others at 0.5, 2 at 1.0 -> 1 + 6 + 2 = 9
    for i in range(4):
        started = at(d1, "14:00", seconds=i)
        records += _session(
            f"beta-{i}",
            f"beta-user-{i}",
            "3.0.0-beta",
            started,
            rate=0.5,
            end={
                "ended_at": started + minutes,
                "status": "crashed" if i == 0 else "exited",
                "crash_count": 1 if i == 0 else 0,
            },
        )
    for i in range(4, 6):
        started = at(d1, "14:00", seconds=i)
        records += _session(
            f"beta-{i}",
            f"beta-user-{i}",
            "3.0.0-beta",
            started,
            end={"ended_at": started + minutes},
        )
    # day 2: pu1 again (one user over both days), an active session, and 1.9.0 taking over
    records += _session("s-f", "pu1", "1.9.0", at(d2, "11:00"), end={"ended_at": at(d2, "11:20")})
    records += _session("s-g", "pu6", "1.9.0", at(d2, "11:30"))  # still active at the clock
    for i in range(30):
        started = at(d2, "11:00", seconds=i)
        records += _session(
            f"d2-{i}", f"d2-user-{i}", "1.9.0", started, end={"ended_at": started + minutes}
        )
    records += _session(
        "s-late", "seed-user-late", "2.0.0", at(d2, "11:15"), end={"ended_at": at(d2, "11:25")}
    )
    # another org's session of a release with the same name: never counted with org_a's
    records += _session(
        "s-other-org", "u1", "1.9.0", at(d1, "10:40"), end={"ended_at": at(d1, "10:50")},
        org=OTHER_ORG, project=OTHER_PROJECT,
    )  # fmt: skip
    return records


def late_identify_after_prune() -> list[dict]:
    """pu3 turns out to be pu2 (both day-1 users of 1.9.0), learned after day 1 was pruned."""
    moment = AFTER_PRUNE_WINDOW[0] + timedelta(minutes=10)
    return [_identity("identify", "pu3", "pu2", moment)]


def _warning(name: str, kind: str, received_at: datetime) -> dict:
    """An ingestion warning about event ``name`` (a copy of it lands again with a retry)."""
    return {
        "uuid": stable_uuid("warning", name),
        "org_id": ORG,
        "project_id": PROJECT,
        "received_at": iso(received_at),
        "source": "posthog",
        "ip": None,
        "record_stream": "events",
        "record_uuid": stable_uuid("event", name),
        "kind": kind,
        "field": "timestamp",
        "details": {"value": name},
    }


def ingestion_warnings() -> list[dict]:
    """w1 retried within its hour and again two hours later (each count once, in 10:00), w2 in
    the same hour, w3 on day 2. Sub-hour windows cut at 10:30 split w1's first two copies."""
    d1, d2 = DAY_1, DAY_2
    future, invalid = "event_timestamp_in_future", "ignored_invalid_timestamp"
    return [
        _warning("w1", future, at(d1, "10:05")),
        _warning("w1", future, at(d1, "10:40")),
        _warning("w2", future, at(d1, "10:20")),
        _warning("w1", future, at(d1, "12:10")),
        _warning("w3", invalid, at(d2, "11:30")),
    ]


def land(layout: Layout) -> None:
    """Write the scenario (without the after-prune record) into ``layout``'s landing area."""
    write_records(layout, "events", events(), tag="scenario")
    write_records(layout, "identities", identities(), tag="scenario")
    write_records(layout, "sessions", sessions(), tag="scenario")
    write_records(layout, "ingestion_warnings", ingestion_warnings(), tag="scenario")
