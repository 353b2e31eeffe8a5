"""A minimal Server-Sent Events reader over a real httpx streaming response, in a thread."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import httpx
import orjson


@dataclass(frozen=True)
class Message:
    event: str | None
    data: object | None
    comment: str | None


@dataclass
class SseReader:
    """Reads ``url`` until closed; every message (comments included) lands in ``messages``."""

    url: str
    headers: dict[str, str]
    messages: queue.Queue[Message] = field(default_factory=queue.Queue)
    status: int | None = None

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=60))
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> SseReader:
        self._thread.start()
        assert self._opened.wait(20), "the stream did not open"
        return self

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                self._opened.set()
                event, data, comments = None, [], []
                for line in response.iter_lines():
                    if line.startswith(":"):
                        comments.append(line[1:].strip())
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and (event or data or comments):
                        payload = orjson.loads("\n".join(data)) if data else None
                        self.messages.put(Message(event, payload, "\n".join(comments) or None))
                        event, data, comments = None, [], []
        except (httpx.TransportError, httpx.StreamError):
            pass  # closed by close() or by the server
        finally:
            self._opened.set()

    def next(self, timeout: float = 10, *, skip_comments: bool = True) -> Message:
        while True:
            message = self.messages.get(timeout=timeout)
            if not (skip_comments and message.event is None and message.data is None):
                return message

    def until(self, predicate, timeout: float = 10) -> list[Message]:
        """Messages up to and including the first one matching ``predicate``."""
        seen = []
        while True:
            seen.append(self.next(timeout, skip_comments=False))
            if predicate(seen[-1]):
                return seen

    def finished(self, timeout: float) -> bool:
        """Whether the server ended the stream within ``timeout`` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        self._client.close()
        self._thread.join(timeout=10)
