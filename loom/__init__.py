"""The ``loom`` command: the one package that composes the others (``ingest_api``,
``dagster_project``, ``warehouse``); none of them imports it."""
