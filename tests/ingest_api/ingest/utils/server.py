"""An ingest API to send to (in a thread, or `loom serve` in a process), tenants, and what
landed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from tests.utils.network import CLIENT_SSL_CONTEXT
from warehouse.layout import PART_GLOB, Layout
from warehouse.registry import ApiKey
from warehouse.settings import Settings


def wait_healthy(
    base_url: str,
    timeout: float = 60.0,
    process: subprocess.Popen | None = None,
    *,
    answering: bool = False,
) -> None:
    """Generous: on a machine shared with other test runs, a cold start can take many seconds.
    With ``answering``, any answer will do (a server that starts unable to land says 503)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=1, verify=CLIENT_SSL_CONTEXT) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                if client.get("/healthz").status_code == 200 or answering:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise TimeoutError(f"{base_url} did not become healthy")


@dataclass(frozen=True)
class Api:
    base_url: str
    layout: Layout
    settings: Settings


@dataclass(frozen=True)
class Tenant:
    key: str
    record: ApiKey

    @property
    def org_id(self) -> str:
        return self.record.org_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def landed(layout: Layout, stream: str, org_id: str | None = None) -> list[dict]:
    """Every visible landed record of a stream (of one org), in file order."""
    org = org_id or "*"
    records = []
    for path in sorted(layout.stream_dir(stream).glob(f"org_id={org}/date=*/hour=*/{PART_GLOB}")):
        records.extend(orjson.loads(line) for line in path.read_bytes().splitlines())
    return records


def wait_for_records(
    layout: Layout, stream: str, org_id: str, count: int, timeout: float
) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        records = landed(layout, stream, org_id)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


LOOM = [sys.executable, "-m", "loom"]


@dataclass
class ServerProcess:
    """``loom serve`` in a subprocess, its output collected in a file."""

    data_dir: Path
    port: int
    log_path: Path
    process: subprocess.Popen | None = None
    environment: dict[str, str] = field(default_factory=dict)  # LOOM_* settings of its own

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, healthy: bool = True) -> ServerProcess:
        """Start it, and wait until it answers ``/healthz``: with 200, unless not ``healthy``
        (it may start unable to land)."""
        env = {
            **os.environ,
            "LOOM_DATA_DIR": str(self.data_dir),
            "LOOM_PORT": str(self.port),
            **self.environment,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([*LOOM, "serve"], env=env, stdout=log, stderr=log)
        wait_healthy(self.base_url, process=self.process, answering=not healthy)
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    @property
    def logs(self) -> str:
        return self.log_path.read_text()
