"""What a package tells ``loom up`` to start: a long-running child process."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    url: str
    env: dict[str, str] | None = None  # added to the parent's environment
