"""Hand-built landed records for the read API tests, with every expected number derived by hand.

Org A (project A), all times UTC:

* Identity and events on 2026-11-20 09:00-09:50 (plus bob's one event just before midnight on
  the 19th): ``anon-1`` browses, then is identified as ``alice``; ``bob`` gets ``$set``
  properties. ``e6`` is retried with the same uuid and counts once. The identify (``i1``) and
  the ``$set`` (``i2``) are events too, as PostHog lists them.
* Sessions (one start and one end record each, the end 30 minutes later):

  ================  ============================  ========  ============  ====  ===============
  release / env     started (2026-…)              sessions  users         rate  crashed
  ================  ============================  ========  ============  ====  ===============
  1.2.2 production  10-01 10:00:00 + 15 s · i     200       old_{i%20}    1.0   i < 10
  1.2.3 production  11-20 10:00:00 + 7 s · k      1,000     user_{k%100}  0.1   k < 50
  1.2.2 production  11-20 10:00:03 + 15 s · j     450       legacy_{j%45} 1.0   none; j<5 erred
  1.2.3 staging     11-20 10:30 + 1 min · q       10        qa            1.0   none
  ================  ============================  ========  ============  ====  ===============

  1.2.3 production is the seed's worked example: 1,000 stored sessions, 50 crashed, rate 0.1 →
  50 + 950 / 0.1 = 9,550 sessions, (9,550 - 50) / 9,550 = 99.48% crash-free.

Org B (project B): ``alice`` (another person than org A's) with one event and five 1.2.3
production sessions, one crashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bench.generate import (
    event_record,
    identity_record,
    session_end_record,
    session_start_record,
    write_records,
)
from warehouse.layout import Layout

OLD_DAY = datetime(2026, 10, 1)
DAY = datetime(2026, 11, 20)
SESSION_LENGTH = timedelta(minutes=30)


@dataclass(frozen=True)
class Session:
    org_id: str
    project_id: int
    session_id: str
    distinct_id: str
    release: str
    environment: str
    started_at: datetime
    sample_rate: float
    status: str
    error_count: int = 0
    crash_count: int = 0

    @property
    def ended_at(self) -> datetime:
        return self.started_at + SESSION_LENGTH


@dataclass(frozen=True)
class Event:
    uuid: str
    distinct_id: str
    event: str
    timestamp: datetime
    properties: dict


def at(day: datetime, hh: int, mm: int, ss: int = 0) -> datetime:
    return day + timedelta(hours=hh, minutes=mm, seconds=ss)


EVENTS_A = [
    Event("e0", "bob", "$pageview", at(DAY - timedelta(days=1), 23, 59, 59), {"$current_url": "/"}),
    Event("e1", "anon-1", "$pageview", at(DAY, 9, 0), {"$current_url": "/home"}),
    Event("e2", "anon-1", "$pageview", at(DAY, 9, 10), {"$current_url": "/pricing"}),
    Event("e4", "bob", "$pageview", at(DAY, 9, 20), {"$current_url": "/docs"}),
    Event("e5", "bob", "button_clicked", at(DAY, 9, 25), {"button_name": "signup"}),
    Event("e3", "alice", "checkout_completed", at(DAY, 9, 45), {"currency": "EUR", "amount": 42}),
    Event("e6", "alice", "$pageview", at(DAY, 9, 50), {"$current_url": "/thanks"}),
]
EVENT_B = Event("b1", "alice", "$pageview", at(DAY, 9, 5), {"$current_url": "/b"})


def sessions_a(org_id: str, project_id: int) -> list[Session]:
    found = []
    for i in range(200):
        crashed = i < 10
        found.append(
            Session(
                org_id,
                project_id,
                f"old-{i:04d}",
                f"old_{i % 20}",
                "1.2.2",
                "production",
                at(OLD_DAY, 10, 0, 15 * i),
                1.0,
                "crashed" if crashed else "exited",
                crash_count=int(crashed),
            )
        )
    for k in range(1000):
        crashed = k < 50
        found.append(
            Session(
                org_id,
                project_id,
                f"s123-{k:04d}",
                f"user_{k % 100}",
                "1.2.3",
                "production",
                at(DAY, 10, 0, 7 * k),
                0.1,
                "crashed" if crashed else "exited",
                crash_count=int(crashed),
            )
        )
    for j in range(450):
        errored = j < 5
        found.append(
            Session(
                org_id,
                project_id,
                f"s122-{j:04d}",
                f"legacy_{j % 45}",
                "1.2.2",
                "production",
                at(DAY, 10, 0, 3 + 15 * j),
                1.0,
                "errored" if errored else "exited",
                error_count=2 if errored else 0,
            )
        )
    for q in range(10):
        found.append(
            Session(
                org_id,
                project_id,
                f"qa-{q:02d}",
                "qa",
                "1.2.3",
                "staging",
                at(DAY, 10, 30 + q),
                1.0,
                "exited",
            )
        )
    return found


def sessions_b(org_id: str, project_id: int) -> list[Session]:
    return [
        Session(
            org_id,
            project_id,
            f"b-{n}",
            "alice",
            "1.2.3",
            "production",
            at(DAY, 10, n),
            1.0,
            "crashed" if n == 0 else "exited",
            crash_count=int(n == 0),
        )
        for n in range(5)
    ]


def _event_record(org_id: str, project_id: int, event: Event, retried: bool = False) -> dict:
    # A retry lands again (same uuid) a minute later; it must count once.
    received = event.timestamp + timedelta(seconds=60 if retried else 1)
    return event_record(
        org_id=org_id,
        project_id=project_id,
        event=event.event,
        distinct_id=event.distinct_id,
        timestamp=event.timestamp,
        received_at=received,
        properties=event.properties,
        uuid=f"{org_id}-{event.uuid}",
    )


def session_records(session: Session) -> list[dict]:
    return [
        session_start_record(
            org_id=session.org_id,
            project_id=session.project_id,
            session_id=session.session_id,
            distinct_id=session.distinct_id,
            release=session.release,
            started_at=session.started_at,
            received_at=session.started_at + timedelta(seconds=1),
            environment=session.environment,
            sample_rate=session.sample_rate,
        ),
        session_end_record(
            org_id=session.org_id,
            project_id=session.project_id,
            session_id=session.session_id,
            ended_at=session.ended_at,
            status=session.status,
            error_count=session.error_count,
            crash_count=session.crash_count,
            duration_ms=int(SESSION_LENGTH.total_seconds() * 1000),
            received_at=session.ended_at + timedelta(seconds=1),
        ),
    ]


def land_dataset(layout: Layout, org_a: str, project_a: int, org_b: str, project_b: int) -> None:
    events = [_event_record(org_a, project_a, event) for event in EVENTS_A]
    events.append(_event_record(org_a, project_a, EVENTS_A[-1], retried=True))
    events.append(_event_record(org_b, project_b, EVENT_B))
    write_records(layout, "events", events, tag="read")
    identities = [
        identity_record(
            org_id=org_a,
            project_id=project_a,
            kind="identify",
            uuid=f"{org_a}-i1",
            distinct_id="alice",
            other_id="anon-1",
            timestamp=at(DAY, 9, 30),
            received_at=at(DAY, 9, 30, 1),
            set={"email": "alice@example.com", "plan": "pro"},
        ),
        identity_record(
            org_id=org_a,
            project_id=project_a,
            kind="set",
            uuid=f"{org_a}-i2",
            distinct_id="bob",
            timestamp=at(DAY, 9, 40),
            received_at=at(DAY, 9, 40, 1),
            set={"plan": "free"},
            set_once={"first_page": "/docs"},
        ),
    ]
    write_records(layout, "identities", identities, tag="read")
    sessions = sessions_a(org_a, project_a) + sessions_b(org_b, project_b)
    write_records(layout, "sessions", [r for s in sessions for r in session_records(s)], tag="read")
