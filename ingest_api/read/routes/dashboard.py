"""The release-health dashboard: one static page at ``/`` and ``/dashboard`` with its scripts and
the vendored chart library under ``/dashboard/assets/``. The page holds the rw key in the
browser's ``sessionStorage`` and calls the read API with it; nothing here authenticates."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
ASSETS_PATH = "/dashboard/assets"
# Only the page's own origin: the page loads nothing from elsewhere and sends its key nowhere else.
# Inline styles are allowed because uPlot sizes its elements with them.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        " frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(tags=["dashboard"], include_in_schema=False)
assets = StaticFiles(directory=STATIC_DIR)


@router.get("/")
@router.get("/dashboard")
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)
