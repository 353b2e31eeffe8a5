"""End-to-end exactness: seeded traffic through the real ``posthog`` SDK and the session
endpoints of a real API (uvicorn on loopback), the hourly pipeline through Dagster, and every
answer of the read API compared with what plain Python computes from what was sent
(:mod:`tests.end_to_end.utils.oracle`): every event exactly once with its merged person, every
person, and every release's numbers.

**Two received hours, and how.** The late identify must arrive in a later *received* hour than
the events it re-attributes, so that a later pipeline run — not the same one — has to rewrite
them. The received hour is the API's clock at receipt (``datetime.now`` in the request), and
Dagster's partitions end at the current hour, so the two phases are sent with the whole test
process's clock set back by ``time_machine`` (ticking): phase 1 at 10 minutes into the hour two
hours ago, phase 2 an hour later. Nothing in the API is replaced: its every reading of the
clock (receipt time, landing directory, file name) sees the same shifted time, exactly as if the
requests had been sent then. The pipeline runs on the real clock, after each phase, for the hour
that phase landed in, as the hourly schedule would once the hour has closed. Waiting an hour for
a real boundary was not an option, and moving or rewriting landing files would test a layout the
API never writes.

The traffic (:mod:`tests.end_to_end.utils.scenario`, seeded): about 250 events of 35 people, most
hours old when received; identifies, aliases and a refused identify; person properties; some 50
sessions of three releases, one sampled at 0.1, with crashes, handled errors, a staging
environment, a session whose end arrives in the next hour and one that never ends. Retries of
requests that had succeeded: SDK events re-sent with their uuid in the same and the next hour,
session starts and ends re-posted with their session_id, and a ``/batch/`` body without uuids
sent three times byte for byte. Phase 2 also brings a user's older events from an offline device.

After phase 1 the read API must match the expectation from phase 1's records alone; after
phase 2, the one from everything sent, which differs where the late identify and the late
events re-attribute earlier events and merge users.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, is_dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import httpx
import orjson
import pytest
import time_machine

from dagster_project.runner import landed_hours, materialize_hours
from tests.end_to_end.utils.loom import RunningLoom
from tests.end_to_end.utils.oracle import Expected, ExpectedEvent, ExpectedPerson, expect
from tests.end_to_end.utils.scenario import SAMPLED_RELEASE, Operation, plan_traffic
from tests.end_to_end.utils.sending import Sender, SentLog
from tests.utils.serving import wait_until_serving_latest_publish
from warehouse.layout import PART_GLOB, Layout

pytestmark = pytest.mark.slow

SENT_INTO_THE_HOUR = timedelta(minutes=10)
EVENTS_PAGE = 100
LIST_FIELDS = (  # the documented release list shape, and the fields the API adds
    "release", "environment", "crash_free_session_rate", "crash_free_user_rate", "adoption_rate",
    "adoption_stage", "total_sessions", "crashed_sessions", "total_users",
    "current_adoption_rate", "peak_adoption_rate", "error_rate", "avg_duration_ms",
)  # fmt: skip
TIME_FIELDS = ("first_seen", "last_seen")


def test_the_read_api_answers_exactly_what_was_sent(loom: RunningLoom) -> None:
    phase_1_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    phase_2_hour = phase_1_hour + timedelta(hours=1)
    plan = plan_traffic(phase_1_hour)
    sent = SentLog()
    sender = Sender(loom.base_url, loom.key, sent)
    instance = dg.DagsterInstance.ephemeral()
    try:
        with loom.client() as api:
            deliver(loom, sender, plan.phase_1, [phase_1_hour], instance)
            after_phase_1 = expect(loom.org_id, at_landed_times(sent, loom.layout))
            assert_api_matches(api, loom.project_id, after_phase_1)

            deliver(loom, sender, plan.phase_2, [phase_1_hour, phase_2_hour], instance)
            final = expect(loom.org_id, at_landed_times(sent, loom.layout))
            assert_scenario_is_telling(sent, after_phase_1, final)
            assert_api_matches(api, loom.project_id, final)
    finally:
        sender.close()


def deliver(
    loom: RunningLoom,
    sender: Sender,
    operations: list[Operation],
    hours: list[datetime],
    instance: dg.DagsterInstance,
) -> None:
    """Sends a phase with the clock at 10 minutes into the last of ``hours`` (the received hours
    so far), then runs the pipeline for that hour and waits until the API serves its result.
    Every acknowledged record, retries included, must have landed in that hour and been loaded:
    the retries reach the warehouse, and it is the models that count them once."""
    sent_before = sender.log.records_per_stream()
    with time_machine.travel(hours[-1] + SENT_INTO_THE_HOUR, tick=True):
        sender.send(operations)
    received = [hour.replace(tzinfo=None) for hour in hours]
    assert landed_hours(loom.layout) == received
    [run] = materialize_hours(received[-1:], instance)
    assert run.success, run.progress_line()
    sent_now = sender.log.records_per_stream()
    assert {stream: run.rows_loaded[stream] for stream in sent_now} == {
        stream: sent_now[stream] - sent_before[stream] for stream in sent_now
    }
    wait_until_serving_latest_publish(loom.app.state.marts, loom.layout)


def at_landed_times(sent: SentLog, layout: Layout) -> SentLog:
    """What was sent, at the times ingest gave it: PostHog's rule moves each event by its
    request's clock skew, ``received_at + (timestamp - sent_at)`` (a few milliseconds here),
    which reorders events the plan puts at the same instant. Each landed time is checked against
    the rule exactly, from what the SDK sent (``client_time``) and when it was received."""
    landed: dict[Any, tuple[datetime, datetime]] = {}  # key: (received_at, time), earliest copy
    for stream in ("events", "identities"):
        for path in layout.stream_dir(stream).rglob(PART_GLOB):
            for line in path.read_bytes().splitlines():
                record = orjson.loads(line)
                received = datetime.fromisoformat(record["received_at"])
                resolved = datetime.fromisoformat(record["timestamp"])
                sent_time = record["client_time"] or {}
                if "sent_at" in sent_time:
                    rule = received + (
                        datetime.fromisoformat(sent_time["timestamp"])
                        - datetime.fromisoformat(sent_time["sent_at"])
                    )
                    assert resolved == rule, (record["uuid"], resolved, rule, sent_time)
                keys = [record["uuid"], ("seq", record["properties"].get("seq"))]
                for key in keys:
                    landed[key] = min(landed.get(key, (received, resolved)), (received, resolved))
    return replace(
        sent,
        events=[
            replace(event, timestamp=landed[event.uuid or ("seq", event.seq)][1])
            for event in sent.events
        ],
        links=[replace(link, timestamp=landed[link.uuid][1]) for link in sent.links],
        property_sets=[
            replace(written, timestamp=landed[written.uuid][1]) for written in sent.property_sets
        ],
    )


def assert_scenario_is_telling(sent: SentLog, after_phase_1: Expected, final: Expected) -> None:
    """Guards on the expectations themselves, so that the comparison tests what it means to:
    phase 2 re-attributes phase-1 events; some release counts one user for sessions of several
    of its distinct_ids; the sampled release has sessions of both weights."""
    reattributed = [
        seq
        for seq, event in after_phase_1.events.items()
        if final.events[seq].person_id != event.person_id
    ]
    assert len(reattributed) >= 10
    session_distinct_ids: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for start in sent.session_starts:
        session_distinct_ids[(start.release, start.environment)].add(start.distinct_id)
    assert any(
        health["total_users"] < len(session_distinct_ids[(release, environment)])
        for (release, environment), health in final.releases.items()
        if release != SAMPLED_RELEASE
    )
    [sampled] = [
        health for (release, _), health in final.releases.items() if release == SAMPLED_RELEASE
    ]
    assert 0 < sampled["crashed_sessions"] < sampled["total_sessions"]


# -------------------------------------------------------------------------------- what the API says


def assert_api_matches(api: httpx.Client, project_id: int, expected: Expected) -> None:
    assert_events_match(api, expected)
    assert_persons_match(api, expected)
    assert_releases_match(api, project_id, expected)


def assert_events_match(api: httpx.Client, expected: Expected) -> None:
    events = read_all_events(api)
    # An event without a seq (an identity operation, or one that was not sent) goes by its uuid.
    seqs = [event["properties"].get("seq", event["uuid"]) for event in events]
    duplicates = sorted({seq for seq in seqs if seqs.count(seq) > 1}, key=repr)
    assert not duplicates, f"events served more than once: seq {duplicates}"
    actual = {}
    for seq, event in zip(seqs, events, strict=True):
        server_made = seq in expected.events and expected.events[seq].uuid is None
        actual[seq] = ExpectedEvent(
            None if server_made else event["uuid"],
            event["event"],
            event["distinct_id"],
            event["person_id"],
            datetime.fromisoformat(event["timestamp"]),
        )
    assert_same("event", actual, expected.events)


def read_all_events(api: httpx.Client) -> list[dict[str, Any]]:
    """``/api/analytics/events`` paged to the end with its cursor."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": EVENTS_PAGE} | ({"cursor": cursor} if cursor else {})
        response = api.get("/api/analytics/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def assert_persons_match(api: httpx.Client, expected: Expected) -> None:
    actual = {}
    for distinct_id in expected.persons:
        response = api.get(f"/api/analytics/persons/{distinct_id}")
        assert response.status_code == 200, f"{distinct_id}: {response.text}"
        person = response.json()
        actual[distinct_id] = ExpectedPerson(
            person["person_id"],
            tuple(sorted(person["distinct_ids"])),
            person["is_identified"],
            person["properties"],
        )
    assert_same("person of distinct_id", actual, expected.persons)
    response = api.get("/api/analytics/persons", params={"limit": 1000})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_offset"] is None
    listed = [person["person_id"] for person in page["persons"]]
    assert sorted(listed) == sorted({person.person_id for person in expected.persons.values()})


def assert_releases_match(api: httpx.Client, project_id: int, expected: Expected) -> None:
    response = api.get(f"/api/projects/{project_id}/releases")
    assert response.status_code == 200, response.text
    listed = {(row["release"], row["environment"]): row for row in response.json()["releases"]}
    assert_same(
        "release list row",
        listed,
        {
            key: {name: health[name] for name in LIST_FIELDS}
            for key, health in expected.releases.items()
        },
    )
    details = {}
    for release, environment in expected.releases:
        response = api.get(
            f"/api/projects/{project_id}/releases/{release}", params={"environment": environment}
        )
        assert response.status_code == 200, response.text
        detail = response.json()
        # Which publish it reflects, in the body and the headers alike; not a health field.
        assert detail.pop("snapshot")["id"] == int(response.headers["Loom-Snapshot-Id"])
        details[(release, environment)] = detail | {
            name: datetime.fromisoformat(detail[name]) for name in TIME_FIELDS
        }
    assert_same("release detail", details, expected.releases)


def assert_same(what: str, actual: dict, expected: dict) -> None:
    """Equal, or a failure listing each missing, unexpected and differing entry."""
    problems = [f"missing {what} {key!r}: {expected[key]}" for key in expected.keys() - actual]
    problems += [f"unexpected {what} {key!r}: {actual[key]}" for key in actual.keys() - expected]
    problems += [
        f"{what} {key!r}: {differences(actual[key], expected[key])}; expected {expected[key]}"
        for key in sorted(expected.keys() & actual.keys(), key=repr)
        if actual[key] != expected[key]
    ]
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])


def differences(actual: Any, expected: Any) -> str:
    """The fields in which two records (dataclasses or dicts) differ."""
    actual_fields = asdict(actual) if is_dataclass(actual) else actual
    expected_fields = asdict(expected) if is_dataclass(expected) else expected
    return ", ".join(
        f"{name} is {actual_fields.get(name)!r}, not {expected_fields.get(name)!r}"
        for name in sorted(actual_fields.keys() | expected_fields.keys())
        if actual_fields.get(name) != expected_fields.get(name)
    )
