"""Seeded generator of landing files: events, identities and sessions over a span of days.

It writes exactly what the ingest API lands (columns of :mod:`warehouse.streams`, NDJSON files in
:meth:`warehouse.layout.Layout.hour_dir` of the hour each record was *received*, written to a
dot-file and renamed), so everything downstream runs on it unchanged::

    from bench.generate import generate
    summary = generate(layout, events=100_000, sessions=10_000, days=7, seed=1, orgs=2)

or ``python -m bench.generate --events 100000 --sessions 10000 --days 7`` (into ``LOOM_DATA_DIR``).
From the command line the span ends as late as it can while every record is received by now
(:data:`LATEST_RECEIPT` before the current hour): the pipeline's hourly partitions end at the
current hour, so a record received in the future would wait that long for its first run. A
``--start`` that would receive records after now is refused.

The traffic: anonymous visitors, a share of whom identify later (``$identify`` with
``$anon_distinct_id``, after which they track under their user id) and a few of whom alias a second
device; person properties via ``$set`` / ``$set_once``; a checkout funnel with currencies; a
feature flag with two variants; some events arriving hours late and some retried (same uuid, a
later received hour). Sessions run on releases whose adoption rises over the span, with handled
errors, crashes, sessions that never end, and one release sampled at 0.1 (its crashed sessions
are always stored, the others kept with probability 0.1).

The record builders (:func:`event_record`, :func:`identity_record`, :func:`session_start_record`,
:func:`session_end_record`) and :func:`write_records` are for hand-built test data.
"""

from __future__ import annotations

import argparse
import os
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
from tqdm import tqdm

from warehouse.layout import Layout, floor_hour, naive_utc
from warehouse.registry import Project, Registry
from warehouse.streams import STREAM_COLUMNS

DEFAULT_START = datetime(2026, 1, 1)
# The longest a record waits between happening and being received: an event up to 30 h late,
# then retried up to 90 min later.
LATEST_RECEIPT = timedelta(hours=32)
RELEASES = ("1.0.0", "1.1.0", "1.2.0")
SAMPLED_RELEASE = "1.1.0"
SAMPLED_RATE = 0.1
FEATURE_FLAG = "new-checkout"
PLATFORMS = ("javascript", "node", "rust", "python")
_LINES_PER_FILE = 50_000


# -- record builders ---------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """A naive UTC datetime as the landing files write it (``2026-01-18T12:00:00.000000Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _common(
    org_id: str, project_id: int, received_at: datetime, source: str, record_uuid: str | None
):
    return {
        "uuid": record_uuid or str(uuid.uuid4()),
        "org_id": org_id,
        "project_id": project_id,
        "received_at": iso(received_at),
        "source": source,
        "ip": "127.0.0.1",
    }


def event_record(
    *,
    org_id: str,
    project_id: int,
    event: str,
    distinct_id: str | None,
    timestamp: datetime,
    received_at: datetime | None = None,
    properties: dict | None = None,
    uuid: str | None = None,
    environment: str = "production",
    session_id: str | None = None,
    device_id: str | None = None,
    anonymous_id: str | None = None,
    source: str = "native",
) -> dict:
    return {
        **_common(org_id, project_id, received_at or timestamp, source, uuid),
        "environment": environment,
        "event": event,
        "event_display_name": None,
        "distinct_id": distinct_id,
        "anonymous_id": anonymous_id,
        "device_id": device_id,
        "session_id": session_id,
        "properties": properties if properties is not None else {},
        "timestamp": iso(timestamp),
        "client_time": None,
    }


_IDENTITY_EVENTS = {
    "identify": "$identify",
    "alias": "$create_alias",
    "merge_dangerously": "$merge_dangerously",
    "set": "$set",
}


def identity_record(
    *,
    org_id: str,
    project_id: int,
    kind: str,
    distinct_id: str,
    timestamp: datetime,
    other_id: str | None = None,
    received_at: datetime | None = None,
    set: dict | None = None,
    set_once: dict | None = None,
    uuid: str | None = None,
    environment: str = "production",
    source: str = "native",
) -> dict:
    return {
        **_common(org_id, project_id, received_at or timestamp, source, uuid),
        "environment": environment,
        "kind": kind,
        "event": _IDENTITY_EVENTS[kind],
        "distinct_id": distinct_id,
        "other_id": other_id,
        "set": set,
        "set_once": set_once,
        "properties": {},
        "timestamp": iso(timestamp),
        "client_time": None,
    }


def _session_uuid(org_id: str, session_id: str, kind: str) -> str:
    # deterministic per (org, session, kind), as the landing contract has it
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"loom-session:{org_id}:{session_id}:{kind}"))


def session_start_record(
    *,
    org_id: str,
    project_id: int,
    session_id: str,
    distinct_id: str,
    release: str | None,
    started_at: datetime,
    received_at: datetime | None = None,
    environment: str = "production",
    platform: str = "javascript",
    sample_rate: float = 1.0,
) -> dict:
    return {
        **_common(
            org_id,
            project_id,
            received_at or started_at,
            "sessions",
            _session_uuid(org_id, session_id, "start"),
        ),
        "kind": "start",
        "session_id": session_id,
        "distinct_id": distinct_id,
        "release": release,
        "environment": environment,
        "platform": platform,
        "started_at": iso(started_at),
        "sample_rate": sample_rate,
        "status": None,
        "error_count": None,
        "crash_count": None,
        "ended_at": None,
        "duration_ms": None,
        "client_time": None,
    }


def session_end_record(
    *,
    org_id: str,
    project_id: int,
    session_id: str,
    ended_at: datetime,
    status: str = "exited",
    error_count: int = 0,
    crash_count: int = 0,
    duration_ms: int | None = None,
    received_at: datetime | None = None,
) -> dict:
    return {
        **_common(
            org_id,
            project_id,
            received_at or ended_at,
            "sessions",
            _session_uuid(org_id, session_id, "end"),
        ),
        "kind": "end",
        "session_id": session_id,
        "distinct_id": None,
        "release": None,
        "environment": None,
        "platform": None,
        "started_at": None,
        "sample_rate": None,
        "status": status,
        "error_count": error_count,
        "crash_count": crash_count,
        "ended_at": iso(ended_at),
        "duration_ms": duration_ms,
        "client_time": None,
    }


def write_records(
    layout: Layout, stream: str, records: Iterable[dict], *, tag: str = "gen"
) -> list[Path]:
    """Land ``records`` as the ingest API would: one or more files per (org, received hour)."""
    columns = tuple(STREAM_COLUMNS[stream])
    groups: dict[tuple[str, datetime], list[bytes]] = defaultdict(list)
    for record in records:
        if tuple(record) != columns:
            raise ValueError(
                f"{stream} record keys {sorted(record)} differ from the contract {sorted(columns)}"
            )
        received = datetime.strptime(record["received_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        groups[(record["org_id"], floor_hour(received))].append(orjson.dumps(record))
    written = []
    for (org_id, hour), lines in sorted(groups.items()):
        folder = layout.hour_dir(stream, org_id, hour)
        folder.mkdir(parents=True, exist_ok=True)
        for chunk_start in range(0, len(lines), _LINES_PER_FILE):
            chunk = lines[chunk_start : chunk_start + _LINES_PER_FILE]
            name = f"part-{hour:%Y%m%dT%H%M%SZ}-{tag}-{chunk_start // _LINES_PER_FILE:04d}.ndjson"
            written.append(_write_atomically(folder / name, b"\n".join(chunk) + b"\n"))
    return written


def _write_atomically(path: Path, payload: bytes) -> Path:
    # the landing contract: readers only ever see complete files
    scratch = path.with_name(f".{path.name}.tmp")
    with open(scratch, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


# -- the generator -----------------------------------------------------------------------------
# Built for volume (the read-API benchmark lands ten million events): moments are integer
# microseconds since the epoch, formatted through a per-minute cache, and records go straight to
# per-(stream, org, received hour) buffers as NDJSON lines.

_EPOCH = datetime(1970, 1, 1)
_US_PER_HOUR = 3_600_000_000
_US_PER_MINUTE = 60_000_000


@dataclass
class GeneratedData:
    """What :func:`generate` wrote."""

    start: datetime
    end: datetime
    orgs: list[str]
    projects: dict[str, int]  # org_id -> project_id
    events: int = 0
    identities: int = 0
    session_starts: int = 0
    session_ends: int = 0
    files: int = 0
    received_hours: set[datetime] = field(default_factory=set)


@dataclass
class _Person:
    anon_id: str
    user_id: str | None
    identify_us: int | None
    device_id: str | None  # a second device aliased to the user

    def actor(self, moment_us: int) -> str:
        if (
            self.user_id is not None
            and self.identify_us is not None
            and moment_us >= self.identify_us
        ):
            return self.user_id
        return self.anon_id


class _Clock:
    """ISO strings of integer-microsecond moments, as the landing files write them."""

    def __init__(self) -> None:
        self._minutes: dict[int, str] = {}

    def iso(self, moment_us: int) -> str:
        minute, rest = divmod(moment_us, _US_PER_MINUTE)
        prefix = self._minutes.get(minute)
        if prefix is None:
            prefix = (_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M")
            self._minutes[minute] = prefix
        seconds, micros = divmod(rest, 1_000_000)
        return f"{prefix}:{seconds:02d}.{micros:06d}Z"


class _Landing:
    """Buffers NDJSON lines per (stream, org, received hour) and writes them as part files."""

    def __init__(self, layout: Layout, tag: str, summary: GeneratedData) -> None:
        self._layout, self._tag, self._summary = layout, tag, summary
        self._buffers: dict[tuple[str, str, int], list[bytes]] = defaultdict(list)
        self._parts: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buffered = 0

    def add(self, stream: str, record: dict, received_us: int) -> None:
        self.add_line(stream, record["org_id"], orjson.dumps(record), received_us)

    def add_line(self, stream: str, org_id: str, line: bytes, received_us: int) -> None:
        self._buffers[(stream, org_id, received_us // _US_PER_HOUR)].append(line)
        self._buffered += 1
        if self._buffered >= 500_000:
            self.flush()

    def flush(self) -> None:
        for (stream, org_id, hour_index), lines in sorted(self._buffers.items()):
            hour = _EPOCH + timedelta(hours=hour_index)
            folder = self._layout.hour_dir(stream, org_id, hour)
            folder.mkdir(parents=True, exist_ok=True)
            part = self._parts[(stream, org_id, hour_index)]
            self._parts[(stream, org_id, hour_index)] += 1
            name = f"part-{hour:%Y%m%dT%H%M%SZ}-{self._tag}-{part:04d}.ndjson"
            _write_atomically(folder / name, b"\n".join(lines) + b"\n")
            self._summary.files += 1
            self._summary.received_hours.add(hour)
        self._buffers.clear()
        self._buffered = 0


def generate(
    layout: Layout,
    *,
    events: int,
    sessions: int,
    days: float,
    seed: int = 0,
    orgs: int = 1,
    start: datetime = DEFAULT_START,
    identify_share: float = 0.4,
    late_share: float = 0.02,
    retry_share: float = 0.01,
    progress: bool = True,
    tenants: Sequence[Project] | None = None,
) -> GeneratedData:
    """Write ``events`` events and ``sessions`` stored sessions spread over ``days`` days from
    ``start`` (plus the identity traffic they imply) into ``layout``'s landing area.

    Deterministic for a given seed. ``orgs`` orgs each get one project: the registered
    ``tenants`` (one project per org), or made-up ids (``org_…``, projects 1, 2, ...) that no
    key reaches. About one person per 25 events.
    """
    rng = random.Random(seed)
    start_us = int((start - _EPOCH).total_seconds()) * 1_000_000
    span_us = int(days * 24 * _US_PER_HOUR)
    # Drawn even for given tenants, so that the same seed gives the same traffic either way.
    made_up = [f"org_{rng.getrandbits(48):012x}" for _ in range(orgs)]
    if tenants is None:
        projects = {org_id: index + 1 for index, org_id in enumerate(made_up)}
    else:
        if len({tenant.org_id for tenant in tenants}) != orgs or len(tenants) != orgs:
            raise ValueError(f"give one project in each of {orgs} distinct orgs")
        projects = {tenant.org_id: tenant.project_id for tenant in tenants}
    org_ids = list(projects)
    summary = GeneratedData(start, start + timedelta(days=days), org_ids, projects)
    landing = _Landing(layout, f"s{seed}", summary)
    clock = _Clock()
    people_per_org = max(1, events // max(1, orgs) // 25)
    people = {
        org_id: [
            _person(rng, org_id, n, start_us, span_us, identify_share)
            for n in range(people_per_org)
        ]
        for org_id in org_ids
    }
    for org_id in org_ids:
        for person in people[org_id]:
            for record, received_us in _identity_records(
                org_id, projects[org_id], person, rng, clock
            ):
                landing.add("identities", record, received_us)
                summary.identities += 1

    bar = tqdm(total=events + sessions, desc="generating", unit="rec", disable=not progress)
    batches = np.random.default_rng(seed)
    for batch_start in range(0, events, _EVENT_BATCH):
        size = min(_EVENT_BATCH, events - batch_start)
        for line, org_id, received_us in _event_lines(
            batches, size, org_ids, projects, people, start_us, span_us, late_share, retry_share
        ):
            landing.add_line("events", org_id, line, received_us)
        bar.update(size)
    summary.events = events
    for done in range(sessions):
        org_id = org_ids[rng.randrange(orgs)]
        person = people[org_id][rng.randrange(people_per_org)]
        moment_us = start_us + rng.randrange(span_us)
        for record, received_us in _session(
            org_id,
            projects[org_id],
            person,
            moment_us,
            (moment_us - start_us) / span_us,
            rng,
            clock,
        ):
            landing.add("sessions", record, received_us)
            if record["kind"] == "start":
                summary.session_starts += 1
            else:
                summary.session_ends += 1
        if done % 10_000 == 9_999:
            bar.update(10_000)
    bar.update(sessions % 10_000)
    bar.close()
    landing.flush()
    return summary


def _uuid(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-a{digits[17:20]}-{digits[20:]}"


def _person(
    rng: random.Random, org_id: str, n: int, start_us: int, span_us: int, identify_share: float
) -> _Person:
    anon_id = f"anon-{rng.getrandbits(64):016x}"
    if rng.random() >= identify_share:
        return _Person(anon_id, None, None, None)
    device_id = f"device-{rng.getrandbits(48):012x}" if rng.random() < 0.1 else None
    return _Person(
        anon_id, f"user-{n}@{org_id}.example", start_us + rng.randrange(span_us), device_id
    )


def _identity_records(
    org_id: str, project_id: int, person: _Person, rng: random.Random, clock: _Clock
) -> list[tuple[dict, int]]:
    if person.user_id is None or person.identify_us is None:
        return []
    at_us = person.identify_us
    received_us = at_us + rng.randint(5, 900) * 1000
    # built by the record builder (the contract's columns), then given the µs-precise times
    identify = identity_record(
        org_id=org_id,
        project_id=project_id,
        kind="identify",
        distinct_id=person.user_id,
        other_id=person.anon_id,
        timestamp=_EPOCH,
        set={"email": person.user_id, "plan": rng.choice(["free", "pro", "team"])},
        set_once={"signup_at": clock.iso(at_us)},
        uuid=_uuid(rng),
    )
    identify.update(received_at=clock.iso(received_us), timestamp=clock.iso(at_us))
    records = [(identify, received_us)]
    if person.device_id is not None:
        alias_us = at_us + rng.randint(1, 600) * _US_PER_MINUTE
        alias_received_us = alias_us + rng.randint(5, 900) * 1000
        alias = identity_record(
            org_id=org_id,
            project_id=project_id,
            kind="alias",
            distinct_id=person.user_id,
            other_id=person.device_id,
            timestamp=_EPOCH,
            uuid=_uuid(rng),
        )
        alias.update(received_at=clock.iso(alias_received_us), timestamp=clock.iso(alias_us))
        records.append((alias, alias_received_us))
    return records


_EVENT_BATCH = 200_000
_PATHS = ("/", "/pricing", "/docs", "/blog")
_BUTTONS = ("signup", "buy", "share")
_CURRENCIES = ("USD", "EUR", "GBP")


def _event_lines(
    rng: np.random.Generator,
    size: int,
    org_ids: list[str],
    projects: dict[str, int],
    people: dict[str, list[_Person]],
    start_us: int,
    span_us: int,
    late_share: float,
    retry_share: float,
) -> Iterator[tuple[bytes, str, int]]:
    """``size`` events as (NDJSON line, org_id, received µs), drawn in bulk with numpy: the
    per-event Python work is one f-string."""
    org_index = rng.integers(0, len(org_ids), size)
    person_index = rng.integers(0, len(people[org_ids[0]]), size)
    moments = start_us + rng.integers(0, span_us, size)
    received = moments + rng.integers(20, 2_001, size) * 1000
    late = rng.random(size) < late_share
    received[late] += rng.integers(1, 31, int(late.sum())) * _US_PER_HOUR
    kinds = rng.random(size)
    picks = rng.integers(0, 12, size)
    amounts = np.round(rng.uniform(5, 300, size), 2)
    staging = rng.random(size) < 0.1
    retries = rng.random(size) < retry_share
    retry_delays = rng.integers(1, 91, size) * _US_PER_MINUTE
    uuids = rng.bytes(16 * size).hex()
    timestamps = _iso_array(moments)
    received_isos = _iso_array(received)
    retry_isos = _iso_array(received + retry_delays)
    columns = zip(
        org_index.tolist(),
        person_index.tolist(),
        moments.tolist(),
        received.tolist(),
        kinds.tolist(),
        picks.tolist(),
        amounts.tolist(),
        staging.tolist(),
        retries.tolist(),
        timestamps,
        received_isos,
        retry_isos,
        (received + retry_delays).tolist(),
        strict=True,
    )
    for n, (
        org_n,
        person_n,
        moment_us,
        received_us,
        kind,
        pick,
        amount,
        is_staging,
        retried,
        ts,
        rec,
        retry_iso,
        retry_us,
    ) in enumerate(columns):
        org_id = org_ids[org_n]
        person = people[org_id][person_n]
        name, properties = _event_content(kind, pick, amount, person)
        digits = uuids[32 * n : 32 * n + 32]
        uuid_text = f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-a{digits[17:20]}-{digits[20:]}"
        head = (
            f'{{"uuid":"{uuid_text}","org_id":"{org_id}",'
            f'"project_id":{projects[org_id]},"received_at":"'
        )
        tail = (
            '","source":"native","ip":"127.0.0.1",'
            f'"environment":"{"staging" if is_staging else "production"}",'
            f'"event":"{name}","event_display_name":null,"distinct_id":"{person.actor(moment_us)}",'
            f'"anonymous_id":null,"device_id":null,"session_id":null,"properties":{properties},'
            f'"timestamp":"{ts}","client_time":null}}'
        )
        yield (head + rec + tail).encode(), org_id, received_us
        if retried:
            # the same event sent again by the SDK: same uuid, received later
            yield (head + retry_iso + tail).encode(), org_id, retry_us


def _event_content(kind: float, pick: int, amount: float, person: _Person) -> tuple[str, str]:
    if kind < 0.45:
        return "$pageview", f'{{"path":"{_PATHS[pick % 4]}"}}'
    if kind < 0.60:
        return "button_clicked", f'{{"button":"{_BUTTONS[pick % 3]}"}}'
    if kind < 0.72:
        return "checkout_started", f'{{"currency":"{_CURRENCIES[pick % 3]}"}}'
    if kind < 0.80:
        return "checkout_completed", f'{{"currency":"{_CURRENCIES[pick % 3]}","amount":{amount}}}'
    if kind < 0.90:
        variant = "test" if int(person.anon_id[-2:], 16) % 2 else "control"
        return (
            "$feature_flag_called",
            f'{{"$feature_flag":"{FEATURE_FLAG}","$feature_flag_response":"{variant}"}}',
        )
    return "settings_changed", f'{{"$set":{{"theme":"{("dark", "light")[pick % 2]}"}}}}'


def _iso_array(moments_us: np.ndarray) -> list[str]:
    text = np.datetime_as_string(moments_us.astype("datetime64[us]"), unit="us")
    return [value + "Z" for value in text.tolist()]


def _release(progress: float, rng: random.Random) -> str:
    # 1.0.0 fades out, 1.1.0 peaks mid-span, 1.2.0 rises at the end.
    weights = (
        max(0.02, 1.0 - 1.6 * progress),
        0.6 * (1 - abs(progress - 0.5) * 1.6) + 0.05,
        max(0.0, 2.0 * progress - 0.6),
    )
    return rng.choices(RELEASES, weights=weights)[0]


_CRASH_RATES = {"1.0.0": 0.02, "1.1.0": 0.05, "1.2.0": 0.01}


def _session(
    org_id: str,
    project_id: int,
    person: _Person,
    moment_us: int,
    progress: float,
    rng: random.Random,
    clock: _Clock,
) -> list[tuple[dict, int]]:
    while True:
        release = _release(progress, rng)
        crashed = rng.random() < _CRASH_RATES[release]
        sample_rate = SAMPLED_RATE if release == SAMPLED_RELEASE else 1.0
        # the SDK never sends a session it sampled out (crashed ones are always kept)
        if crashed or rng.random() < sample_rate:
            break
    session_id = f"ses_{rng.getrandbits(64):016x}"
    received_us = moment_us + rng.randint(5, 500) * 1000
    start = session_start_record(
        org_id=org_id,
        project_id=project_id,
        session_id=session_id,
        distinct_id=person.actor(moment_us),
        release=release,
        started_at=_EPOCH,
        environment="production" if rng.random() < 0.9 else "staging",
        platform=rng.choice(PLATFORMS),
        sample_rate=sample_rate,
    )
    start.update(received_at=clock.iso(received_us), started_at=clock.iso(moment_us))
    records = [(start, received_us)]
    if not crashed and rng.random() < 0.03:
        return records  # never ends: abnormal once the timeout passes
    duration_ms = rng.randint(5_000, 3_600_000)
    ended_us = moment_us + duration_ms * 1000
    end_received_us = ended_us + rng.randint(5, 500) * 1000
    errors = rng.randint(1, 3) if rng.random() < 0.1 else 0
    end = session_end_record(
        org_id=org_id,
        project_id=project_id,
        session_id=session_id,
        ended_at=_EPOCH,
        status="crashed" if crashed else ("errored" if errors else "exited"),
        error_count=errors,
        crash_count=1 if crashed else 0,
        duration_ms=duration_ms,
    )
    end.update(received_at=clock.iso(end_received_us), ended_at=clock.iso(ended_us))
    records.append((end, end_received_us))
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--orgs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=None,
        help="UTC; default: the latest start whose records are all received by now",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="default: LOOM_DATA_DIR")
    parser.add_argument(
        "--rw-key",
        action="store_true",
        help="also create and print a read-write key of each org written to",
    )
    options = parser.parse_args(argv)
    now = datetime.now(UTC).replace(tzinfo=None)
    latest = floor_hour(now - LATEST_RECEIPT) - timedelta(days=options.days)
    start = latest if options.start is None else naive_utc(options.start)
    if start > latest:
        parser.error(
            f"--start {start:%Y-%m-%dT%H:%M} with --days {options.days:g} would receive records"
            f" after now ({now:%Y-%m-%dT%H:%M} UTC; they arrive up to {LATEST_RECEIPT} late):"
            f" start at {latest:%Y-%m-%dT%H:%M} or earlier"
        )
    layout = Layout(options.data_dir.resolve()) if options.data_dir else Layout.from_settings()
    # Registered, so that a key reaches what was written (`loom keys create --org <org id>`);
    # the names depend on the seed only, so generating again with a seed adds to its orgs.
    with Registry.open(layout) as registry:
        tenants = [
            registry.ensure_project(f"generated-s{options.seed}-{n}", "app")
            for n in range(options.orgs)
        ]
    summary = generate(
        layout,
        events=options.events,
        sessions=options.sessions,
        days=options.days,
        seed=options.seed,
        orgs=options.orgs,
        start=start,
        tenants=tenants,
    )
    print(
        f"wrote {summary.events} events, {summary.identities} identity records and "
        f"{summary.session_starts} sessions ({summary.session_ends} ended) for "
        f"{len(summary.orgs)} org(s) in {summary.files} files over "
        f"{len(summary.received_hours)} received hours under {layout.landing_dir}"
    )
    with Registry.open(layout) as registry:
        for tenant in tenants:
            line = f"org {tenant.org_id}, project {tenant.project_id}"
            if options.rw_key:
                key = registry.create_key(tenant.org_id, tenant.name, "rw").key
                line += f": rw key {key}"
            print(line)
    if not options.rw_key:
        print("read it with a key: loom keys create --org <org id> --project app --kind rw")


if __name__ == "__main__":
    main()
