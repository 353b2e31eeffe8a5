"""``loom keys``, ``loom bootstrap`` and ``loom up``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.ingest_api.ingest.utils.server import LOOM, wait_healthy
from tests.utils.network import free_port
from warehouse.bootstrap import bootstrap_demo
from warehouse.cli import main
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


@pytest.mark.slow
def test_loom_up_bootstraps_serves_and_stops_cleanly_on_ctrl_c(
    data_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LOOM_DATA_DIR": str(data_dir),
        "LOOM_PORT": str(port),
        "LOOM_DAGSTER_PORT": str(free_port()),  # whatever else `up` starts stays off shared ports
    }
    log_path = tmp_path / "up.log"  # a file: a pipe nobody reads would block the children
    with log_path.open("wb") as log:
        process = subprocess.Popen([*LOOM, "up"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process=process)
        keys = json.loads((data_dir / "demo-keys.json").read_text())
        response = httpx.post(
            f"http://127.0.0.1:{port}/track?sync=true",
            json={"environment": "production", "event": "Signed Up", "properties": {}},
            headers={"Authorization": f"Bearer {keys['write_key']}"},
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)  # to `loom up` only: it must stop its children itself
        process.wait(timeout=60)
    finally:
        if process.poll() is None:  # the test failed midway: still stop the children via `up`
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    output = log_path.read_text()
    assert process.returncode == 0, output[-2000:]
    assert keys["write_key"] in output and keys["rw_key"] in output
    assert f"http://127.0.0.1:{port}" in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
