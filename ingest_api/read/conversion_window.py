"""``conversion_window``: how long after its first step a funnel, or after their exposure an
experiment's person, may take, as ``<n> <unit>`` (``30 minutes``, ``1 hour``, ``7 days``,
``2 weeks``), from 1 minute to :data:`MAX_WINDOW`. Validated as a query parameter (a 400 naming
it); :func:`window_length` gives the :class:`timedelta`, which DuckDB binds as an INTERVAL. The
OpenAPI pattern states the bound too: each unit's count is at most what fits in MAX_WINDOW."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Query
from pydantic import BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

from ingest_api.number_patterns import integers_up_to

UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
         "week": timedelta(weeks=1)}  # fmt: skip
# The shape, and the shape within the bound (what the OpenAPI shows).
PATTERN = r"^[1-9][0-9]{0,5} (minute|hour|day|week)s?$"
MAX_WINDOW = timedelta(days=365)
BOUNDED_PATTERN = "^({})$".format(
    "|".join(
        f"{integers_up_to(MAX_WINDOW // length, zero=False)} {unit}s?"
        for unit, length in UNITS.items()
    )
)
HELP = (
    "`<n> <unit>`, unit minute, hour, day or week (plural allowed), e.g. `7 days`;"
    f" from 1 minute to {MAX_WINDOW.days} days"
)


def window_length(text: str) -> timedelta:
    count, unit = text.split(" ")
    return int(count) * UNITS[unit.removesuffix("s")]


def _shaped(value: Any) -> Any:
    # Before pydantic's own pattern check, whose message would only quote the regex.
    if isinstance(value, str) and re.fullmatch(PATTERN, value) is None:
        raise PydanticCustomError("conversion_window", f"not a window: send {HELP}")
    return value


def _bounded(text: str) -> str:
    if window_length(text) > MAX_WINDOW:
        raise PydanticCustomError(
            "conversion_window", f"{text!r} is longer than {MAX_WINDOW.days} days"
        )
    return text


def conversion_window(default: str) -> Any:
    """The ``Query`` of a conversion window parameter."""
    return Query(description=f"{HELP}. Default `{default}`.")


# The bounded pattern is declared for the OpenAPI; _shaped and _bounded reject what it does not
# match first, each with its own message.
ConversionWindow = Annotated[
    str,
    StringConstraints(pattern=BOUNDED_PATTERN),
    BeforeValidator(_bounded),
    BeforeValidator(_shaped),
]
