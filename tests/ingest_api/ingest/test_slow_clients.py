"""Clients that trickle their headers or their body are cut off with a 408 once the configured
deadline passes, against a real ``loom serve``, while other clients keep being served. Before,
uvicorn kept such connections (and a body's request task) open for as long as the client liked."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.ingest_api.ingest.utils.server import ServerProcess
from warehouse.layout import Layout
from warehouse.registry import Registry

pytestmark = pytest.mark.slow

DEADLINE_SECONDS = 1.0
DRIP_SECONDS = 0.2  # one byte this often: the connection is never idle
GIVE_UP_SECONDS = 5.0  # the test's own bound on a connection the server never closes


def trickle(port: int, opening: bytes, drip: bytes) -> tuple[float | None, bytes]:
    """Send ``opening``, then ``drip`` every DRIP_SECONDS until the server closes the connection:
    (seconds from the opening until it closed, None if it never did; what the server sent)."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.settimeout(DRIP_SECONDS)
        started = time.monotonic()
        connection.sendall(opening)
        answer = b""
        while time.monotonic() - started < GIVE_UP_SECONDS:
            try:
                chunk = connection.recv(4096)
            except TimeoutError:
                try:
                    connection.sendall(drip)
                except OSError:
                    return time.monotonic() - started, answer
                continue
            except OSError:
                return time.monotonic() - started, answer
            if not chunk:
                return time.monotonic() - started, answer
            answer += chunk
        return None, answer


def test_trickling_headers_and_bodies_are_cut_off_while_others_are_served(
    server_process: ServerProcess, layout: Layout
) -> None:
    with Registry.open(layout) as registry:
        key = registry.create_key("acme", "web", "write").key
    server_process.environment = {
        "LOOM_HEADER_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
        "LOOM_BODY_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
    }
    server = server_process.start()
    headers = f"POST /track HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n".encode()
    complete = headers + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    slow_clients = {
        "idle": (b"", b""),
        "headers 1": (b"POST /track HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a"),
        "headers 2": (headers + b"X-Slow: ", b"b"),
        "body 1": (complete + b'{"event": "', b"x"),
        "body 2": (complete, b" "),
    }
    outcomes: dict[str, tuple[float | None, bytes]] = {}

    def run(name: str) -> None:
        outcomes[name] = trickle(server_process.port, *slow_clients[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in slow_clients]
    for thread in threads:
        thread.start()
    latencies = []
    with httpx.Client(base_url=server.base_url, headers={"X-API-Key": key}) as client:
        while any(thread.is_alive() for thread in threads):
            sent = time.monotonic()
            response = client.post(
                "/track?sync=true",
                json={"environment": "production", "event": "Still Served", "properties": {}},
            )
            latencies.append(time.monotonic() - sent)
            assert response.status_code == 200, response.text
            time.sleep(0.05)
    for thread in threads:
        thread.join()

    for name, (closed_after, answer) in outcomes.items():
        assert closed_after is not None, f"{name}: never closed"
        within = DEADLINE_SECONDS * 0.9 <= closed_after <= DEADLINE_SECONDS + 1.5
        assert within, (name, closed_after)
        # A connection that sent nothing is closed as an idle one is: without an answer.
        expected = b"" if name == "idle" else b"HTTP/1.1 408 Request Timeout\r\n"
        assert answer[: len(expected)] == expected and bool(answer) == bool(expected), name
    assert len(latencies) >= 5 and max(latencies) < 0.5, latencies
    assert server.stop() in (0, -15)
    assert "Traceback" not in server.logs
