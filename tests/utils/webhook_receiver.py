"""A real HTTP webhook receiver on loopback, answering as a test scripts it: a status, or hanging
(holding the request unanswered) for a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

HANG = "hang"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict
    at: float


@dataclass
class Receiver:
    """Answers each POST with the next of ``script`` (a status code, or HANG), then 200."""

    url: str
    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hang_seconds: float = 30.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(self, *answers: int | str) -> None:
        with self.lock:
            self.script.extend(answers)

    def bodies(self) -> list[dict]:
        with self.lock:
            return [request.body for request in self.received]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.received.append(
                    Received(self.path, dict(self.headers), orjson.loads(body), time.monotonic())
                )
                answer = receiver.script.pop(0) if receiver.script else 200
            if answer == HANG:
                time.sleep(receiver.hang_seconds)
                return
            self.send_response(int(answer))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
