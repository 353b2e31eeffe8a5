"""``loom keys``, ``loom bootstrap`` (``loom up``: tests/loom/test_stack.py) and the app that
``loom serve`` runs."""

from __future__ import annotations

import asyncio
import gc
import json
import re

from click.testing import CliRunner
from fastapi import FastAPI

from ingest_api.main import create_app, create_server_app
from ingest_api.server import uvicorn_config
from loom.cli import main
from warehouse.bootstrap import bootstrap_demo
from warehouse.layout import Layout
from warehouse.registry import Registry


def loom(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_keys_create_list_and_revoke(layout: Layout) -> None:
    created = loom("keys", "create", "--org", "acme", "--project", "web", "--kind", "write")
    key = re.search(r"key:\s+(loom_analytics_write_\w+)", created).group(1)
    project_id = int(re.search(r"project id (\d+)", created).group(1))
    key_id = re.search(r"key id:\s+(key_\w+)", created).group(1)
    loom("keys", "create", "--org", "acme", "--project", "web", "--kind", "rw")

    with Registry.open(layout) as registry:
        record = registry.lookup(key)
    assert (record.key_id, record.project_id, record.kind, record.org_name) == (
        key_id,
        project_id,
        "write",
        "acme",
    )

    listed = loom("keys", "list")
    assert key_id in listed and f"…{key[-4:]}" in listed and key not in listed
    assert listed.count("acme") == 2 and f"web ({project_id})" in listed

    assert f"revoked {key_id}" in loom("keys", "revoke", key_id)
    with Registry.open(layout) as registry:
        assert registry.lookup(key).revoked


def test_keys_create_rejects_an_unknown_kind_and_revoke_an_unknown_key(layout: Layout) -> None:
    runner = CliRunner()
    bad_kind = runner.invoke(
        main, ["keys", "create", "--org", "a", "--project", "p", "--kind", "admin"]
    )
    unknown = runner.invoke(main, ["keys", "revoke", "key_nope"])

    assert bad_kind.exit_code == 2 and "admin" in bad_kind.output
    assert unknown.exit_code == 1 and "no key" in unknown.output


def test_bootstrap_is_idempotent_and_replaces_revoked_demo_keys(layout: Layout) -> None:
    first = json.loads(loom("bootstrap"))
    again = bootstrap_demo(layout)

    assert again == first == json.loads(layout.demo_keys_path.read_text())
    assert first["write_key"].startswith("loom_analytics_write_") and first["rw_key"].startswith(
        "loom_analytics_rw_"
    )
    assert layout.demo_keys_path.stat().st_mode & 0o777 == 0o600
    with Registry.open(layout) as registry:
        assert registry.lookup(first["rw_key"]).project_id == first["project_id"]
        registry.revoke(first["write_key"])

    replaced = bootstrap_demo(layout)

    assert replaced["write_key"] != first["write_key"]
    assert (replaced["org_id"], replaced["project_id"]) == (first["org_id"], first["project_id"])


def test_a_server_freezes_its_startup_heap_and_an_app_made_in_a_program_does_not(
    layout: Layout,
) -> None:
    # An app within another program (a test) leaves that program's heap alone: its shutdown's
    # full collection would walk all of it. `loom serve` runs the freezing one.
    assert uvicorn_config().app == "ingest_api.main:create_server_app"
    for app, frozen_while_serving in ((create_app(), False), (create_server_app(), True)):
        gc.unfreeze()
        assert asyncio.run(frozen_while_started(app)) is frozen_while_serving
        assert gc.get_freeze_count() == 0


async def frozen_while_started(app: FastAPI) -> bool:
    async with app.router.lifespan_context(app):
        return gc.get_freeze_count() > 0
