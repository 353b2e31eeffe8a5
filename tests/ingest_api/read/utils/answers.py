"""What an answer says, apart from which publish it was read from (the ``snapshot`` field every
JSON answer carries): to compare answers read from two publishes of the same numbers."""

from __future__ import annotations

from typing import Any


def without_snapshot(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != "snapshot"}
