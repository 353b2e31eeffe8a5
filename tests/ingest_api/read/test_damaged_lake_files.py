"""A damaged Parquet file in the lake, through the real API (uvicorn) on a copy of the read
suite's built warehouse: a clear 503 naming no path, the file named in the server's log, and an
export that breaks where every client sees it. `loom doctor`, which finds and repairs such files,
is tested in test_lake_doctor.py."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.ingest_api.read.utils.lake_damage import (
    add_a_day_of_events,
    fct_events_files,
    zero_page_header,
)
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from warehouse.layout import Layout

EVERYTHING = {"start_date": "2026-01-01", "end_date": "2027-01-01"}


def _wait_for_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in caplog.records:
            if text in record.getMessage():
                return record.getMessage()
        time.sleep(0.1)
    raise AssertionError(f"no log line mentions {text}")


def _assert_damage_503(response: httpx.Response, layout: Layout) -> None:
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "missing or damaged" in detail
    # A permanent fault: no "retry" and no Retry-After; and nothing of the server's disk.
    assert "retry" not in detail.lower() and "retry-after" not in response.headers
    assert str(layout.data_dir) not in response.text and "ducklake-" not in response.text


def test_a_corrupt_file_answers_503_without_a_path_and_the_log_names_it(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="warehouse.published")
    [damaged] = fct_events_files(copy_of_built)
    zero_page_header(damaged)  # DuckDB's error then names no file: it has to be searched for
    api = api_on(copy_of_built)

    response = httpx.get(
        f"{api.base_url}/api/analytics/events", headers=Tenants.headers(built.tenants.key_a)
    )

    _assert_damage_503(response, copy_of_built)
    logged = _wait_for_log(caplog, str(damaged))
    assert "analytics.fct_events" in logged and "loom doctor" in logged


def test_a_deleted_file_answers_503_without_a_path_and_not_retry(
    built: Built,
    copy_of_built: Layout,
    api_on: Callable[[Layout], RunningApi],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="warehouse.published")
    [deleted] = fct_events_files(copy_of_built)
    deleted.unlink()
    api = api_on(copy_of_built)
    headers = Tenants.headers(built.tenants.key_a)

    response = httpx.get(f"{api.base_url}/api/analytics/events", headers=headers)
    export = httpx.get(f"{api.base_url}/api/analytics/export", params=EVERYTHING, headers=headers)

    _assert_damage_503(response, copy_of_built)
    # The export fails before its first chunk: a 503 like any read, not a 200 cut short.
    _assert_damage_503(export, copy_of_built)
    assert "missing" in _wait_for_log(caplog, str(deleted))


@pytest.fixture
def broken_second_day(built: Built, copy_of_built: Layout) -> Layout:
    """The copy with a second day of events in a file of its own, that file damaged: an export
    of both days sends the first, then fails."""
    before = set(fct_events_files(copy_of_built))
    add_a_day_of_events(copy_of_built)
    [second_day] = set(fct_events_files(copy_of_built)) - before
    # The export first lists the days that have events, reading only the timestamps, which are
    # intact: the first day is sent before the damaged properties are reached.
    zero_page_header(second_day, "properties")
    return copy_of_built


def _export_with_curl(url: str, key: str, fmt: str, out: Path) -> int:
    command = [shutil.which("curl") or "curl", "-sS", "-o", str(out), "-H"]
    command += [f"Authorization: Bearer {key}", f"{url}&format={fmt}"]
    return subprocess.run(command, capture_output=True, timeout=60).returncode


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_an_export_that_breaks_midway_ends_incomplete_for_every_client(
    built: Built,
    broken_second_day: Layout,
    api_on: Callable[[Layout], RunningApi],
    tmp_path: Path,
) -> None:
    api = api_on(broken_second_day)
    key = built.tenants.key_a
    query = "&".join(f"{name}={value}" for name, value in EVERYTHING.items())
    url = f"{api.base_url}/api/analytics/export?{query}"

    # httpx (and so any Python client) is told the body is incomplete ...
    received = bytearray()
    with httpx.stream("GET", f"{url}&format=ndjson", headers=Tenants.headers(key)) as response:
        assert response.status_code == 200  # the first day was on its way
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            for chunk in response.iter_bytes():
                received += chunk
    # ... and an NDJSON reader gets the first day's events, then an error object as its last line.
    *events, last = [orjson.loads(line) for line in received.splitlines()]
    assert events and all("uuid" in event for event in events)
    assert last["error"]["status"] == 503 and "damaged" in last["error"]["detail"]

    # curl exits 18 ("transfer closed with outstanding read data remaining") for every format, and
    # the Parquet it saved has no footer, so no reader takes it for a whole file.
    for fmt in ("ndjson", "csv", "parquet"):
        assert _export_with_curl(url, key, fmt, tmp_path / f"export.{fmt}") == 18, fmt
    assert (tmp_path / "export.csv").read_text().startswith('"uuid","event"')
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(tmp_path / "export.parquet")
