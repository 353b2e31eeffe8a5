"""How ``loom up`` starts the ingest and read API."""

from __future__ import annotations

from warehouse.layout import Layout
from warehouse.settings import Settings
from warehouse.stack import Service, loom_command


def api_service(settings: Settings, layout: Layout) -> Service:
    """``loom serve`` on the configured interface and port."""
    return Service(
        "ingest API",
        loom_command("serve", "--host", settings.host, "--port", str(settings.port)),
        f"http://{settings.host}:{settings.port}  (dashboard: /, API docs: /docs)",
    )
