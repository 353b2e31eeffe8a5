"""How ``loom up`` starts the ingest and read API."""

from __future__ import annotations

import sys

from warehouse.layout import Layout
from warehouse.service import Service
from warehouse.settings import Settings


def api_service(settings: Settings, layout: Layout) -> Service:
    """``python -m ingest_api`` (``loom serve``) on the configured interface and port."""
    return Service(
        "ingest API",
        [sys.executable, "-m", "ingest_api", "--host", settings.host, "--port", str(settings.port)],
        f"http://{settings.host}:{settings.port}  (dashboard: /, API docs: /docs)",
    )
