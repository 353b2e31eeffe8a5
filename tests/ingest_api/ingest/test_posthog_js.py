"""posthog-js, unchanged but for ``api_host``, in headless Chromium against the API under uvicorn.

The SDK comes from npm (tests/ingest_api/utils/browser/package-lock.json pins it; ``make test`` runs
``npm ci`` there) and is served with the page from a local HTTP server, another origin than the
API's, as on a customer's site. Three releases: the current one; 1.398, the last that sends a
bare array of events flagged ``?compression=gzip-js`` with the key only in
``properties.token`` (still on many sites); and 1.78.5, the oldest npm still serves, which sends
a form of base64 flagged by nothing. Each lands every event it sends, at the time PostHog would
give it."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from tests.ingest_api.ingest.utils.server import Api, Tenant, landed
from tests.utils.network import free_port

BROWSER = Path(__file__).parents[1] / "utils" / "browser"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The page and node_modules, served as a site would serve them."""
    if not (BROWSER / "node_modules" / "posthog-js").is_dir() or not shutil.which("node"):
        pytest.skip("posthog-js is not installed: `make test` runs npm ci in " + str(BROWSER))
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (`make test` installs it with apt)")
    handler = functools.partial(QuietHandler, directory=str(BROWSER))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def browse(site: str, api: Api) -> Callable[..., list[dict]]:
    """Open the page with posthog-js ``sdk`` and return the requests it made to the API."""

    def run(sdk: str, key: str, **extra: object) -> list[dict]:
        scenario = {"sdk": sdk, "api": api.base_url, "key": key, **extra}
        done = subprocess.run(
            ["node", "drive.mjs", f"{site}/index.html", orjson.dumps(scenario).decode()],
            cwd=BROWSER,
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        )
        result = orjson.loads(done.stdout)
        assert result["errors"] == []
        return result["requests"]

    return run


def query(request: dict) -> dict[str, list[str]]:
    return parse_qs(urlparse(request["url"]).query)


def check_landed(api: Api, tenant: Tenant, lib_version: str) -> tuple[list[dict], list[dict]]:
    """What the page's captures and identify must have landed: the events before the identify
    under the anonymous id posthog-js made up, the one after under user_42."""
    events = landed(api.layout, "events", tenant.org_id)
    identities = landed(api.layout, "identities", tenant.org_id)
    [identify] = [i for i in identities if i["kind"] == "identify"]
    anonymous = identify["other_id"]
    assert (identify["distinct_id"], identify["set"]) == (
        "user_42",
        {"email": "user42@example.com"},
    )
    assert anonymous and anonymous != "user_42"
    by_name = {event["event"]: event for event in events}
    assert by_name["checkout_completed"]["event_display_name"] == "Checkout Completed"
    assert by_name["checkout_completed"]["distinct_id"] == anonymous
    assert by_name["checkout_completed"]["properties"]["amount"] == 49.99
    assert by_name["after_identify"]["distinct_id"] == "user_42"
    for record in events + identities:
        assert record["properties"]["$lib_version"] == lib_version
        # posthog-js put the key in properties.token of every event: it must not be stored.
        assert tenant.key not in orjson.dumps(record).decode()
        assert moment(record["timestamp"]) == posthog_time(record), record["client_time"]
    assert landed(api.layout, "ingestion_warnings", tenant.org_id) == []
    return events, identities


def moment(text: str) -> datetime:
    """ISO 8601, or the unix milliseconds posthog-js puts in the query as ``_``."""
    return (
        datetime.fromtimestamp(int(text) / 1000, UTC)
        if text.isdigit()
        else datetime.fromisoformat(text)
    )


def posthog_time(record: dict) -> datetime:
    """The time PostHog gives an event, from what the client sent: queued events carry the
    milliseconds between them and their sending (older releases), others their timestamp and
    the request's send time, both by the browser's clock."""
    sent, received = record["client_time"], moment(record["received_at"])
    if "offset" in sent:
        return received - timedelta(milliseconds=sent["offset"])
    return received + (moment(sent["timestamp"]) - moment(sent["sent_at"]))


@pytest.mark.timeout(180)
def test_posthog_js_1_398_sends_gzip_js_arrays_keyed_by_properties_token(
    browse: Callable[..., list[dict]], api: Api, tenant: Tenant
) -> None:
    requests = browse("posthog-js-1.398", tenant.key)

    captures = [r for r in requests if urlparse(r["url"]).path == "/e/"]
    assert captures and all(r["status"] == 200 for r in captures), requests
    assert {(query(r)["compression"][0], r["contentType"]) for r in captures} == {
        ("gzip-js", "text/plain")
    }
    events, _ = check_landed(api, tenant, "1.398.1")
    assert sorted(event["event"] for event in events) == ["after_identify", "checkout_completed"]


@pytest.mark.timeout(180)
def test_posthog_js_1_78_sends_base64_forms_flagged_by_nothing(
    browse: Callable[..., list[dict]], api: Api, tenant: Tenant
) -> None:
    requests = browse("posthog-js-1.78", tenant.key, script="array.full.js", quietMs=4000)

    captures = [r for r in requests if urlparse(r["url"]).path == "/e/"]
    assert captures and all(r["status"] == 200 for r in captures), requests
    assert {(r["contentType"], "compression" in query(r)) for r in captures} == {
        ("application/x-www-form-urlencoded", False)
    }
    events, _ = check_landed(api, tenant, "1.78.5")
    assert sorted(event["event"] for event in events) == ["after_identify", "checkout_completed"]
    assert all("offset" in event["client_time"] for event in events)


@pytest.mark.timeout(180)
def test_current_posthog_js_sends_gzip_json_and_base64_beacons(
    browse: Callable[..., list[dict]], api: Api, tenant: Tenant
) -> None:
    requests = browse("posthog-js", tenant.key, encodings="all")

    captures = [r for r in requests if urlparse(r["url"]).path in ("/e/", "/i/v0/e/")]
    assert all(r["status"] == 200 for r in captures), requests
    posts = {
        (r["method"], r["contentType"], query(r).get("compression", [None])[0]) for r in captures
    }
    assert ("POST", "text/plain", None) in posts  # gzip, recognized by its magic bytes
    # Plain JSON, sent only once the browser's CORS preflight (not shown to the page) passed.
    assert ("POST", "application/json", None) in posts
    assert ("POST", "application/x-www-form-urlencoded", "base64") in posts  # the beacon
    events, _ = check_landed(api, tenant, "1.449.2")
    assert sorted(event["event"] for event in events) == [
        "after_identify",
        "beacon_sent",
        "checkout_completed",
        "plain_json",
    ]
