"""The lake's writer lease on a SQLite catalog: a second writer process waits and names the holder,
a kill -9 of the holder frees it at once, and a process's nested takes never wait on themselves.
(On a PostgreSQL catalog: tests/ingest_api/read/test_many_hosts.py, two pipeline hosts.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.utils.lease import hold_lease
from warehouse.layout import Layout
from warehouse.writer_lease import LeaseHeld, writer_lease

HOLDER = "host-b pid 4242 run abcd1234"


def test_a_second_writer_waits_names_the_holder_and_gets_the_lease_when_it_dies(
    tmp_path: Path,
) -> None:
    lake = Layout(tmp_path / "data").lake
    holder = hold_lease(Layout(tmp_path / "data"), HOLDER)
    try:
        said: list[str] = []
        with (
            pytest.raises(LeaseHeld, match=f"held by {HOLDER}"),
            writer_lease(lake, "host-a", wait_s=1.5, on_wait=said.append),
        ):
            pass
        assert said == [f"waiting for the lake's writer lease, held by {HOLDER}…"]
        holder.kill()
        holder.wait()
        started = time.monotonic()
        with writer_lease(lake, "host-a", wait_s=5):
            assert time.monotonic() - started < 1.0  # freed with the process, not after a timeout
    finally:
        holder.kill()


def test_nested_takes_of_one_process_do_not_wait(tmp_path: Path) -> None:
    lake = Layout(tmp_path / "data").lake
    with writer_lease(lake, "run", wait_s=0), writer_lease(lake, "its step", wait_s=0):
        pass
    with writer_lease(lake, "the next run", wait_s=0):  # released after the outer take
        pass
