"""`loom doctor` on a copy of the read suite's built warehouse: it names each damaged file and
what is wrong with it, and the repair it prints (drop the files, rerun the hours it names) gives
the API back every answer it gave before the damage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from dagster_project.cli import parse_hour
from tests.ingest_api.read.utils.answers import without_snapshot
from tests.ingest_api.read.utils.lake_damage import table_files, zero_page_header
from tests.ingest_api.read.utils.warehouse import DBT_TESTS, Built, RunningApi, Tenants
from warehouse import dbt
from warehouse.duck import connect_pipeline
from warehouse.layout import STREAMS, Layout
from warehouse.published import publish
from warehouse.raw_load import load_hours

RUN = re.compile(r"^\s+loom run --from (\S+) --to (\S+)$", re.MULTILINE)


def _doctor(layout: Layout, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "loom"), "doctor", *options],
        env={**os.environ, "LOOM_DATA_DIR": str(layout.data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _answers(api: RunningApi, built: Built) -> list[httpx.Response]:
    headers = Tenants.headers(built.tenants.key_a)
    paths = [
        "/api/analytics/events",
        "/api/analytics/persons",
        f"/api/projects/{built.tenants.project_a}/releases",
    ]
    return [httpx.get(api.base_url + path, headers=headers, timeout=30) for path in paths]


def _rerun(layout: Layout, first: str, last: str, target: Path) -> None:
    """What `loom run --from first --to last` does, without Dagster: reload the hours' landing
    files into raw.*, build the window with dbt, publish."""
    start, end = parse_hour(first), parse_hour(last) + timedelta(hours=1)
    hours = [start + timedelta(hours=n) for n in range((end - start) // timedelta(hours=1))]
    with connect_pipeline(layout) as con:
        for stream in STREAMS:
            load_hours(con, layout, stream, hours)
    dbt.build(layout, window=(start, end), exclude=DBT_TESTS, target_path=target)
    with connect_pipeline(layout) as con:
        publish(con)


@pytest.mark.slow
def test_doctor_names_the_damaged_files_and_its_repair_restores_every_answer(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    tmp_path: Path,
) -> None:
    api = api_on(copy_of_built)
    before = _answers(api, built)
    healthy = _doctor(copy_of_built)
    assert healthy.returncode == 0 and "no damaged file" in healthy.stdout
    assert re.search(r"checked (\d+) of \1 files", healthy.stderr)  # progress, on stderr

    missing = table_files(copy_of_built, "analytics", "fct_events")[0]
    cut_short = table_files(copy_of_built, "analytics", "dim_persons")[0]
    bad_page = table_files(copy_of_built, "raw", "events")[0]
    missing.unlink()
    cut_short.write_bytes(cut_short.read_bytes()[:-100])
    zero_page_header(bad_page, "properties")
    assert _answers(api, built)[0].status_code == 503

    found = _doctor(copy_of_built)

    assert found.returncode == 1
    for path, what in [
        (missing, "missing"),
        (cut_short, "bytes where the catalog records"),
        (bad_page, "its data does not decode"),
    ]:
        report = found.stdout.split(str(path), 1)[1]
        assert what in report.splitlines()[1], report
    assert "loom doctor --forget" in found.stdout

    repaired = _doctor(copy_of_built, "--forget")
    assert "dropped 3 damaged file(s)" in repaired.stdout
    runs = RUN.findall(repaired.stdout)
    assert runs, repaired.stdout
    for first, last in runs:
        _rerun(copy_of_built, first, last, tmp_path / "dbt-target")

    assert _doctor(copy_of_built).returncode == 0
    deadline = time.monotonic() + 30  # the API follows the new publish within a second or so
    while (after := _answers(api, built))[0].status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [r.status_code for r in after] == [200] * 3
    # The same numbers, read from the repair's publish.
    assert [without_snapshot(r.json()) for r in after] == [
        without_snapshot(r.json()) for r in before
    ]
