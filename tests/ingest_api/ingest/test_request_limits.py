"""Request bodies: the count and size limits, what each encoding decodes to, and what one big
request costs the server (memory, and the responsiveness of everything else)."""

from __future__ import annotations

import base64
import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from fastapi.routing import iter_route_contexts

from ingest_api.ingest.routing import IngestRoute
from ingest_api.ingest.schemas.fields import MAX_BATCH_ITEMS
from ingest_api.main import create_app
from tests.ingest_api.ingest.utils.server import Api, ServerProcess, Tenant, landed
from warehouse.layout import Layout
from warehouse.registry import Registry
from warehouse.settings import Settings

EVENT = {"event": "tick", "distinct_id": "user_1"}
JSON = {"Content-Type": "application/json"}
GZIP_JSON = {**JSON, "Content-Encoding": "gzip"}
# The worst the limits allow, by memory once parsed: 20 MB of events whose properties are
# nothing but empty objects (orjson and msgspec both make a 64-byte dict of each 3 bytes).
NESTED_EVENTS = 990
# What the worst requests may add to the server's peak memory over the server at rest (its
# imports alone hold some 140 MB, more or less by machine). Here: about 95 MB; before, 6 GB.
REQUEST_MEMORY_BOUND_BYTES = 200 * 1024 * 1024
# Within 0.2 s on a quiet machine; the margin is for a busy one. Before: 1 to 2 s, 20 s for the
# 600,000 events the limits now refuse.
HEALTHZ_BOUND_SECONDS = 1.0


def nested_event(size: int, fields: bytes = b"") -> bytes:
    """An event of about ``size`` bytes whose properties are nothing but empty objects;
    ``fields`` are more members for it, each followed by a comma."""
    filling = b",".join([b"{}"] * (size // 3 - 20 - len(fields) // 3))
    return b"{" + fields + b'"event":"e","distinct_id":"d","properties":{"a":[' + filling + b"]}}"


def posthog_batch(key: str, events: list[bytes]) -> bytes:
    return b'{"api_key":"' + key.encode() + b'","batch":[' + b",".join(events) + b"]}"


# -- item count -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/batch/", lambda events: {"batch": events}),
        ("/e/", lambda events: events),
        ("/api/analytics/batch", lambda events: {"batch": events}),
        (
            "/track",
            lambda events: [{**e, "environment": "production", "properties": {}} for e in events],
        ),
    ],
    ids=["posthog batch", "posthog array", "native batch", "track"],
)
def test_more_events_than_the_limit_are_413_and_the_limit_itself_lands(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, body
) -> None:
    too_many = body([EVENT] * (MAX_BATCH_ITEMS + 1))
    response = client.post(path, json=too_many, headers=tenant.headers)

    assert response.status_code == 413
    assert f"at most {MAX_BATCH_ITEMS}" in response.json()["detail"]

    response = client.post(
        f"{path}?sync=true", json=body([EVENT] * MAX_BATCH_ITEMS), headers=tenant.headers
    )
    assert response.status_code == 200
    assert len(landed(api.layout, "events", tenant.org_id)) == MAX_BATCH_ITEMS


def test_an_event_larger_than_the_properties_limit_and_64_kib_is_413(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    big = nested_event(api.settings.max_properties_bytes + 64 * 1024 + 100)
    response = client.post("/batch/", content=posthog_batch(tenant.key, [b"{}", big]), headers=JSON)

    assert response.status_code == 413
    assert response.json()["detail"].startswith("event 1 is ")


# -- encodings --------------------------------------------------------------------------------


def test_gzip_with_bytes_after_its_end_is_400(client: httpx.Client, tenant: Tenant) -> None:
    for path, body in [("/batch/", [EVENT]), ("/api/analytics/capture", EVENT)]:
        compressed = gzip.compress(orjson.dumps(body)) + b"trailing garbage"
        response = client.post(path, content=compressed, headers={**GZIP_JSON, **tenant.headers})

        assert response.status_code == 400, path
        assert "bytes after its end" in response.json()["detail"]


def test_a_json_media_type_is_parsed_not_searched_for_json(
    client: httpx.Client, tenant: Tenant
) -> None:
    def post(content_type: str) -> int:
        return client.post(
            "/api/analytics/capture",
            content=orjson.dumps(EVENT),
            headers={"Content-Type": content_type, **tenant.headers},
        ).status_code

    assert post("application/not-json-at-all") == 415
    assert post("text/json-ish") == 415
    assert post("application/json; charset=utf-8") == 200
    assert post("Application/JSON") == 200
    assert post("application/vnd.loom+json") == 200


def test_integers_beyond_64_bits_stay_exact_or_are_rejected_naming_the_field(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    big = 123456789012345678901234567890
    as_text = f'[{{"event": "e", "distinct_id": {big}, "properties": {{"token": "{tenant.key}"}}}}]'
    assert client.post("/e/", content=as_text, headers=JSON).status_code == 200
    # PostHog's rule turns a numeric distinct_id into text: every digit of it.
    [record] = landed(api.layout, "events", tenant.org_id)
    assert record["distinct_id"] == str(big)

    event = f'{{"event": "e", "distinct_id": "d", "properties": {{"n": {2**64}}}}}'
    for path, body in [("/batch/", f'{{"batch": [{event}]}}'), ("/api/analytics/capture", event)]:
        response = client.post(path, content=body, headers={**JSON, **tenant.headers})
        assert response.status_code == 400, path
        [error] = response.json()["errors"]
        assert error["field"] == "properties"
        assert "64-bit" in error["reason"]
    assert len(landed(api.layout, "events", tenant.org_id)) == 1


# -- what posthog-js sends (the browser itself: test_posthog_js.py) ----------------------------


def browser_events(key: str, *names: str) -> list[dict]:
    """Events as posthog-js sends them: the key and the distinct_id only in properties."""
    return [
        {"event": name, "properties": {"distinct_id": "anon_1", "token": key, "$lib": "web"}}
        for name in names
    ]


def test_posthog_js_bodies_authenticate_by_the_token_in_every_event(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    events = browser_events(tenant.key, "$pageview", "clicked")
    plain = orjson.dumps(events)
    gzipped = gzip.compress(plain)
    form = urlencode({"data": base64.b64encode(plain).decode()})
    sends = [
        ("/e/", plain, JSON),  # posthog-js without compression
        ("/e/?compression=gzip-js&ver=1.398.1", gzipped, {"Content-Type": "text/plain"}),
        ("/e/", gzipped, {"Content-Type": "text/plain"}),  # since 1.399: flagged by nothing
        ("/e/?compression=base64", form, {"Content-Type": "application/x-www-form-urlencoded"}),
        (
            "/e/",
            urlencode({"data": plain.decode()}),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
    ]
    for path, body, headers in sends:
        response = client.post(path, content=body, headers=headers)
        assert response.status_code == 200, (path, response.text)

    records = landed(api.layout, "events", tenant.org_id)
    assert [r["event"] for r in records] == ["$pageview", "clicked"] * len(sends)
    assert {r["distinct_id"] for r in records} == {"anon_1"}


def test_posthog_js_tokens_must_agree_and_be_valid(
    client: httpx.Client, api: Api, tenant: Tenant, new_tenant
) -> None:
    other = new_tenant()
    mixed = browser_events(tenant.key, "a") + browser_events(other.key, "b")
    response = client.post("/e/", json=mixed)
    assert response.status_code == 400
    assert "2 different API keys" in response.json()["detail"]

    untokened = [{"event": "a", "properties": {"distinct_id": "anon_1"}}]
    assert client.post("/e/", json=untokened).status_code == 401
    assert (
        client.post("/e/", json=browser_events("loom_analytics_write_nope", "a")).status_code == 401
    )
    assert landed(api.layout, "events", tenant.org_id) == []


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/e/?compression=gzip-js", "text/plain"), ("/e/", "text/plain")],
    ids=["gzip-js", "gzip by its magic bytes"],
)
def test_posthog_decompression_is_bounded_too(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, content_type: str
) -> None:
    limit = api.settings.max_request_bytes
    bomb = gzip.compress(b"[" + b" " * limit + b"]")
    response = client.post(path, content=bomb, headers={"Content-Type": content_type})

    assert response.status_code == 413
    assert "LOOM_MAX_REQUEST_BYTES" in response.json()["detail"]


def test_posthog_rejects_what_it_cannot_decode(client: httpx.Client, tenant: Tenant) -> None:
    body = orjson.dumps(browser_events(tenant.key, "a"))
    lz64 = client.post("/e/?compression=lz64", content=body, headers=JSON)
    assert lz64.status_code == 400
    assert "LZ64" in lz64.json()["detail"]
    assert (
        client.post("/e/", content=body, headers={"Content-Type": "image/png"}).status_code == 415
    )
    brotli = {**JSON, "Content-Encoding": "br"}
    assert client.post("/e/", content=body, headers=brotli).status_code == 415
    response = client.post(
        "/e/?compression=base64",
        content="data=not*base64",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "base64" in response.json()["detail"]


# -- events validated one at a time ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            "/api/analytics/batch",
            {"batch": [EVENT, {**EVENT, "event": "Bad"}, EVENT, "x"], "sent_at": "now"},
            {(None, "sent_at", "extra_forbidden"), (1, "event", "event_name"),
             (3, "batch[3]", "model_attributes_type")},
        ),
        (
            "/track",
            [{**EVENT, "environment": "production", "properties": {}}, {**EVENT}, 5],
            {(1, "environment", "missing"), (1, "properties", "missing"),
             (2, "[2]", "model_attributes_type")},
        ),
    ],
    ids=["native batch", "track"],
)  # fmt: skip
def test_events_checked_one_at_a_time_still_list_every_error_and_land_nothing(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, body: object, expected: set
) -> None:
    response = client.post(f"{path}?sync=true", json=body, headers=tenant.headers)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(e["index"], e["field"], e["type"]) for e in errors} == expected
    assert len(errors) == len(expected)
    assert landed(api.layout, "events", tenant.org_id) == []


# -- what the worst request costs the server -------------------------------------------------


def peak_rss(pid: int) -> int:
    """VmHWM: the most memory the process ever held."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@dataclass(frozen=True)
class BatchRoute:
    """A route that takes many events, and what it needs to take them."""

    path: str
    fields: bytes  # what each of its events needs besides an event name and a distinct_id
    body: Callable[[str, list[bytes]], bytes]  # the request's body: the key, and its events
    headers: Callable[[str], dict[str, str]] = lambda key: GZIP_JSON


def _with_key_header(key: str) -> dict[str, str]:
    return {**GZIP_JSON, "Authorization": f"Bearer {key}"}


BATCH_ROUTES = [
    BatchRoute("/batch/", b"", posthog_batch),
    BatchRoute(
        "/api/analytics/batch",
        b"",
        lambda key, events: b'{"batch":[' + b",".join(events) + b"]}",
        _with_key_header,
    ),
    BatchRoute(
        "/track?sync=true",
        b'"environment":"production",',
        lambda key, events: b"[" + b",".join(events) + b"]",
        _with_key_header,
    ),
]


def worst_bodies(route: BatchRoute, key: str) -> dict[str, bytes]:
    """The worst requests the limits allow, each at most ``LOOM_MAX_REQUEST_BYTES``."""
    limit = 20 * 1024 * 1024
    small = b"{" + route.fields + b'"event":"e","distinct_id":"d","properties":{}}'
    return {
        # As many events as allowed, and 6.7 million tiny ones (was 6 GB and 20 s for 600,000).
        "most events": route.body(key, [small] * MAX_BATCH_ITEMS),
        "tiny events": route.body(key, [b"{}"] * (limit // 3 - 50)),
        # The most JSON values: 20 MB of empty objects in the events' properties.
        "nested": route.body(key, [nested_event(limit // 1000, route.fields)] * NESTED_EVENTS),
        # The largest events, each parsed whole (and then refused for their properties' size).
        "largest events": route.body(
            key, [nested_event(1024 * 1024 + 64 * 1024, route.fields)] * 18
        ),
    }


@pytest.mark.slow
@pytest.mark.parametrize("route", BATCH_ROUTES, ids=lambda route: route.path)
def test_the_worst_requests_the_limits_allow_keep_memory_bounded_and_healthz_responsive(
    server_process: ServerProcess, layout: Layout, route: BatchRoute
) -> None:
    with Registry.open(layout) as registry:
        key = registry.create_key("acme", "web", "write").key
    server = server_process.start()
    at_rest = peak_rss(server.process.pid)
    worst = worst_bodies(route, key)
    assert all(len(body) <= 20 * 1024 * 1024 for body in worst.values())
    compressed = {name: gzip.compress(body, compresslevel=1) for name, body in worst.items()}
    latencies: dict[str, float] = {}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        # Twice: what one round leaves behind must not add up (glibc kept it, see server.py).
        for name, body in [*compressed.items(), *compressed.items()]:
            slowest = watch_healthz(server.base_url)
            started = time.monotonic()
            response = client.post(route.path, content=body, headers=route.headers(key))
            took = time.monotonic() - started
            latencies[name] = max(latencies.get(name, 0), slowest())
            assert response.status_code in (200, 413), (name, response.text[:300])
            print(f"{name}: {response.status_code} in {took:.2f}s, /healthz {latencies[name]:.2f}s")

    added = peak_rss(server.process.pid) - at_rest
    print(f"{route.path}: peak RSS {at_rest / 2**20:.0f} MB at rest + {added / 2**20:.0f} MB")
    assert added < REQUEST_MEMORY_BOUND_BYTES
    assert max(latencies.values()) < HEALTHZ_BOUND_SECONDS, latencies
    assert len(landed(layout, "events")) == 2 * (MAX_BATCH_ITEMS + NESTED_EVENTS)


def one_object_routes() -> list[str]:
    """Every ingest route whose body is one object (capture, identify, sessions, ...), from the
    app's own routes: a route added later is covered without anyone listing it."""
    app = create_app(Settings())
    return [
        context.path
        for context in iter_route_contexts(app.routes)
        if isinstance(route := context.original_route, IngestRoute)
        and route.body_field is not None
        and route.events is None
        and "{" not in (context.path or "{")
    ]


@pytest.mark.slow
def test_events_where_a_route_takes_one_object_are_never_parsed(
    server_process: ServerProcess, layout: Layout
) -> None:
    """A 20 MB batch or array of the nested events sent where one object is due is refused
    without its events being parsed (parsed, it took the server to about 730 MB)."""
    routes = one_object_routes()
    assert {"/api/analytics/capture", "/api/sessions/start"} <= set(routes)
    with Registry.open(layout) as registry:
        key = registry.create_key("acme", "web", "write").key
    server = server_process.start()
    at_rest = peak_rss(server.process.pid)
    nested = [nested_event(20 * 1024 * 1024 // 1000)] * NESTED_EVENTS
    bodies = {
        "batch object": gzip.compress(b'{"batch":[' + b",".join(nested) + b"]}", compresslevel=1),
        "array": gzip.compress(b"[" + b",".join(nested) + b"]", compresslevel=1),
    }
    headers = {**GZIP_JSON, "Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for path in routes:
            for shape, body in bodies.items():
                response = client.post(path, content=body, headers=headers)
                assert response.status_code == 400, (path, shape, response.text[:300])
                assert response.json()["errors"][-1]["field"] in ("body", "batch"), path

    added = peak_rss(server.process.pid) - at_rest
    print(f"{len(routes)} routes: peak RSS {at_rest / 2**20:.0f} MB at rest + {added / 2**20:.0f}")
    assert added < REQUEST_MEMORY_BOUND_BYTES
    assert not list(layout.landing_dir.rglob("*.ndjson"))


def watch_healthz(base_url: str):
    """Poll /healthz until the returned function is called; it gives the slowest answer's time."""
    stop, times = threading.Event(), [0.0]

    def poll() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                times.append(time.monotonic() - started)
                time.sleep(0.02)

    thread = threading.Thread(target=poll)
    thread.start()

    def slowest() -> float:
        stop.set()
        thread.join()
        return max(times)

    return slowest
