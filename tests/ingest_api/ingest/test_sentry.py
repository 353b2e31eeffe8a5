"""The Sentry envelope route against the running API: the real sentry-sdk's sessions land as
session records and aggregates; keys, limits and malformed envelopes are 4xx that land nothing;
item types Loom does not store are accepted and ignored."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import brotli
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_api.ingest.schemas.fields import MAX_BATCH_ITEMS
from tests.ingest_api.ingest.utils.sentry_app import dsn, run_script, run_wsgi
from tests.ingest_api.ingest.utils.server import Api, Tenant, landed
from warehouse.registry import Registry
from warehouse.streams import STREAM_COLUMNS

STARTED = "2026-01-18T12:00:00Z"
Item = tuple[dict, bytes]


def item(kind: str, payload: dict | bytes, with_length: bool = True) -> Item:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return {"type": kind, **({"length": len(body)} if with_length else {})}, body


def session(sid: str = "s-1", **fields) -> Item:
    update = {"sid": sid, "started": STARTED, "attrs": {"release": "shop@1.0.0"}, **fields}
    return item("session", update)


def aggregates(*buckets: dict, attrs: dict | None = None) -> Item:
    attrs = {"release": "shop@1.0.0"} if attrs is None else attrs
    return item("sessions", {"attrs": attrs, "aggregates": buckets})


def envelope(*items: Item, header: bytes = b"{}") -> bytes:
    lines = [header]
    for item_header, payload in items:
        lines += [orjson.dumps(item_header), payload]
    return b"\n".join(lines) + b"\n"


def sentry_auth(key: str) -> dict[str, str]:
    return {
        "X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python",
        "Content-Type": "application/x-sentry-envelope",
    }


def post(
    client: httpx.Client,
    tenant: Tenant,
    body: bytes,
    headers: dict[str, str] | None = None,
    project_id: int | str | None = None,
) -> httpx.Response:
    project = tenant.record.project_id if project_id is None else project_id
    return client.post(
        f"/api/{project}/envelope/",
        content=body,
        headers=sentry_auth(tenant.key) if headers is None else headers,
    )


def stored(api: Api, tenant: Tenant) -> dict[str, list[dict]]:
    return {
        stream: landed(api.layout, stream, tenant.org_id)
        for stream in ("sessions", "session_aggregates")
    }


def nothing_landed(api: Api, tenant: Tenant) -> bool:
    return stored(api, tenant) == {"sessions": [], "session_aggregates": []}


# -- the real SDK ---------------------------------------------------------------------------


def test_sdk_sessions_land_as_session_records(api: Api, tenant: Tenant) -> None:
    sdk_dsn = dsn(api.base_url, tenant.key, tenant.record.project_id)
    # One compression each, all three of what the SDK sends.
    run_script(sdk_dsn, "shop@1.0.0", "user-clean", "clean", compression="gzip")
    run_script(sdk_dsn, "shop@1.0.0", "user-handled", "handled", compression="br")
    run_script(sdk_dsn, "shop@1.0.0", "user-crash", "crash", compression="none")

    records = landed(api.layout, "sessions", tenant.org_id)
    assert all(list(record) == list(STREAM_COLUMNS["sessions"]) for record in records)
    starts = {r["session_id"]: r for r in records if r["kind"] == "start"}
    ends = {r["session_id"]: r for r in records if r["kind"] == "end"}
    assert starts.keys() == ends.keys() and len(starts) == 3
    assert {
        (
            start["distinct_id"],
            start["release"],
            start["environment"],
            start["platform"],
            start["sample_rate"],
            start["source"],
        )
        for start in starts.values()
    } == {
        (user, "shop@1.0.0", "production", "python", 1.0, "sentry")
        for user in ("user-clean", "user-handled", "user-crash")
    }
    outcomes = {
        starts[sid]["distinct_id"]: (end["status"], end["error_count"], end["crash_count"])
        for sid, end in ends.items()
    }
    # The handled error is counted in error_count (the models then say errored); the crash,
    # which Sentry also counts among errors, only in crash_count.
    assert outcomes == {
        "user-clean": ("exited", 0, 0),
        "user-handled": ("exited", 1, 0),
        "user-crash": ("crashed", 0, 1),
    }
    assert all(end["ended_at"] >= starts[sid]["started_at"] for sid, end in ends.items())


def test_sdk_request_mode_sessions_land_as_aggregates(api: Api, tenant: Tenant) -> None:
    sdk_dsn = dsn(api.base_url, tenant.key, tenant.record.project_id)
    run_wsgi(sdk_dsn, "shop@1.0.0", ["/", "/handled", "/", "/crash", "/"])

    records = landed(api.layout, "session_aggregates", tenant.org_id)
    assert all(list(record) == list(STREAM_COLUMNS["session_aggregates"]) for record in records)
    # One bucket per started minute: two if the requests straddle a minute.
    assert 1 <= len(records) <= 2
    totals = {
        status: sum(record[status] for record in records)
        for status in ("exited", "errored", "abnormal", "crashed")
    }
    assert totals == {"exited": 3, "errored": 1, "abnormal": 0, "crashed": 1}
    assert {
        (r["release"], r["environment"], r["platform"], r["distinct_id"], r["source"])
        for r in records
    } == {("shop@1.0.0", "production", "python", None, "sentry")}
    assert all(r["started_at"].endswith(":00Z") for r in records)  # whole minutes
    assert landed(api.layout, "sessions", tenant.org_id) == []


# -- mapping --------------------------------------------------------------------------------


def test_updates_of_one_session_land_one_start_and_one_end(
    api: Api, tenant: Tenant, client: httpx.Client
) -> None:
    body = envelope(
        session("a", init=True, status="ok"),
        session("a", did="user-a", errors=1, status="ok", timestamp="2026-01-18T12:01:00Z"),
        session("a", did="user-a", errors=2, status="exited", duration=12.5),
        session("b", did="00000000-0000-0000-0000-000000000000", timestamp=1768737900.5),
    )
    response = post(client, tenant, body)

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 4, "durable": True}
    records = landed(api.layout, "sessions", tenant.org_id)
    starts = {r["session_id"]: r for r in records if r["kind"] == "start"}
    ends = {r["session_id"]: r for r in records if r["kind"] == "end"}
    # a: the first update's start with the first distinct id sent; the final update's end.
    assert (starts["a"]["distinct_id"], starts["a"]["started_at"]) == ("user-a", STARTED)
    assert (ends["a"]["status"], ends["a"]["error_count"], ends["a"]["duration_ms"]) == (
        "exited",
        2,
        12500,
    )
    # b is still in progress: a provisional end (status ok) at its update's time (epoch seconds
    # 1768737900.5 = 2026-01-18T12:05:00.5Z). A nil distinct id is no distinct id (Relay's rule).
    assert starts["b"]["distinct_id"] is None
    assert (ends["b"]["status"], ends["b"]["ended_at"]) == ("ok", "2026-01-18T12:05:00.500000Z")
    final_end = post(client, tenant, envelope(session("b", status="crashed", errors=1))).json()
    assert final_end == {"accepted": 2, "durable": True}
    b_ends = [r for r in landed(api.layout, "sessions", tenant.org_id) if r["session_id"] == "b"]
    # The final end has the session's one end uuid; the provisional one another, so both stay.
    assert len({r["uuid"] for r in b_ends if r["kind"] == "end"}) == 2
    assert [(r["status"], r["error_count"], r["crash_count"]) for r in b_ends[-1:]] == [
        ("crashed", 0, 1)
    ]


def test_a_resent_envelope_lands_with_the_same_uuids(
    api: Api, tenant: Tenant, client: httpx.Client
) -> None:
    body = envelope(session("a", status="exited"), aggregates({"started": STARTED, "exited": 3}))
    for _ in range(2):
        assert post(client, tenant, body).status_code == 200

    for records in stored(api, tenant).values():
        uuids = [record["uuid"] for record in records]
        assert len(uuids) == 2 * len(set(uuids)) > 0  # each once downstream, by uuid


def test_an_update_timed_before_its_start_ends_at_the_start(
    api: Api, tenant: Tenant, client: httpx.Client
) -> None:
    """Relay's rule: a session update's timestamp before its start (a client clock that moved)
    is taken as the start, so no duration is negative."""
    early = envelope(session("early", status="exited", timestamp="2026-01-18T11:00:00Z"))
    assert post(client, tenant, early).status_code == 200

    ends = [record for record in stored(api, tenant)["sessions"] if record["kind"] == "end"]
    assert [end["ended_at"] for end in ends] == [STARTED]


def test_aggregate_buckets_keep_their_distinct_id_and_skip_empty_ones(
    api: Api, tenant: Tenant, client: httpx.Client
) -> None:
    body = envelope(
        aggregates(
            {"started": STARTED, "did": "user-1", "exited": 2, "crashed": 1},
            {"started": "2026-01-18T12:01:00Z", "abnormal": 4, "errored": 5},
            {"started": "2026-01-18T12:02:00Z"},  # no sessions: nothing to land
            attrs={"release": "shop@1.0.0", "environment": "staging"},
        )
    )
    assert post(client, tenant, body).json() == {"accepted": 2, "durable": True}

    assert [
        (r["started_at"], r["distinct_id"], r["exited"], r["errored"], r["abnormal"], r["crashed"])
        for r in landed(api.layout, "session_aggregates", tenant.org_id)
    ] == [(STARTED, "user-1", 2, 0, 0, 1), ("2026-01-18T12:01:00Z", None, 0, 5, 4, 0)]
    assert {r["environment"] for r in landed(api.layout, "session_aggregates", tenant.org_id)} == {
        "staging"
    }


# -- what Loom does not store ---------------------------------------------------------------


def test_unknown_item_types_are_accepted_and_ignored(
    api: Api, tenant: Tenant, client: httpx.Client
) -> None:
    body = envelope(
        item("event", {"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "level": "error"}, False),
        item("transaction", {"type": "transaction", "spans": []}),
        item("attachment", b"binary\n\x00\xff\nwith newlines"),
        item("client_report", {"discarded_events": []}, False),
        item("a_type_from_the_future", b"\xff\xfe not even JSON"),
        session("s-1", status="exited"),
        header=b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","sent_at":"2026-01-18T12:00:00Z"}',
    )
    response = post(client, tenant, body)

    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "durable": True}
    assert [r["kind"] for r in landed(api.layout, "sessions", tenant.org_id)] == ["start", "end"]

    events_only = envelope(item("event", {"message": "hello"}))
    assert post(client, tenant, events_only).json() == {"accepted": 0, "durable": True}


# -- keys ------------------------------------------------------------------------------------


def test_the_key_comes_from_the_dsn_and_must_belong_to_the_project(
    api: Api,
    client: httpx.Client,
    new_tenant: Callable[..., Tenant],
    registry: Registry,
) -> None:
    tenant, other, revoked = new_tenant(), new_tenant(), new_tenant()
    registry.revoke(revoked.key)
    body = envelope(session(status="exited"))
    plain = {"Content-Type": "application/x-sentry-envelope"}

    refused = [
        (post(client, tenant, body, headers=plain), 401, "DSN"),
        (post(client, tenant, body, headers=sentry_auth("loom_analytics_write_0")), 401, "unknown"),
        (post(client, revoked, body), 401, "revoked"),
        (post(client, other, body, project_id=tenant.record.project_id), 403, "belongs to project"),
    ]
    for response, status, reason in refused:
        assert (response.status_code, reason in response.json()["detail"]) == (status, True)
    not_a_project = post(client, tenant, body, project_id="web")
    assert not_a_project.status_code == 400
    assert not_a_project.json()["errors"][0]["field"] == "path.project_id"
    assert nothing_landed(api, tenant) and nothing_landed(api, other)

    # Browser SDKs send the key as a query parameter; Loom's own headers work as well.
    project = tenant.record.project_id
    by_query = client.post(f"/api/{project}/envelope/?sentry_key={tenant.key}", content=body)
    by_bearer = client.post(f"/api/{project}/envelope", content=body, headers=tenant.headers)
    assert (by_query.status_code, by_bearer.status_code) == (200, 200)
    assert len(landed(api.layout, "sessions", tenant.org_id)) == 4


# -- bad envelopes ---------------------------------------------------------------------------

VALID = session("ok-1", status="exited")
BAD_ENVELOPES = {
    "missing release": (
        envelope(VALID, aggregates({"started": STARTED, "exited": 1}, attrs={})),
        1,
        "attrs.release",
        "a release is required",
    ),
    "no attrs at all": (
        envelope(item("session", {"sid": "x", "started": STARTED})),
        0,
        "attrs.release",
        "a release is required",
    ),
    "bad JSON": (
        envelope(VALID, item("session", b'{"sid": "x", "started": ')),
        1,
        "payload",
        "not valid JSON",
    ),
    "not an object": (envelope(item("session", b"[1, 2]")), 0, "payload", "JSON object"),
    "unknown status": (envelope(session(status="fine")), 0, "status", "'ok'"),
    "bad timestamp": (envelope(session(started="yesterday")), 0, "started", "ISO 8601"),
    "negative count": (
        envelope(aggregates({"started": STARTED, "crashed": -1})),
        0,
        "aggregates.0.crashed",
        "greater than or equal to 0",
    ),
    "bad envelope header": (envelope(VALID, header=b"[]"), None, "envelope header", "object"),
    "bad item header": (b"{}\n{type: session}\n{}\n", 0, "item header", "JSON object"),
    "item header without type": (b'{}\n{"length": 2}\n{}\n', 0, "item header", "type"),
    "length past the end": (b'{}\n{"type":"session","length":99}\n{}\n', 0, "length", "3 follow"),
    "no newline after payload": (
        b'{}\n{"type":"event","length":2}\n{}{"type":"session"}\n{}\n',
        0,
        "payload",
        "newline",
    ),
    "empty body": (b"", None, "envelope header", "empty"),
}


@pytest.mark.parametrize("case", BAD_ENVELOPES, ids=str)
def test_bad_envelopes_are_400_naming_the_item_and_land_nothing(
    case: str, api: Api, tenant: Tenant, client: httpx.Client
) -> None:
    body, index, field, reason = BAD_ENVELOPES[case]
    response = post(client, tenant, body)

    assert response.status_code == 400, response.text
    assert response.json()["detail"].endswith("nothing was stored")
    (error,) = response.json()["errors"]
    assert (error["index"], error["field"]) == (index, field)
    assert reason in error["reason"]
    assert nothing_landed(api, tenant)


# -- encodings and limits --------------------------------------------------------------------


def test_unknown_or_broken_compression_is_refused(
    api: Api, tenant: Tenant, client: httpx.Client
) -> None:
    body = envelope(VALID)

    def send(content: bytes, encoding: str) -> httpx.Response:
        return post(
            client, tenant, content, {**sentry_auth(tenant.key), "Content-Encoding": encoding}
        )

    assert send(body, "zstd").status_code == 415
    assert "gzip, br or none" in send(body, "deflate").json()["detail"]
    assert send(body, "gzip").status_code == 400  # not gzip at all
    assert send(gzip.compress(body)[:-6], "gzip").status_code == 400  # truncated
    assert send(body, "br").status_code == 400
    assert "truncated" in send(brotli.compress(body)[:-2], "br").json()["detail"]
    assert nothing_landed(api, tenant)


def test_bodies_over_the_limits_are_413_and_land_nothing(
    api: Api, tenant: Tenant, client: httpx.Client
) -> None:
    limit = api.settings.max_request_bytes
    # A small body that decompresses past the limit: a few KB each, 20 MB + 1 byte inflated.
    bomb = envelope(VALID) + b" " * (limit + 1 - len(envelope(VALID)))
    gzip_bomb = {**sentry_auth(tenant.key), "Content-Encoding": "gzip"}
    brotli_bomb = {**sentry_auth(tenant.key), "Content-Encoding": "br"}
    client_reports = [item("client_report", {})] * (MAX_BATCH_ITEMS + 1)
    padded = session(padding="x" * (api.settings.max_properties_bytes + 64 * 1024))
    buckets = [{"started": STARTED, "exited": 1}] * MAX_BATCH_ITEMS
    too_many = {
        "gzip bomb": post(client, tenant, gzip.compress(bomb), gzip_bomb),
        "brotli bomb": post(client, tenant, brotli.compress(bomb, quality=5), brotli_bomb),
        "items": post(client, tenant, envelope(*client_reports)),
        "session item": post(client, tenant, envelope(padded)),
        "buckets": post(client, tenant, envelope(VALID, aggregates(*buckets))),
    }

    assert {name: response.status_code for name, response in too_many.items()} == dict.fromkeys(
        too_many, 413
    )
    assert f"larger than {limit} bytes" in too_many["brotli bomb"].json()["detail"]
    assert f"more than {MAX_BATCH_ITEMS} items" in too_many["items"].json()["detail"]
    assert "aggregate buckets" in too_many["buckets"].json()["detail"]
    assert nothing_landed(api, tenant)
    # At the limits exactly, all is well: 2,000 items, 2,000 sessions and buckets.
    at_limit = envelope(VALID, aggregates(*buckets[:-1]), *client_reports[: MAX_BATCH_ITEMS - 2])
    assert post(client, tenant, at_limit).json() == {"accepted": 2001, "durable": True}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=512),
        st.lists(
            st.sampled_from(
                [
                    b"{}",
                    b'{"type":"session"}',
                    b'{"type":"sessions","length":3}',
                    b'{"type":"session","length":-1}',
                    b'{"sid":"x","started":1e400,"attrs":{"release":"r"}}',
                    b'{"attrs":{"release":"r"},"aggregates":[{"started":"2026-01-01"}]}',
                    b'{"attrs":{"release":"r"},"aggregates":{"a":1}}',
                    b"\xff",
                    b"",
                ]
            ),
            max_size=8,
        ).map(b"\n".join),
    )
)
def test_no_body_gets_a_5xx(body: bytes, api: Api, tenant: Tenant, client: httpx.Client) -> None:
    assert post(client, tenant, body).status_code < 500


def test_the_route_is_documented(client: httpx.Client) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/{project_id}/envelope/"]["post"]
    assert "application/x-sentry-envelope" in operation["requestBody"]["content"]
    assert "4XX" in operation["responses"] and "422" not in operation["responses"]


DOCS = Path(__file__).resolve().parents[3] / "docs" / "ingest-api.md"


def documented_snippet() -> str:
    """The Python block of ingest-api.md's Sentry section that calls sentry_sdk.init."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    [snippet] = [block for block in blocks if "sentry_sdk.init(" in block]
    return snippet


def test_the_documented_sentry_snippet_sends_a_session(api: Api, tenant: Tenant) -> None:
    """As written, with the pinned sentry-sdk: only KEY, PROJECT_ID and the port filled in."""
    snippet = documented_snippet()
    assert "127.0.0.1:8000" in snippet
    script = f"KEY = {tenant.key!r}\nPROJECT_ID = {tenant.record.project_id}\n" + snippet.replace(
        "127.0.0.1:8000", api.base_url.removeprefix("http://")
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )

    assert finished.returncode == 0, finished.stderr
    records = landed(api.layout, "sessions", tenant.org_id)
    assert sorted(
        (r["kind"], r["distinct_id"], r["release"], r["status"], r["source"]) for r in records
    ) == [
        ("end", None, None, "exited", "sentry"),
        ("start", "user_1", "shop@1.4.0", None, "sentry"),
    ]
