"""The seeded traffic of the exactness test: a few dozen people, sent in two phases.

Each person follows one story (anonymous; identified; identified late, in phase 2, with or
without a known user id; an aliased second device; a refused identify; late history of an
identified user) told as operations on the SDK and the session endpoints. Phase 2 is received an
hour after phase 1 and holds the late identifies, late events and retries of phase-1 requests.
The plan only says what to send; what was actually sent is logged by :mod:`.sending`, and the
expectations are computed from that log (:mod:`.oracle`).
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from loom.demo import PLATFORMS, RELEASES, SAMPLE_RATE, SAMPLED_RELEASE, page_or_checkout

SEED = 20261126
CRASH_RATE = 0.15  # high for a small sample, so that every release has crashes
ERROR_RATE = 0.15
STAGING_RELEASE, STAGING_SHARE = RELEASES[-1], 0.3
STORIES = (
    ("anonymous", 9),
    ("identified", 7),
    ("late_identify_known_user", 4),
    ("late_identify_new_user", 3),
    ("aliased_device", 4),
    ("refused_identify", 2),
    ("late_history", 3),
)


@dataclass(frozen=True)
class PlannedEvent:
    seq: int  # also sent as properties.seq: it names the event whatever its uuid
    uuid: str | None  # None: sent without one (the server derives it from the request)
    name: str
    distinct_id: str
    at: datetime
    properties: dict[str, Any]


@dataclass(frozen=True)
class PlannedSession:
    session_id: str
    distinct_id: str
    release: str
    environment: str
    platform: str
    started_at: datetime
    sample_rate: float
    status: str  # exited | errored | crashed
    ended_at: datetime


@dataclass(frozen=True)
class Capture:
    event: PlannedEvent


@dataclass(frozen=True)
class RawBatch:
    """PostHog's ``/batch/`` body without uuids, as a client without the SDK sends it."""

    events: tuple[PlannedEvent, ...]


@dataclass(frozen=True)
class Identify:
    uuid: str
    distinct_id: str
    anon_distinct_id: str
    at: datetime


@dataclass(frozen=True)
class Alias:
    uuid: str
    previous_id: str
    distinct_id: str
    at: datetime


@dataclass(frozen=True)
class SetProperties:
    uuid: str
    distinct_id: str
    properties: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class SessionStart:
    session: PlannedSession


@dataclass(frozen=True)
class SessionEnd:
    session: PlannedSession


Operation = Capture | RawBatch | Identify | Alias | SetProperties | SessionStart | SessionEnd


@dataclass
class Plan:
    phase_1: list[Operation] = field(default_factory=list)
    phase_2: list[Operation] = field(default_factory=list)


def plan_traffic(origin: datetime) -> Plan:
    """The seeded traffic; ``origin`` is the start of the hour phase 1 is received in (aware
    UTC). Every timestamp lies before its phase is received, most of them hours before."""
    return _Planner(origin).plan()


class _Planner:
    def __init__(self, origin: datetime) -> None:
        self.rng = random.Random(SEED)
        self.origin = origin
        self.out = Plan()
        self.seq = itertools.count(1)
        self.people = itertools.count(1)

    def plan(self) -> Plan:
        for story, count in STORIES:
            for _ in range(count):
                getattr(self, story)(next(self.people))
        self.retries_and_stragglers()
        return self.out

    # ------------------------------------------------------------------ helpers

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def anon_id(self) -> str:
        return f"anon-{self.rng.getrandbits(40):010x}"

    def moment(self, start: datetime, span: timedelta) -> datetime:
        return start + timedelta(milliseconds=self.rng.randrange(span // timedelta(milliseconds=1)))

    def first_seen(self) -> datetime:
        """When a person's story starts: 1.5 to 7 hours before phase 1 is received."""
        return self.moment(self.origin - timedelta(hours=7), timedelta(hours=5, minutes=30))

    def make_events(
        self, distinct_id: str, start: datetime, count: int, *, with_uuids: bool = True
    ) -> tuple[PlannedEvent, ...]:
        """``count`` events of ``distinct_id`` within 20 minutes from ``start``."""
        moments = sorted(self.moment(start, timedelta(minutes=20)) for _ in range(count))
        events = []
        for step, at in enumerate(moments):
            name, properties = page_or_checkout(self.rng, step)
            seq = next(self.seq)
            event_uuid = self.uuid() if with_uuids else None
            events.append(
                PlannedEvent(seq, event_uuid, name, distinct_id, at, {**properties, "seq": seq})
            )
        return tuple(events)

    def events(
        self, phase: list[Operation], distinct_id: str, start: datetime, count: int
    ) -> list[PlannedEvent]:
        """``count`` events captured through the SDK, each with its own uuid."""
        events = self.make_events(distinct_id, start, count)
        phase.extend(Capture(event) for event in events)
        return list(events)

    def sessions(self, phase: list[Operation], during: list[PlannedEvent]) -> None:
        """One to three sessions, each started just before one of ``during``'s events, by its
        distinct_id; sampled-out sessions of the sampled release are not sent at all."""
        for anchor in self.rng.sample(during, min(len(during), self.rng.randint(1, 3))):
            session = self.session(anchor)
            if session is not None:
                phase.extend((SessionStart(session), SessionEnd(session)))

    def session(self, anchor: PlannedEvent) -> PlannedSession | None:
        release = self.rng.choice(RELEASES)
        crashed = self.rng.random() < CRASH_RATE
        rate = SAMPLE_RATE if release == SAMPLED_RELEASE else 1.0
        sampled_in = self.rng.random() < rate
        if not crashed and not sampled_in:  # crashed sessions are always sent
            return None
        status = "crashed" if crashed else "errored" if self.rng.random() < ERROR_RATE else "exited"
        staging = release == STAGING_RELEASE and self.rng.random() < STAGING_SHARE
        started_at = anchor.at - timedelta(seconds=1)
        return PlannedSession(
            session_id=f"ses-{self.rng.getrandbits(64):016x}",
            distinct_id=anchor.distinct_id,
            release=release,
            environment="staging" if staging else "production",
            platform=self.rng.choice(PLATFORMS),
            started_at=started_at,
            sample_rate=rate,
            status=status,
            ended_at=self.moment(started_at + timedelta(seconds=30), timedelta(minutes=20)),
        )

    def identify(self, phase: list[Operation], user: str, anon: str, at: datetime) -> None:
        phase.append(Identify(self.uuid(), user, anon, at))
        plan = self.rng.choice(("free", "pro", "team"))
        phase.append(SetProperties(self.uuid(), user, {"plan": plan}, at))

    # ------------------------------------------------------------------ stories

    def anonymous(self, person: int) -> None:
        anon, start = self.anon_id(), self.first_seen()
        events = self.events(self.out.phase_1, anon, start, self.rng.randint(3, 8))
        self.sessions(self.out.phase_1, events)

    def identified_in_phase_1(self, person: int) -> tuple[str, str, datetime, list[PlannedEvent]]:
        """Anonymous events, an identify 25 minutes in, then events as the user."""
        anon, user, start = self.anon_id(), f"user-{person:03d}", self.first_seen()
        events = self.events(self.out.phase_1, anon, start, self.rng.randint(2, 5))
        identified_at = start + timedelta(minutes=25)
        self.identify(self.out.phase_1, user, anon, identified_at)
        events += self.events(
            self.out.phase_1, user, identified_at + timedelta(minutes=1), self.rng.randint(2, 5)
        )
        return anon, user, identified_at, events

    def identified(self, person: int) -> None:
        *_, events = self.identified_in_phase_1(person)
        self.sessions(self.out.phase_1, events)

    def late_identify_known_user(self, person: int) -> None:
        """The user id was active on another device before; the identify of the anonymous id
        arrives only in phase 2, so the user's person takes the anonymous events then."""
        anon, user, start = self.anon_id(), f"user-{person:03d}", self.first_seen()
        device = self.events(
            self.out.phase_1, user, start - timedelta(hours=1), self.rng.randint(2, 3)
        )
        anonymous = self.events(self.out.phase_1, anon, start, self.rng.randint(3, 5))
        self.sessions(self.out.phase_1, device + anonymous)
        identified_at = start + timedelta(minutes=25)
        self.identify(self.out.phase_2, user, anon, identified_at)
        after = self.events(
            self.out.phase_2, user, identified_at + timedelta(minutes=1), self.rng.randint(2, 3)
        )
        self.sessions(self.out.phase_2, after)

    def late_identify_new_user(self, person: int) -> None:
        """A first-time user id, identified in phase 2: it joins the anonymous person."""
        anon, user, start = self.anon_id(), f"user-{person:03d}", self.first_seen()
        anonymous = self.events(self.out.phase_1, anon, start, self.rng.randint(3, 5))
        self.sessions(self.out.phase_1, anonymous)
        identified_at = start + timedelta(minutes=25)
        self.identify(self.out.phase_2, user, anon, identified_at)
        after = self.events(
            self.out.phase_2, user, identified_at + timedelta(minutes=1), self.rng.randint(2, 3)
        )
        self.sessions(self.out.phase_2, after)

    def aliased_device(self, person: int) -> None:
        """After identifying, the user aliases a new device, whose events follow."""
        _, user, identified_at, events = self.identified_in_phase_1(person)
        device, aliased_at = f"device-{person:03d}", identified_at + timedelta(minutes=25)
        self.out.phase_1.append(Alias(self.uuid(), device, user, aliased_at))
        events += self.events(
            self.out.phase_1, device, aliased_at + timedelta(minutes=1), self.rng.randint(2, 3)
        )
        self.sessions(self.out.phase_1, events)

    def refused_identify(self, person: int) -> None:
        """A second user, active before, identifies with an anonymous id already identified as
        the first: the merge is refused and the second user stays a person of its own."""
        anon, _, identified_at, events = self.identified_in_phase_1(person)
        other = f"user-{person:03d}-b"
        events += self.events(
            self.out.phase_1, other, identified_at - timedelta(minutes=50), self.rng.randint(2, 3)
        )
        self.identify(self.out.phase_1, other, anon, identified_at + timedelta(minutes=25))
        self.sessions(self.out.phase_1, events)

    def late_history(self, person: int) -> None:
        """Identified in phase 1 with a new user id; in phase 2 that user's older events from
        an offline device arrive, so the user id existed before the identify after all."""
        _, user, identified_at, events = self.identified_in_phase_1(person)
        self.sessions(self.out.phase_1, events)
        offline = self.events(
            self.out.phase_2, user, identified_at - timedelta(minutes=40), self.rng.randint(2, 3)
        )
        self.sessions(self.out.phase_2, offline)

    # ------------------------------------------------------------------ retries

    def retries_and_stragglers(self) -> None:
        phase_1, phase_2 = self.out.phase_1, self.out.phase_2
        captures = [op for op in phase_1 if isinstance(op, Capture)]
        starts = [op.session for op in phase_1 if isinstance(op, SessionStart)]
        # Requests that succeeded, sent again: in the same hour and in the next one.
        phase_1.extend(self.rng.sample(captures, 3))
        phase_2.extend(self.rng.sample(captures, 2))
        retried_now, retried_later, ends_later, never_ends = self.rng.sample(starts, 4)
        phase_1.extend((SessionStart(retried_now), SessionEnd(retried_now)))
        phase_2.append(SessionEnd(retried_later))
        # A session whose end arrives an hour after its start, and says it crashed.
        phase_1.remove(SessionEnd(ends_later))
        phase_2.append(SessionEnd(replace(ends_later, status="crashed")))
        # A session that never ends: still active when the pipeline runs.
        phase_1.remove(SessionEnd(never_ends))
        # Events without uuids, sent twice in phase 1 and once more in phase 2: byte-identical
        # requests, so the server derives the same uuids each time.
        anon = self.anon_id()
        events = self.make_events(anon, self.first_seen(), 4, with_uuids=False)
        phase_1.extend((RawBatch(events), RawBatch(events)))
        phase_2.append(RawBatch(events))
