"""No API key lands, wherever a client put it: any string of a record that holds one (of any org,
at any depth, under any name, inside a longer text) becomes ``[Filtered]``, as Sentry's data
scrubbing replaces what looks like a secret.

Keys have a format (:func:`warehouse.registry.generate_key`): the fixed prefix, the kind, 32 hex
digits. So a record needs one scan of its serialized line for the prefix (a C ``memmem``: JSON
never escapes the prefix's characters), and only a record that holds it is walked string by
string; no key registry is consulted.
"""

from __future__ import annotations

import re
from typing import Any

from warehouse.registry import KEY_KINDS, KEY_PREFIX

FILTERED = "[Filtered]"
KEY_PREFIX_BYTES = KEY_PREFIX.encode()
KEY = re.compile(re.escape(KEY_PREFIX) + f"(?:{'|'.join(KEY_KINDS)})_[0-9a-f]{{32}}")
# The fields of a record a warning names (the rest are only counted).
NAMED_FIELDS = 20


def may_hold_key(line: bytes) -> bool:
    """Whether a serialized record may hold a key: it holds the keys' prefix."""
    return KEY_PREFIX_BYTES in line


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def scrubbed(value: Any, path: str, found: list[str]) -> Any:
    """``value`` with every string holding a key, object keys too, replaced by ``[Filtered]``;
    the path of each (``properties.debug.auth``) is appended to ``found``."""
    if isinstance(value, str):
        if KEY.search(value):
            found.append(path)
            return FILTERED
        return value
    if isinstance(value, dict):
        result = {}
        for name, item in value.items():
            if KEY.search(name):
                name = FILTERED
                found.append(_child(path, name))
            result[name] = scrubbed(item, _child(path, name), found)
        return result
    if isinstance(value, list):
        return [scrubbed(item, f"{path}[{index}]", found) for index, item in enumerate(value)]
    return value
