"""``python -m ingest_api``: run the ingest and read API (the options of ``loom serve``)."""

from ingest_api.cli import serve

serve()
