"""The Dagster UI of a running stack, seen through headless Chromium: `dagster dev` started exactly
as `loom up` starts it, on the warehouse the pipeline tests built (so its runs are there), and
the asset graph and hourly partitions read from the rendered page. With
``LOOM_UPDATE_SCREENSHOT=1`` it also refreshes the screenshot the README shows
(docs/dagster-asset-graph.png); otherwise the screenshot goes to a temporary directory, so a test
run leaves the working tree as it was."""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dagster_project.assets.dbt import GROUPS_IN_LAYER_ORDER
from dagster_project.partitions import hour_key
from dagster_project.service import dagster_service
from tests.dagster_project.utils.in_order import InOrder
from tests.utils.network import free_port
from warehouse.layout import floor_hour
from warehouse.settings import Settings, get_settings

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dagster-asset-graph.png"
STARTUP_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def dagster_ui(in_order: InOrder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(
            "Debian's chromium is not installed (`make test` installs it with apt when it can)"
        )
    layout = in_order.warehouse.layout
    settings = Settings(data_dir=layout.data_dir, dagster_port=free_port())
    service = dagster_service(settings, layout)
    log = (tmp_path_factory.mktemp("dagster-dev") / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        service.argv,
        env={**os.environ, **(service.env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its webserver, daemon and code servers form one group to stop
    )
    base = f"http://127.0.0.1:{settings.dagster_port}"
    try:
        wait_for_definitions(base, process)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)  # dagster dev shuts its children down on SIGTERM
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def wait_for_definitions(base: str, process: subprocess.Popen) -> None:
    """Until the webserver answers and the code location has loaded the assets."""
    query = {"query": "{ assetNodes { assetKey { path } } }"}
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "dagster dev exited during start-up"
        try:
            nodes = httpx.post(f"{base}/graphql", json=query, timeout=5).json()["data"][
                "assetNodes"
            ]
            if nodes:
                return
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    pytest.fail(f"the Dagster UI did not load the definitions within {STARTUP_TIMEOUT_S}s")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM if Path(CHROMIUM).exists() else "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1600,1000",
        "--virtual-time-budget=20000",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def page_text(profile: Path, url: str) -> str:
    dom = chromium(profile, "--dump-dom", url).stdout
    visible = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", visible)))


# Includes `dagster dev`'s start-up, and the pipeline runs when this test is run on its own.
@pytest.mark.timeout(900)
def test_the_ui_shows_the_asset_graph_and_its_hourly_partitions(
    dagster_ui: str, tmp_path: Path
) -> None:
    # The lineage shows the areas as groups, from the raw loads to the snapshot readers see.
    lineage = page_text(tmp_path / "profile-lineage", f"{dagster_ui}/asset-groups")
    groups = GROUPS_IN_LAYER_ORDER
    assert all(f" {group} {group} " in lineage for group in groups), lineage[:2000]
    # ... and the webserver places each asset in its layer (what the catalog page lists).
    query = {"query": "{ assetNodes { assetKey { path } groupName } }"}
    nodes = httpx.post(f"{dagster_ui}/graphql", json=query, timeout=30).json()["data"]
    placed = {node["assetKey"]["path"][-1]: node["groupName"] for node in nodes["assetNodes"]}
    expected = {
        "raw_events": "raw",
        "stg_events": "staging",
        "int_identity_map": "identity",
        "int_processed_windows": "sessions",
        "fct_events": "product_analytics",
        "dim_persons": "product_analytics",
        "fct_sessions": "release_health",
        "release_health": "release_health",
        "compacted_lake_files": "maintenance",
        "published_snapshot": "serving",
        "release_health_alerts": "serving",  # reported on by the alert sensors
    }
    assert {asset: placed.get(asset) for asset in expected} == expected

    partitions = page_text(
        tmp_path / "profile-partitions", f"{dagster_ui}/assets/raw_events?view=partitions"
    )
    # One partition per hour from LOOM_PIPELINE_START up to the current, still open hour; the hour
    # the pipeline tests ran through `loom run` shows as materialized.
    count = int(re.search(r"([\d,]+) Partitions", partitions).group(1).replace(",", ""))
    keys = set(re.findall(r"\d{4}-\d\d-\d\d-\d\d:00", partitions))
    start = get_settings().pipeline_start
    # The page may have been rendered just before the hour turned.
    open_hours = [floor_hour(datetime.now(UTC)) - timedelta(hours=h) for h in (0, 1)]
    assert hour_key(start) in keys
    assert keys & {hour_key(hour) for hour in open_hours}
    assert count in {(hour - start) // timedelta(hours=1) + 1 for hour in open_hours}
    assert re.search(r"Materialized \(1\)", partitions), partitions[:2000]

    update = os.environ.get("LOOM_UPDATE_SCREENSHOT") == "1"
    screenshot = README_SCREENSHOT if update else tmp_path / README_SCREENSHOT.name
    chromium(tmp_path / "profile-shot", f"--screenshot={screenshot}", f"{dagster_ui}/asset-groups")
    assert screenshot.stat().st_size > 20_000
