"""Every body encoding PostHog's capture decodes, on every PostHog path, each body made the way
the SDK that sends it makes it (posthog-js in a browser: test_posthog_js.py). LZ64 bodies are
made by lz-string 1.5 from npm, the library old posthog-js releases bundled."""

from __future__ import annotations

import base64
import functools
import gzip
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest

from tests.ingest_api.ingest.utils.server import Api, Tenant, landed

BROWSER = Path(__file__).parents[1] / "utils" / "browser"
PATHS = ("/e/", "/batch/", "/capture/", "/i/v0/e/")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TEXT = {"Content-Type": "text/plain"}


# posthog-js's events: the distinct_id only in properties, and non-ASCII text. The key goes in a
# header, so that each body is made once for every test (a key in properties.token:
# test_request_limits.py and test_posthog_js.py).
EVENTS = [
    {"event": name, "properties": {"distinct_id": "anon_1", "text": "é€😀"}}
    for name in ("$pageview", "clicked")
]


def lz64(texts: list[str]) -> list[str]:
    """LZString.compressToBase64 of each text, by the JavaScript library itself."""
    if not (BROWSER / "node_modules" / "lz-string").is_dir() or not shutil.which("node"):
        pytest.skip("lz-string is not installed: `make test` runs npm ci in " + str(BROWSER))
    script = (
        "import LZString from 'lz-string';"
        "const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(texts.map((t) => LZString.compressToBase64(t))))"
    ).replace("require('fs')", "(await import('fs'))")
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=BROWSER,
        input=orjson.dumps(texts),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return orjson.loads(done.stdout)


@functools.cache
def bodies() -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """What each SDK release sends: (query, body, headers)."""
    plain = orjson.dumps(EVENTS)
    b64 = base64.b64encode(plain).decode()
    [packed] = lz64([plain.decode()])
    return {
        # posthog-js 1.78: a form of encodeURIComponent(base64), flagged by nothing
        "form base64, no flag": (
            "?_=1768737600000&ver=1.78.5",
            f"data={quote(b64)}".encode(),
            FORM,
        ),
        # the same with the '+' of base64 left unescaped: a form decoder reads a space
        "form base64, raw +": ("", f"data={b64}&compression=base64".encode(), FORM),
        "form base64, query flag": ("?compression=base64", f"data={quote(b64)}".encode(), FORM),
        "form JSON": ("", f"data={quote(plain.decode())}".encode(), FORM),
        # posthog-js before gzip: LZString, flagged in the form
        "form lz64": ("", f"data={quote(packed)}&compression=lz64".encode(), FORM),
        "text lz64, query flag": ("?compression=lz64", packed.encode(), TEXT),
        "text lz64, header flag": ("", packed.encode(), {**TEXT, "Content-Encoding": "lz64"}),
        "gzip-js": ("?compression=gzip-js", gzip.compress(plain), TEXT),
        "gzip, no flag": ("", gzip.compress(plain), TEXT),  # posthog-js >= 1.399
        "gzip flag, JSON body": ("?compression=gzip-js", plain, TEXT),  # the flag is wrong
        "lz64 flag, gzip body": ("?compression=lz64", gzip.compress(plain), TEXT),
        "Content-Encoding gzip": ("", gzip.compress(plain), {**TEXT, "Content-Encoding": "gzip"}),
        "whole body base64": ("", b64.encode(), TEXT),
        "unknown flag, JSON": ("?compression=zstd", plain, {"Content-Type": "application/json"}),
    }


CASES = (
    "form base64, no flag", "form base64, raw +", "form base64, query flag", "form JSON",
    "form lz64", "text lz64, query flag", "text lz64, header flag", "gzip-js", "gzip, no flag",
    "gzip flag, JSON body", "lz64 flag, gzip body", "Content-Encoding gzip", "whole body base64",
    "unknown flag, JSON",
)  # fmt: skip


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", PATHS)
def test_every_posthog_encoding_lands_every_event_on_every_path(
    client: httpx.Client, api: Api, tenant: Tenant, path: str, case: str
) -> None:
    query, body, headers = bodies()[case]
    response = client.post(path + query, content=body, headers={**headers, **tenant.headers})

    assert response.status_code == 200, response.text
    records = landed(api.layout, "events", tenant.org_id)
    assert [(r["event"], r["properties"]["text"]) for r in records] == [
        ("$pageview", "é€😀"),
        ("clicked", "é€😀"),
    ]


def lz64_bomb(characters: int) -> bytes:
    """LZ64 of ``characters`` spaces, written code by code: a space, then each code the entry
    being made (one character longer than the last), as LZString's compressor ends up writing
    for a long run, which its JavaScript takes minutes to compress at this size."""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    bits: list[int] = []

    def write(value: int, width: int) -> None:
        bits.extend((value >> i) & 1 for i in range(width))

    write(0, 2)  # a literal of 8 bits
    write(ord(" "), 8)
    written, entry, code, width, enlarge_in = 1, 1, 4, 3, 4
    while written < characters:
        write(code, width)
        entry += 1
        written += entry
        code += 1
        enlarge_in -= 1
        if enlarge_in == 0:
            enlarge_in, width = 1 << width, width + 1
    write(2, width)  # the end
    bits.extend([0] * (-len(bits) % 6))
    chars = [int("".join(map(str, bits[i : i + 6])), 2) for i in range(0, len(bits), 6)]
    return bytes(alphabet[c] for c in chars)


def test_lz64_is_bounded_and_rejected_clearly(
    client: httpx.Client, api: Api, tenant: Tenant
) -> None:
    headers = {**TEXT, **tenant.headers}
    [packed] = lz64([orjson.dumps(EVENTS).decode()])
    small = lz64_bomb(1000)
    assert client.post("/e/?compression=lz64", content=small, headers=headers).status_code == 400

    bomb = lz64_bomb(api.settings.max_request_bytes + 1)
    assert len(bomb) < 64 * 1024
    too_large = client.post("/e/?compression=lz64", content=bomb, headers=headers)
    assert too_large.status_code == 413
    assert "LOOM_MAX_REQUEST_BYTES" in too_large.json()["detail"]

    for body in (packed[: len(packed) // 2], "not*lz64", "A" * (1024 * 1024 + 4)):
        response = client.post("/e/?compression=lz64", content=body, headers=headers)
        assert response.status_code in (400, 413), body[:20]
        assert "LZ64" in response.json()["detail"]
    assert landed(api.layout, "events", tenant.org_id) == []


def test_a_form_must_be_a_form(client: httpx.Client, tenant: Tenant) -> None:
    response = client.post("/e/", content=orjson.dumps(EVENTS), headers={**FORM, **tenant.headers})
    assert response.status_code == 400
    assert "data=" in response.json()["detail"]
