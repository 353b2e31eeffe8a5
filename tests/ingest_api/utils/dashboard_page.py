"""One headless Chromium page driven by ``browser/drive_dashboard.mjs``, for the tests that open
the release-health dashboard: the dashboard suite and ``loom up``'s first start."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSER = Path(__file__).parent / "browser"
DRIVER = BROWSER / "drive_dashboard.mjs"
PLAYWRIGHT = BROWSER / "node_modules" / "playwright-core"
CHROMIUM = "/usr/bin/chromium"


class Page:
    """The node driver's page: one JSON command per line in, one answer per line out."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def do(self, op: str, **arguments: object) -> object:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline() or '{"error": "the driver exited"}')
        assert "error" not in answer, f"{op}: {answer['error']}"
        return answer["ok"]

    def wait(self, until: str, timeout_ms: int = 30_000) -> None:
        self.do("wait", until=until, timeout=timeout_ms)

    def log_in(self, base_url: str, key: str, project: int | None = None) -> None:
        self.do("goto", url=f"{base_url}/")
        self.do("fill", selector="#key", value=key)
        self.do("fill", selector="#project", value="" if project is None else str(project))
        self.do("click", selector="#login button[type=submit]")

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=30)


def open_page() -> Page:
    """A new page; skips the test, saying why, where the browser tooling is missing."""
    if not PLAYWRIGHT.is_dir() or not shutil.which("node"):
        pytest.skip(f"playwright-core is not installed: `make test` runs npm ci in {BROWSER}")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (`make test` installs it with apt)")
    return Page()
