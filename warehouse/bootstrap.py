"""The demo org and project ``make up`` / ``loom bootstrap`` create, with one key of each kind.

Idempotent: the keys are saved (only there in clear) to ``Layout.demo_keys_path`` and reused while
they are still valid, so restarting ``make up`` keeps the same keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from warehouse.layout import Layout
from warehouse.registry import Registry

DEMO_ORG = "demo"
DEMO_PROJECT = "demo"


def _saved_keys(path: Path, registry: Registry) -> dict[str, Any] | None:
    try:
        saved = json.loads(path.read_text())
        write, rw = registry.lookup(saved["write_key"]), registry.lookup(saved["rw_key"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    valid = (
        write is not None
        and rw is not None
        and not write.revoked
        and not rw.revoked
        and (write.kind, rw.kind) == ("write", "rw")
    )
    return saved if valid else None


def bootstrap_demo(layout: Layout | None = None) -> dict[str, Any]:
    """The demo keys: reused from the keys file when still valid, else created and saved."""
    layout = layout or Layout.from_settings()
    with Registry.open(layout) as registry:
        saved = _saved_keys(layout.demo_keys_path, registry)
        if saved is not None:
            return saved
        write = registry.create_key(DEMO_ORG, DEMO_PROJECT, "write")
        rw = registry.create_key(DEMO_ORG, DEMO_PROJECT, "rw")
    keys = {
        "org_id": write.record.org_id,
        "org_name": DEMO_ORG,
        "project_id": write.record.project_id,
        "project_name": DEMO_PROJECT,
        "write_key": write.key,
        "rw_key": rw.key,
    }
    path = layout.demo_keys_path
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    # Readable by the owner only: the file holds keys in clear.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle, indent=2)
    os.replace(temp, path)
    return keys
