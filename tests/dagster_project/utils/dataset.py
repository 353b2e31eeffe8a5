"""A small, exactly known day of landed traffic for the end-to-end pipeline tests.

Received hour H1 (09:00) and H2 (10:00) of 2026-01-18, two orgs:

* org_a: anonymous ``anon-1`` browses (one pageview is retried: same uuid in two files), then
  identifies as ``user-1`` and purchases; ``anon-2`` browses in H1 and identifies as ``user-2`` in
  H2, where one of its events arrives late (timestamped in H1).
* sessions of release ``app@1.0`` (H1): exited, crashed, and one stored at sample rate 0.5;
  release ``app@1.1`` (H2): one errored session.
* org_b: one identified user with two events, to keep tenants apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.dagster_project.utils.landing import land, record
from warehouse.layout import Layout

H1 = datetime(2026, 1, 18, 9)
H2 = datetime(2026, 1, 18, 10)


def _at(hour: datetime, minute: int) -> datetime:
    return hour + timedelta(minutes=minute)


def event(
    uuid: str,
    org: str,
    distinct_id: str,
    name: str,
    at: datetime,
    received: datetime,
    **properties: Any,
) -> dict:
    return record(
        "events",
        uuid=uuid,
        org_id=org,
        project_id=1 if org == "org_a" else 2,
        received_at=received,
        source="posthog",
        ip="127.0.0.1",
        environment="production",
        event=name,
        distinct_id=distinct_id,
        properties=properties,
        timestamp=at,
    )


def identify(
    uuid: str, org: str, user: str, anonymous: str, at: datetime, received: datetime
) -> dict:
    return record(
        "identities",
        uuid=uuid,
        org_id=org,
        project_id=1 if org == "org_a" else 2,
        received_at=received,
        source="posthog",
        ip="127.0.0.1",
        environment="production",
        kind="identify",
        event="$identify",
        distinct_id=user,
        other_id=anonymous,
        set={"plan": "pro"},
        set_once={},
        properties={},
        timestamp=at,
    )


def session_start(
    session: str, distinct_id: str, release: str, at: datetime, rate: float = 1.0
) -> dict:
    return record(
        "sessions",
        uuid=f"{session}-start",
        org_id="org_a",
        project_id=1,
        received_at=at,
        source="sessions",
        ip="127.0.0.1",
        kind="start",
        session_id=session,
        distinct_id=distinct_id,
        release=release,
        environment="production",
        platform="javascript",
        started_at=at,
        sample_rate=rate,
    )


def session_end(
    session: str, status: str, at: datetime, started: datetime, errors: int = 0, crashes: int = 0
) -> dict:
    return record(
        "sessions",
        uuid=f"{session}-end",
        org_id="org_a",
        project_id=1,
        received_at=at,
        source="sessions",
        ip="127.0.0.1",
        kind="end",
        session_id=session,
        status=status,
        error_count=errors,
        crash_count=crashes,
        ended_at=at,
        duration_ms=int((at - started).total_seconds() * 1000),
    )


def land_hour_1(layout: Layout) -> None:
    a = lambda m: _at(H1, m)  # noqa: E731
    land(
        layout,
        "events",
        [
            event("e1", "org_a", "anon-1", "$pageview", a(1), a(1), path="/"),
            event("e2", "org_a", "anon-1", "$pageview", a(2), a(2), path="/pricing"),
            event("e4", "org_a", "anon-2", "$pageview", a(20), a(20), path="/"),
            event("b1", "org_b", "buyer-9", "signed_up", a(5), a(5)),
        ],
    )
    # The SDK retried e2 after a timeout: the same event lands again in a second file.
    land(
        layout,
        "events",
        [
            event("e2", "org_a", "anon-1", "$pageview", a(2), a(3), path="/pricing"),
            event("e3", "org_a", "user-1", "purchase", a(12), a(12), currency="USD", amount=30),
            event("b2", "org_b", "buyer-9", "purchase", a(6), a(6), currency="EUR", amount=12),
        ],
    )
    land(layout, "identities", [identify("i1", "org_a", "user-1", "anon-1", a(10), a(10))])
    land(
        layout,
        "sessions",
        [
            session_start("s1", "user-1", "app@1.0", a(11)),
            session_end("s1", "exited", a(15), a(11)),
            session_start("s2", "anon-2", "app@1.0", a(20)),
            session_end("s2", "crashed", a(25), a(20), crashes=1),
            session_start("s3", "anon-1", "app@1.0", a(30), rate=0.5),
            session_end("s3", "exited", a(40), a(30)),
        ],
    )


def land_hour_2(layout: Layout) -> None:
    b = lambda m: _at(H2, m)  # noqa: E731
    land(
        layout,
        "events",
        [
            # Sent at 09:58 but received at 10:05: a late record of H2.
            event("e5", "org_a", "anon-2", "$pageview", _at(H1, 58), b(5), path="/docs"),
            event("e6", "org_a", "user-2", "purchase", b(15), b(15), currency="USD", amount=10),
        ],
    )
    land(layout, "identities", [identify("i2", "org_a", "user-2", "anon-2", b(14), b(14))])
    land(
        layout,
        "sessions",
        [
            session_start("s4", "user-2", "app@1.1", b(15)),
            session_end("s4", "errored", b(30), b(15), errors=2),
        ],
    )


def land_late_file_for_hour_1(layout: Layout) -> None:
    """A file for H1 that shows up after H1 was loaded (a flush that straddled the hour)."""
    land(
        layout,
        "events",
        [
            event(
                "e7",
                "org_a",
                "user-1",
                "purchase",
                _at(H1, 59),
                _at(H1, 59),
                currency="USD",
                amount=5,
            )
        ],
    )
