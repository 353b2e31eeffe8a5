"""Event names, shared by both halves of the API: what ingest stores an event under, and so what
every read that names an event must compare with.

A compatibility SDK may send a display name (``Checkout Completed``); ingest stores it under its
native name (``checkout_completed``, the name as sent kept as ``event_display_name``). A read
given either form normalizes it with the same function, so ``event = <normalized>`` finds the
event however it was sent."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

from warehouse.streams import NATIVE_EVENT_PATTERN

NATIVE_EVENT_NAME = re.compile(NATIVE_EVENT_PATTERN)
NAME_RULE = (
    "event names are lowercase letters, digits, '_', '$' or '.', start with a lowercase letter "
    "or '$', and have at most 200 characters (e.g. checkout_completed)"
)
NOT_NAME_CHARACTERS = re.compile(r"[^a-z0-9_$.]+")


def normalize_event_name(name: str) -> tuple[str, str | None]:
    """The compatibility endpoints' rule: ``(native name, display name or None)``.

    A name that is already native is kept. Otherwise it is lowercased and every run of other
    characters becomes one ``_`` (``Checkout Completed`` -> ``checkout_completed``), and the name
    as sent is kept as the display name. A name that is still not native is rejected.
    """
    if NATIVE_EVENT_NAME.fullmatch(name):
        return name, None
    normalized = NOT_NAME_CHARACTERS.sub("_", name.lower()).strip("_")
    if not NATIVE_EVENT_NAME.fullmatch(normalized):
        raise PydanticCustomError(
            "event_name",
            "event name '{name}' normalizes to '{normalized}', which is not valid: " + NAME_RULE,
            {"name": name[:60], "normalized": normalized[:60]},
        )
    return normalized, name


def stored_event_name(name: str) -> str:
    """The name an event sent as ``name`` (native or display) is stored under."""
    return normalize_event_name(name)[0]


# A query parameter naming an event in either form, validated to the stored name: a name no
# event can be stored under is a 400 naming the parameter, like the ingest routes' error.
StoredEventName = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(stored_event_name)
]
