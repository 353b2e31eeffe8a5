"""What the read API must answer, computed in plain Python from the log of what was sent.

Nothing here reads the warehouse or reuses its SQL: the identity rules, the session merge and the
release-health formulas are written again from docs/warehouse-models.md ("Identity rules",
"Release health", "Incremental design") and the release-health spec. The only shared piece is
``person_uuid``, the documented name of a person (a UUIDv5 of ``'<org_id>:<founder>'``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.end_to_end.utils.sending import SentLink, SentLog
from warehouse.dbt import person_uuid

PersonOf = Callable[[str], str]  # distinct_id -> person_id


@dataclass(frozen=True)
class ExpectedEvent:
    uuid: str | None  # None: made by the server, not known here
    event: str
    distinct_id: str
    person_id: str
    timestamp: datetime


@dataclass(frozen=True)
class ExpectedPerson:
    person_id: str
    distinct_ids: tuple[str, ...]  # sorted
    is_identified: bool
    properties: dict[str, Any]


@dataclass(frozen=True)
class Expected:
    # events by seq; identity operations, which are events too, by uuid
    events: dict[int | str, ExpectedEvent]
    persons: dict[str, ExpectedPerson]  # by each of its distinct_ids
    releases: dict[tuple[str, str], dict[str, Any]]  # (release, environment) -> detail fields


def expect(org_id: str, sent: SentLog) -> Expected:
    founders, identified = replay_identities(sent)

    def person_of(distinct_id: str) -> str:
        return person_uuid(org_id, founders.get(distinct_id, distinct_id))

    events: dict[int | str, ExpectedEvent] = {}
    for event in sent.events:
        expected = ExpectedEvent(
            event.uuid,
            event.event,
            event.distinct_id,
            person_of(event.distinct_id),
            event.timestamp,
        )
        assert events.setdefault(event.seq, expected) == expected, f"seq {event.seq} sent twice"
    # Each identify, alias and $set is one event under PostHog's name (retries: once).
    operations = [(op.uuid, op.event, op.distinct_id, op.timestamp) for op in sent.links]
    operations += [(op.uuid, "$set", op.distinct_id, op.timestamp) for op in sent.property_sets]
    for uuid, name, distinct_id, timestamp in operations:
        events[uuid] = ExpectedEvent(uuid, name, distinct_id, person_of(distinct_id), timestamp)
    return Expected(
        events,
        persons(org_id, sent, founders, identified),
        release_health(sent, person_of),
    )


# ---------------------------------------------------------------------------------------- identity


def first_sightings(sent: SentLog) -> dict[str, datetime]:
    """When each distinct_id was first seen: as an event's actor, an identity operation's actor
    or linked id, or a session's user at its start."""
    seen: dict[str, datetime] = {}

    def sight(distinct_id: str, at: datetime) -> None:
        seen[distinct_id] = min(at, seen.get(distinct_id, at))

    for event in sent.events:
        sight(event.distinct_id, event.timestamp)
    for link in sent.links:
        sight(link.distinct_id, link.timestamp)
        sight(link.other_id, link.timestamp)
    for write in sent.property_sets:
        sight(write.distinct_id, write.timestamp)
    for start in sent.session_starts:
        sight(start.distinct_id, start.started_at)
    return seen


def replay_identities(sent: SentLog) -> tuple[dict[str, str], set[str]]:
    """PostHog's merge rules, applied link by link in event time (then uuid): each linked id's
    founder, and the founders of identified persons."""
    seen = first_sightings(sent)
    links: dict[str, SentLink] = {link.uuid: link for link in sent.links}  # retries: once
    founders: dict[str, str] = {}
    identified: set[str] = set()

    def founder_at(distinct_id: str, at: datetime) -> str | None:
        """The person an id belongs to when a link happens: its assignment, or its own if it
        was seen strictly before, or none yet."""
        if distinct_id in founders:
            return founders[distinct_id]
        if seen[distinct_id] < at:
            founders[distinct_id] = distinct_id
            return distinct_id
        return None

    for link in sorted(links.values(), key=lambda link: (link.timestamp, link.uuid)):
        into, other = link.distinct_id, link.other_id
        if into == other:
            continue
        into_founder = founder_at(into, link.timestamp)
        other_founder = founder_at(other, link.timestamp)
        if other_founder is None:  # a new person with both, or the other id joins the event's
            survivor = into_founder or into
            founders[into] = founders[other] = survivor
        elif into_founder is None:  # the event's id joins the other's person
            survivor = founders[into] = other_founder
        elif into_founder == other_founder or other_founder in identified:
            survivor = into_founder  # already one person, or the merge is refused
        else:  # the event's person absorbs the other
            for distinct_id, founder in founders.items():
                if founder == other_founder:
                    founders[distinct_id] = into_founder
            identified.discard(other_founder)
            survivor = into_founder
        identified.add(survivor)
    return founders, identified


def persons(
    org_id: str, sent: SentLog, founders: dict[str, str], identified: set[str]
) -> dict[str, ExpectedPerson]:
    members: dict[str, list[str]] = defaultdict(list)
    for distinct_id in first_sightings(sent):
        members[founders.get(distinct_id, distinct_id)].append(distinct_id)
    properties: dict[str, dict[str, Any]] = defaultdict(dict)
    writes = {write.uuid: write for write in sent.property_sets}.values()
    for write in sorted(writes, key=lambda write: write.timestamp):
        person = properties[founders.get(write.distinct_id, write.distinct_id)]
        for name, value in write.properties.items():
            # Conflicting writes to one merged person follow merge-side rules this oracle does
            # not model; the scenario never makes them.
            assert person.setdefault(name, value) == value, f"conflicting writes of {name}"
    by_distinct_id = {}
    for founder, distinct_ids in members.items():
        person = ExpectedPerson(
            person_uuid(org_id, founder),
            tuple(sorted(distinct_ids)),
            founder in identified,
            properties[founder],
        )
        by_distinct_id |= dict.fromkeys(distinct_ids, person)
    return by_distinct_id


# ---------------------------------------------------------------------------------- release health


@dataclass(frozen=True)
class StoredSession:
    release: str
    environment: str
    person_id: str
    started_at: datetime
    sample_rate: float
    crashed: bool
    errored: bool
    duration_ms: int | None  # none without an end

    @property
    def weight(self) -> float:
        """Crashed sessions are always sent; any other stands for 1 / sample_rate."""
        return 1.0 if self.crashed else 1.0 / self.sample_rate


def stored_sessions(sent: SentLog, person_of: PersonOf) -> list[StoredSession]:
    """One per session_id: its first start and first end (a retry changes nothing); a session
    without an end is active (the pipeline's clock is far from the 24 h timeout)."""
    starts, ends = {}, {}
    for start in sent.session_starts:
        starts.setdefault(start.session_id, start)
    for end in sent.session_ends:
        ends.setdefault(end.session_id, end)
    sessions = []
    for session_id, start in starts.items():
        end = ends.get(session_id)
        crashed = end is not None and (end.crash_count > 0 or end.status == "crashed")
        errored = (
            end is not None and not crashed and (end.error_count > 0 or end.status == "errored")
        )
        sessions.append(
            StoredSession(
                start.release,
                start.environment,
                person_of(start.distinct_id),
                start.started_at,
                start.sample_rate,
                crashed,
                errored,
                None if end is None else end.duration_ms,
            )
        )
    return sessions


def release_health(sent: SentLog, person_of: PersonOf) -> dict[tuple[str, str], dict[str, Any]]:
    """Each release's whole-history health, as ``GET /releases/{version}`` answers it."""
    by_release: dict[tuple[str, str], list[StoredSession]] = defaultdict(list)
    for session in stored_sessions(sent, person_of):
        by_release[(session.release, session.environment)].append(session)
    environment_sessions: dict[str, float] = defaultdict(float)
    for (_, environment), sessions in by_release.items():
        environment_sessions[environment] += sum(session.weight for session in sessions)
    health = {}
    for (release, environment), sessions in by_release.items():
        adjusted = sum(session.weight for session in sessions)
        crashed = sum(session.crashed for session in sessions)
        users: dict[str, list[StoredSession]] = defaultdict(list)
        for session in sessions:
            users[session.person_id].append(session)
        crashed_users = sum(any(s.crashed for s in user) for user in users.values())
        adjusted_users = sum(
            1.0 if any(s.crashed for s in user) else 1.0 / max(s.sample_rate for s in user)
            for user in users.values()
        )
        adoption = 100.0 * adjusted / environment_sessions[environment]
        errored = sum(session.weight for session in sessions if session.errored)
        timed = [session for session in sessions if session.duration_ms is not None]
        timed_weight = sum(session.weight for session in timed)
        health[(release, environment)] = {
            "release": release,
            "environment": environment,
            "crash_free_session_rate": round_like_the_api(100.0 * (adjusted - crashed) / adjusted),
            "crash_free_user_rate": round_like_the_api(
                100.0 * (adjusted_users - crashed_users) / adjusted_users
            ),
            "adoption_rate": round_like_the_api(adoption),
            # Whole history: no earlier day to have been adopted on, so under 5 % is "new".
            "adoption_stage": "adopted"
            if adoption >= 50
            else "growing"
            if adoption >= 5
            else "new",
            "total_sessions": int(round_like_the_api(adjusted, 0)),
            "crashed_sessions": crashed,
            "total_users": int(round_like_the_api(adjusted_users, 0)),
            "crashed_users": crashed_users,
            "first_seen": min(session.started_at for session in sessions),
            "last_seen": max(session.started_at for session in sessions),
            "crash_free_rate_trend": None,  # no window before the whole history
            # All traffic is within the last 24 hours: current adoption is the whole history's,
            # with no earlier day to have peaked on.
            "current_adoption_rate": round_like_the_api(adoption),
            "peak_adoption_rate": None,
            "error_rate": round_like_the_api(100.0 * errored / adjusted),
            "avg_duration_ms": int(
                round_like_the_api(sum(s.weight * s.duration_ms for s in timed) / timed_weight, 0)
            )
            if timed_weight
            else None,
        }
    return health


def round_like_the_api(value: float, digits: int = 2) -> float:
    """DuckDB's ``round(double, 2)``: the value times 100, rounded half away from zero (not
    Python's ``round``, which rounds the binary value half to even), divided by 100."""
    scale = 10.0**digits
    magnitude = abs(value * scale)
    whole = math.floor(magnitude)
    return math.copysign(whole + (magnitude - whole >= 0.5), value) / scale
