"""The landing writer: durability semantics, file layout, and the contract with the raw loader."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from ingest_api.ingest.landing import (
    Chunk,
    LandingUnavailable,
    LandingWriter,
    Target,
    remove_leftover_temp_files,
)
from ingest_api.ingest.records import Receipt, Records
from ingest_api.ingest.schemas.analytics import CaptureEvent
from ingest_api.ingest.schemas.sessions import SessionEnd, SessionStart
from tests.ingest_api.ingest.utils.server import landed
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.raw_load import load_hour
from warehouse.registry import ApiKey
from warehouse.settings import HOST_ID, environment

HOUR = datetime(2026, 1, 18, 12)
KEY = ApiKey("key_1", "abcd", "write", "org_a", "acme", 7, "web", "2026-01-01T00:00:00Z", None)


def chunk(stream: str, uuids: list[str], hour: datetime = HOUR) -> Chunk:
    lines = b"".join(orjson.dumps({"uuid": u}) + b"\n" for u in uuids)
    return Chunk(Target(stream, "org_a", hour), lines, len(uuids))


def visible_uuids(layout: Layout, stream: str = "events") -> list[str]:
    return [record["uuid"] for record in landed(layout, stream)]


def test_durable_submit_is_on_disk_when_it_returns(layout: Layout) -> None:
    async def scenario() -> list[str]:
        writer = LandingWriter(layout, flush_interval=60)
        await writer.start()
        assert await writer.submit([chunk("events", ["a", "b"])], durable=True) is True
        on_disk = visible_uuids(layout)
        await writer.close()
        return on_disk

    assert asyncio.run(scenario()) == ["a", "b"]


def test_an_empty_submission_returns_at_once_and_the_writer_goes_on(layout: Layout) -> None:
    async def scenario() -> list[str]:
        writer = LandingWriter(layout, flush_interval=60)
        await writer.start()
        async with asyncio.timeout(5):  # it used to wait forever, the writer probing the disk
            assert await writer.submit([], durable=True) is True
            assert await writer.submit([chunk("events", ["a"])], durable=True) is True
        on_disk = visible_uuids(layout)
        await writer.close()
        return on_disk

    assert asyncio.run(scenario()) == ["a"]


def test_async_records_flush_within_the_interval(layout: Layout) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        writer = LandingWriter(layout, flush_interval=0.2)
        await writer.start()
        assert await writer.submit([chunk("events", ["a"])], durable=False) is False
        before = visible_uuids(layout)
        deadline = asyncio.get_running_loop().time() + 1.0  # the promise: on disk within 1 s
        while not (after := visible_uuids(layout)) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await writer.close()
        return before, after

    assert asyncio.run(scenario()) == ([], ["a"])


def test_shutdown_flushes_everything_queued(layout: Layout) -> None:
    async def scenario() -> list[str]:
        writer = LandingWriter(layout, flush_interval=60)  # never due on its own during the test
        await writer.start()
        await writer.submit([chunk("events", ["a"]), chunk("sessions", ["s"])], durable=False)
        await writer.submit([chunk("events", ["b"])], durable=False)
        await asyncio.sleep(0.05)
        assert visible_uuids(layout) == []
        await writer.close()
        return visible_uuids(layout) + visible_uuids(layout, "sessions")

    assert sorted(asyncio.run(scenario())) == ["a", "b", "s"]


def test_concurrent_durable_requests_share_files_and_hours_split_files(layout: Layout) -> None:
    async def scenario() -> None:
        writer = LandingWriter(layout, flush_interval=60)
        await writer.start()
        later = HOUR + timedelta(hours=1)
        await asyncio.gather(
            *(
                writer.submit([chunk("events", [f"e{i}"], HOUR if i % 2 else later)], durable=True)
                for i in range(40)
            )
        )
        await writer.close()

    asyncio.run(scenario())

    files = sorted(layout.stream_dir("events").rglob("part-*.ndjson"))
    assert {path.parent.name for path in files} == {"hour=12", "hour=13"}
    # group commit: 40 durable requests need far fewer than 40 files
    assert len(files) < 40
    for path in files:
        hour = 12 if path.parent.name == "hour=12" else 13
        uuids = [orjson.loads(line)["uuid"] for line in path.read_bytes().splitlines()]
        assert all(int(u[1:]) % 2 == (1 if hour == 12 else 0) for u in uuids)
    assert sorted(visible_uuids(layout), key=lambda u: int(u[1:])) == [f"e{i}" for i in range(40)]


def test_a_full_async_queue_makes_requests_wait_for_the_flush(layout: Layout) -> None:
    async def scenario() -> tuple[bool, bool]:
        writer = LandingWriter(layout, flush_interval=60, max_queued_records=3)
        await writer.start()
        first = await writer.submit([chunk("events", ["a", "b"])], durable=False)
        second = await writer.submit([chunk("events", ["c", "d"])], durable=False)
        await writer.close()
        return first, second

    assert asyncio.run(scenario()) == (False, True)
    assert sorted(visible_uuids(layout)) == ["a", "b", "c", "d"]


def test_failed_flush_refuses_durable_requests_and_keeps_async_ones(layout: Layout) -> None:
    blocker = layout.landing_dir / "events"  # a file where the stream directory must go

    async def scenario() -> list[str]:
        writer = LandingWriter(layout, flush_interval=0.05)
        await writer.start()
        await writer.submit([chunk("events", ["queued"])], durable=False)
        with pytest.raises(LandingUnavailable):
            await writer.submit([chunk("events", ["refused"])], durable=True)
        blocker.unlink()  # the disk recovers
        await asyncio.sleep(0.3)
        await writer.close()
        return visible_uuids(layout)

    layout.landing_dir.mkdir(parents=True)
    blocker.write_text("")
    assert asyncio.run(scenario()) == ["queued"]


def test_start_removes_dot_files_of_this_hosts_dead_writers_only(layout: Layout) -> None:
    """A shared landing path holds other hosts' dot-files too: their pids mean nothing here, so
    only this host's (and those named before host ids, always this host's) are judged."""
    folder = layout.hour_dir("events", "org_a", HOUR)
    folder.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stamp, me = "20260118T120000000000", layout.host_id
    crashed = folder / f".part-{stamp}-{me}-{dead.pid}-abcd.ndjson.tmp"
    crashed_before_host_ids = folder / f".part-{stamp}-{dead.pid}-abcd.ndjson.tmp"
    alive = folder / f".part-{stamp}-{me}-{os.getppid()}-abcd.ndjson.tmp"
    other_host = folder / f".part-{stamp}-api-2.internal-{dead.pid}-abcd.ndjson.tmp"
    visible = folder / f"part-{stamp}-{me}-1-abcd.ndjson"
    probe_here = layout.landing_dir / f".probe-{me}-{dead.pid}.tmp"
    probe_there = layout.landing_dir / f".probe-api-2.internal-{dead.pid}.tmp"
    paths = (crashed, crashed_before_host_ids, alive, other_host, visible, probe_here, probe_there)
    for path in paths:
        path.write_text('{"uuid": "x"}\n')

    assert remove_leftover_temp_files(layout) == 3
    assert [path.exists() for path in paths] == [False, False, True, True, True, False, True]


def test_landing_file_names_carry_the_host_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two API processes sharing one landing path, each with a data directory of its own, get
    different default host ids; an explicit LOOM_HOST_ID is used as is, and one unsafe in a file
    name is refused with the setting named."""
    shared = tmp_path / "shared-landing"
    first = Layout(tmp_path / "a", landing_path=shared)
    second = Layout(tmp_path / "b", landing_path=shared)
    assert first.landing_dir == second.landing_dir == shared
    assert first.host_id != second.host_id
    assert first.host_id == Layout(tmp_path / "a").host_id  # stable for a data directory
    assert all(HOST_ID.fullmatch(layout.host_id) for layout in (first, second))
    monkeypatch.setattr(socket, "gethostname", lambda: ".ünsafe host/name")
    assert HOST_ID.fullmatch(Layout(tmp_path / "c").host_id)  # made safe for a file name

    async def land(layout: Layout) -> None:
        writer = LandingWriter(layout, flush_interval=60)
        await writer.start()
        await writer.submit([chunk("events", [layout.host_id])], durable=True)
        await writer.close()

    for layout in (first, second):
        asyncio.run(land(layout))
    # Each file holds one record: the host id of the process that wrote it, named in the file's.
    files = first.hour_files("events", HOUR)
    assert sorted(visible_uuids(first)) == sorted([first.host_id, second.host_id])
    for path in files:
        writer = orjson.loads(path.read_bytes())["uuid"]
        assert path.name.startswith("part-") and f"-{writer}-{os.getpid()}-" in path.name
    with environment({"LOOM_HOST_ID": "api-1.internal"}):
        assert Layout.from_settings().host_id == "api-1.internal"
    with environment({"LOOM_HOST_ID": "../etc"}), pytest.raises(ValueError, match="LOOM_HOST_ID"):
        Layout.from_settings()


def test_landed_files_load_with_the_raw_loader(layout: Layout) -> None:
    """The contract: what the API lands is exactly what warehouse.raw_load reads."""
    received = datetime(2026, 1, 18, 12, 30, tzinfo=UTC)
    receipt = Receipt.of(KEY, received, "198.51.100.4", tolerance_hours=23)
    records = Records(receipt, "native")
    records.native_event(
        CaptureEvent(
            event="signed_up",
            distinct_id="u1",
            properties={"plan": "pro"},
            timestamp="2026-01-17T08:00:00Z",
        )
    )
    records.native_event(
        CaptureEvent(event="$identify", distinct_id="u1", properties={"$anon_distinct_id": "a1"})
    )
    records.session_start(
        SessionStart(
            session_id="s1",
            distinct_id="u1",
            platform="rust",
            started_at="2026-01-18T12:00:00Z",
            sample_rate=0.1,
        )
    )
    records.session_end(SessionEnd(session_id="s1", status="crashed", crash_count=1, duration_ms=5))

    async def land() -> None:
        writer = LandingWriter(layout, flush_interval=0.2)
        await writer.start()
        await writer.submit(records.chunks(), durable=True)
        await writer.close()

    asyncio.run(land())
    con = connect_pipeline(layout)
    loads = {
        stream: load_hour(con, layout, stream, HOUR)
        for stream in ("events", "identities", "sessions")
    }

    assert {s: (load.files_read, load.rows_loaded) for s, load in loads.items()} == {
        "events": (1, 1),
        "identities": (1, 1),
        "sessions": (1, 2),
    }
    assert loads["events"].late_records == 1
    assert con.execute(
        "SELECT event, properties->>'plan', timestamp, received_at, org_id, project_id, ip"
        " FROM raw.events"
    ).fetchall() == [
        (
            "signed_up",
            "pro",
            datetime(2026, 1, 17, 8),
            datetime(2026, 1, 18, 12, 30),
            "org_a",
            7,
            "198.51.100.4",
        )
    ]
    assert con.execute("SELECT kind, distinct_id, other_id FROM raw.identities").fetchall() == [
        ("identify", "u1", "a1")
    ]
    assert con.execute(
        "SELECT kind, platform, sample_rate, status, crash_count, started_at"
        " FROM raw.sessions ORDER BY kind"
    ).fetchall() == [
        ("end", None, None, "crashed", 1, None),
        ("start", "rust", 0.1, None, None, datetime(2026, 1, 18, 12)),
    ]


def test_client_ip_is_a_secret_in_python(layout: Layout) -> None:
    receipt = Receipt.of(KEY, datetime.now(UTC), "203.0.113.9", tolerance_hours=23)
    assert isinstance(receipt.ip, SecretStr)
    assert "203.0.113.9" not in repr(receipt) and "203.0.113.9" not in str(receipt)
    records = Records(receipt, "native")
    assert "203.0.113.9" not in repr(vars(records))


def test_files_are_written_under_the_layout(layout: Layout) -> None:
    async def scenario() -> None:
        writer = LandingWriter(layout, flush_interval=0.2)
        await writer.start()
        await writer.submit([chunk("identities", ["i"])], durable=True)
        await writer.close()

    asyncio.run(scenario())
    [path] = layout.landing_dir.rglob("*.ndjson")
    relative = path.relative_to(layout.landing_dir)
    assert relative.parts[:4] == ("identities", "org_id=org_a", "date=2026-01-18", "hour=12")
    assert relative.name.startswith("part-") and not list(layout.landing_dir.rglob(".*"))


def test_a_landing_directory_removed_while_running_is_created_again(layout: Layout) -> None:
    async def scenario() -> None:
        writer = LandingWriter(layout, flush_interval=0.2)
        await writer.start()
        await writer.submit([chunk("events", ["a"])], durable=True)
        shutil.rmtree(layout.landing_dir)
        await writer.submit([chunk("events", ["b"])], durable=True)
        await writer.close()

    asyncio.run(scenario())
    assert visible_uuids(layout) == ["b"]
