"""A flush lands every file or none, and a failing disk stops acknowledgements until it recovers.

Failures are real OS errors: a plain file where a stream's directory must go (ENOTDIR, which
root gets too), or, against ``loom serve`` in a subprocess, a file size limit (RLIMIT_FSIZE: the
kernel refuses writes past it with EFBIG) and a small full tmpfs (ENOSPC), where mounting is
allowed."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from uuid import uuid4

import httpx
import orjson
import pytest

from ingest_api.ingest.landing import Chunk, LandingUnavailable, LandingWriter, Target
from tests.ingest_api.ingest.utils.server import Api, ServerProcess, Tenant, landed
from tests.utils.network import free_port
from warehouse.layout import STREAMS, Layout
from warehouse.registry import Registry

TRACK = {"environment": "production", "event": "Clicked", "properties": {}}
CLEAN_EXIT = (0, -signal.SIGTERM)
HOUR = datetime(2026, 1, 18, 12)


def chunk(stream: str, uuids: list[str]) -> Chunk:
    lines = b"".join(orjson.dumps({"uuid": u}) + b"\n" for u in uuids)
    return Chunk(Target(stream, "org_a", HOUR), lines, len(uuids))


def visible_uuids(layout: Layout, stream: str = "events") -> list[str]:
    return [record["uuid"] for record in landed(layout, stream)]


def leftovers(layout: Layout) -> list[Path]:
    """Dot-files, but for the server's spill file, reserved while it runs."""
    return [
        path
        for path in layout.data_dir.rglob(".*")
        if path.is_file() and not path.name.startswith(".spill-")
    ]


def block_stream(layout: Layout, stream: str) -> Path:
    """A file where the stream's directory must go: every write under it fails."""
    layout.landing_dir.mkdir(parents=True, exist_ok=True)
    blocker = layout.landing_dir / stream
    blocker.write_text("")
    return blocker


def test_a_flush_spanning_streams_lands_all_of_it_or_nothing(layout: Layout) -> None:
    blocker = block_stream(layout, "identities")
    request = [chunk("events", ["e1", "e2"]), chunk("identities", ["i1"])]

    async def scenario() -> tuple[list[str], list[str]]:
        writer = LandingWriter(layout, flush_interval=0.05)
        await writer.start()
        with pytest.raises(LandingUnavailable):
            await writer.submit(request, durable=True)
        during = visible_uuids(layout)
        blocker.unlink()
        await writer.submit(request, durable=True)  # the client's retry
        await writer.close()
        return during, visible_uuids(layout) + visible_uuids(layout, "identities")

    during, after = asyncio.run(scenario())

    assert during == []  # the events file was written, fsynced, then removed with the flush
    assert after == ["e1", "e2", "i1"]
    assert leftovers(layout) == []


def test_one_failing_request_fails_every_request_its_flush_served(layout: Layout) -> None:
    blocker = block_stream(layout, "sessions")

    async def scenario() -> list[BaseException | bool | None]:
        writer = LandingWriter(layout, flush_interval=0.05)
        await writer.start()
        results = await asyncio.gather(
            writer.submit([chunk("events", ["fine"])], durable=True),
            writer.submit([chunk("sessions", ["doomed"])], durable=True),
            return_exceptions=True,
        )
        blocker.unlink()
        await writer.close()
        return results

    results = asyncio.run(scenario())

    assert [type(result) for result in results] == [LandingUnavailable, LandingUnavailable]
    assert visible_uuids(layout) == []
    assert leftovers(layout) == []


def test_while_writes_fail_nothing_is_acknowledged_and_health_says_why(layout: Layout) -> None:
    blocker = block_stream(layout, "events")

    async def scenario() -> tuple[str | None, str | None, bool, list[str]]:
        writer = LandingWriter(layout, flush_interval=0.05)
        await writer.start()
        queued = await writer.submit([chunk("events", ["acknowledged"])], durable=False)
        assert queued is False  # acknowledged before anything failed: kept until it lands
        await asyncio.sleep(0.2)
        failing = writer.failure
        with pytest.raises(LandingUnavailable):
            # An async request waits for its flush now, instead of being acknowledged.
            await writer.submit([chunk("events", ["refused"])], durable=False)
        blocker.unlink()  # the disk recovers; the next flush or probe notices
        deadline = time.monotonic() + 5
        while writer.failure is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        recovered = writer.failure
        async_again = await writer.submit([chunk("events", ["later"])], durable=False)
        await writer.close()
        return failing, recovered, async_again, visible_uuids(layout)

    failing, recovered, async_again, uuids = asyncio.run(scenario())

    assert failing == "landing writes are failing: Not a directory"
    assert recovered is None
    assert async_again is False  # 202 again once writes succeed
    assert sorted(uuids) == ["acknowledged", "later"]
    assert leftovers(layout) == []


def test_an_idle_failing_writer_notices_recovery_by_itself(layout: Layout) -> None:
    # The probe writes into the landing directory itself: a file in its place fails it.
    layout.landing_dir.write_text("")

    async def scenario() -> tuple[str | None, str | None]:
        writer = LandingWriter(layout, flush_interval=0.05)
        await writer.start()
        with pytest.raises(LandingUnavailable):
            await writer.submit([chunk("events", ["refused"])], durable=True)
        await asyncio.sleep(0.2)  # idle: only the probe runs
        failing = writer.failure
        layout.landing_dir.unlink()
        deadline = time.monotonic() + 5
        while writer.failure is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        recovered = writer.failure
        await writer.close()
        return failing, recovered

    failing, recovered = asyncio.run(scenario())
    assert failing is not None and failing.startswith("landing writes are failing: ")
    assert recovered is None


def test_a_probe_file_left_by_a_killed_writer_is_removed_at_the_next_start(
    layout: Layout,
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    layout.landing_dir.mkdir(parents=True)
    left = layout.landing_dir / f".probe-{layout.host_id}-{dead.pid}.tmp"
    left.write_text("\n")

    async def scenario() -> None:
        writer = LandingWriter(layout, flush_interval=0.05)
        await writer.start()
        await writer.close()

    asyncio.run(scenario())
    assert not left.exists()


# ---------------------------------------------------------------------------------------------
# Retries are recognisable: server-made uuids derive from the request's content


def test_a_retried_request_without_uuids_lands_with_the_same_uuids(
    client: httpx.Client, api: Api, tenant: Tenant, new_tenant: Callable[..., Tenant]
) -> None:
    batch = {"batch": [{"event": "tick", "distinct_id": "u", "properties": {}}] * 3}
    other = {"batch": [{"event": "tock", "distinct_id": "u", "properties": {}}] * 3}
    for body in (batch, batch, other):
        assert client.post("/api/analytics/batch", json=body, headers=tenant.headers).is_success
    someone_else = new_tenant()
    client.post("/api/analytics/batch", json=batch, headers=someone_else.headers)

    events = landed(api.layout, "events", tenant.org_id)
    first, retry, different = (
        [event["uuid"] for event in events[i : i + 3]] for i in range(0, 9, 3)
    )
    assert first == retry  # the models count the retry once
    assert len(set(first)) == 3  # identical items of one request are still three events
    assert not set(different) & set(first)
    elsewhere = {event["uuid"] for event in landed(api.layout, "events", someone_else.org_id)}
    assert not elsewhere & set(first)


# ---------------------------------------------------------------------------------------------
# Against `loom serve`: a file size limit and a full file system


@pytest.fixture
def served(server_process: ServerProcess, layout: Layout) -> Iterator[tuple[ServerProcess, str]]:
    with Registry.open(layout) as registry:
        key = registry.create_key("acme", "web", "write").key
    yield server_process.start(), key


def limit_file_size(server: ServerProcess, limit: int) -> None:
    """Limit the size of files the server may write (soft limit; the hard one stays)."""
    assert server.process is not None
    _, hard = resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (limit, hard))


def health(client: httpx.Client) -> tuple[int, dict]:
    response = client.get("/healthz")
    return response.status_code, response.json()


def wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def all_uuids(layout: Layout) -> Counter[str]:
    return Counter(r["uuid"] for stream in STREAMS for r in landed(layout, stream))


@pytest.mark.slow
def test_a_request_too_large_for_the_disk_lands_nothing_and_its_retry_lands_once(
    served: tuple[ServerProcess, str], layout: Layout
) -> None:
    server, key = served
    # What failed in the field: a small event and a 300 KB $identify in one PostHog batch.
    batch = {
        "api_key": key,
        "batch": [
            {"event": "$pageview", "distinct_id": "anon_1", "properties": {}},
            {
                "event": "$identify",
                "distinct_id": "user_1",
                "properties": {"$anon_distinct_id": "anon_1", "$set": {"bio": "x" * 300_000}},
            },
        ],
    }
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        limit_file_size(server, 256 * 1024)
        refused = client.post("/batch/", json=batch)

        assert refused.status_code == 503
        assert all_uuids(layout) == Counter()  # not even the small event
        assert leftovers(layout) == []
        assert "File too large" in refused.json()["detail"]

        limit_file_size(server, resource.RLIM_INFINITY)
        first = client.post("/batch/", json=batch)
        retry = client.post("/batch/", json=batch)  # e.g. the answer was lost on the way

    assert (first.status_code, retry.status_code) == (200, 200)
    uuids = all_uuids(layout)
    assert sorted(uuids.values()) == [2, 2]  # each record twice under one uuid: counted once
    assert leftovers(layout) == []


@pytest.mark.slow
def test_when_no_write_succeeds_async_requests_get_503_until_the_disk_recovers(
    served: tuple[ServerProcess, str], layout: Layout
) -> None:
    server, key = served
    headers = {"X-API-Key": key}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
        before = client.post("/track", json=TRACK)
        limit_file_size(server, 0)
        # Acknowledged before any write failed: queued, and kept until the disk takes it.
        unaware = client.post("/track", json=TRACK)
        wait_until(lambda: health(client)[0] == 503)
        answers = [client.post("/track", json=TRACK).status_code for _ in range(5)]
        status, body = health(client)
        assert leftovers(layout) == []

        limit_file_size(server, resource.RLIM_INFINITY)
        wait_until(lambda: health(client)[0] == 200)
        resumed = client.post("/track", json=TRACK)

    assert (before.status_code, unaware.status_code) == (202, 202)
    assert answers == [503] * 5
    assert (status, body["status"], body["reason"]) == (
        503,
        "degraded",
        "landing writes are failing: File too large",
    )
    assert resumed.status_code == 202
    assert server.stop() in CLEAN_EXIT
    assert len(landed(layout, "events")) == 3  # every acknowledged record, no refused one


@pytest.mark.slow
def test_an_unreachable_landing_path_acknowledges_nothing_and_retries_land_once(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    """The shared landing path goes away (a failed mount: here its directory replaced by a file),
    mid-run, then at start: 503 saying why without a path of the server's, nothing acknowledged;
    once it is back, the clients' retries land each record once."""
    shared = tmp_path / "mnt" / "landing"
    shared.mkdir(parents=True)
    layout = Layout(server_process.data_dir, landing_path=shared)
    with Registry.open(layout) as registry:
        headers = {"X-API-Key": registry.create_key("acme", "web", "write").key}
    server_process.environment["LOOM_LANDING_PATH"] = str(shared)
    server = server_process.start()
    uuids = iter(str(uuid4()) for _ in range(100))
    sent: list[str] = []

    def post(client: httpx.Client, sync: bool) -> tuple[httpx.Response, str]:
        record = str(next(uuids))
        answer = client.post(f"/track?sync={str(sync).lower()}", json={**TRACK, "uuid": record})
        if answer.status_code in (200, 202):
            sent.append(record)
        return answer, record

    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
        assert post(client, sync=True)[0].status_code == 200
        away = tmp_path / "mnt-away"
        (tmp_path / "mnt").rename(away)
        (tmp_path / "mnt").write_text("")  # every path under it: ENOTDIR
        refused = [post(client, sync=True), post(client, sync=False)]
        status, body = health(client)
        (tmp_path / "mnt").unlink()
        away.rename(tmp_path / "mnt")
        wait_until(lambda: health(client)[0] == 200)
        for _, record in refused:  # the clients' retries
            answer = client.post("/track?sync=true", json={**TRACK, "uuid": record})
            assert answer.status_code == 200
            sent.append(record)
    assert server.stop() in CLEAN_EXIT
    for answer, _ in refused:
        assert answer.status_code == 503
        detail = answer.json()["detail"]
        assert "(Not a directory); nothing was acknowledged, retry" in detail, detail
        assert str(tmp_path) not in answer.text
    assert (status, body["reason"]) == (503, "landing writes are failing: Not a directory")

    # It cannot be reached when the server starts: unhealthy at once (a load balancer sends it
    # nothing), and nothing acknowledged until it is back.
    (tmp_path / "mnt").rename(away)
    (tmp_path / "mnt").write_text("")
    server.start(healthy=False)
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
        status, body = health(client)
        refused = [post(client, sync=True), post(client, sync=False)]
        (tmp_path / "mnt").unlink()
        away.rename(tmp_path / "mnt")
        wait_until(lambda: health(client)[0] == 200)
        for _, record in refused:
            assert client.post("/track", json={**TRACK, "uuid": record}).status_code == 202
            sent.append(record)
    assert server.stop() in CLEAN_EXIT
    assert status == 503 and str(tmp_path) not in body["reason"], body
    assert [answer.status_code for answer, _ in refused] == [503, 503]
    assert Counter(r["uuid"] for r in landed(layout, "events")) == Counter(sent)
    assert len(sent) == len(set(sent)) == 5


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    mount = shutil.which("mount")
    if mount is None:
        return False
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def tmpfs_data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "small-disk"
    if not mount_tmpfs(path, "4m"):
        pytest.skip(
            "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the RLIMIT_FSIZE tests "
            "above exercise the same failure paths without mounting"
        )
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def serve_on_small_disk(disk: Path, log: Path) -> tuple[ServerProcess, str, Layout]:
    """``loom serve`` with its data on ``disk`` (a small tmpfs) and a key: a 512 KiB spill
    file fits there (the default 64 MiB would not, and the server would answer async requests
    only once written)."""
    layout = Layout(disk / "data")
    with Registry.open(layout) as registry:
        key = registry.create_key("acme", "web", "write").key
    spill = {"LOOM_ASYNC_SPILL_BYTES": str(512 * 1024)}
    return ServerProcess(layout.data_dir, free_port(), log, None, spill).start(), key, layout


@pytest.mark.slow
def test_a_full_disk_refuses_records_then_accepts_them_once_space_is_freed(
    tmpfs_data_dir: Path, tmp_path: Path
) -> None:
    server, key, layout = serve_on_small_disk(tmpfs_data_dir, tmp_path / "server.log")
    filler = tmpfs_data_dir / "filler"
    try:
        with httpx.Client(
            base_url=server.base_url, headers={"X-API-Key": key}, timeout=10
        ) as client:
            fill(filler)
            sync_answer = client.post(
                "/api/analytics/capture", json={"event": "e", "distinct_id": "u"}
            )
            answers = Counter(client.post("/track", json=TRACK).status_code for _ in range(5))
            status, body = health(client)
            temp_files = leftovers(layout)

            filler.unlink()
            wait_until(lambda: health(client)[0] == 200)
            resumed = client.post("/track", json=TRACK)
    finally:
        exit_code = server.stop()

    assert answers == Counter({503: 5})
    assert sync_answer.status_code == 503
    assert (status, body["reason"]) == (503, "landing writes are failing: No space left on device")
    assert temp_files == []
    assert resumed.status_code == 202
    assert exit_code in CLEAN_EXIT
    assert len(landed(layout, "events")) == 1


@pytest.mark.slow
def test_sigterm_on_a_full_disk_keeps_every_acknowledged_record(
    tmpfs_data_dir: Path, tmp_path: Path
) -> None:
    """Async records acknowledged before the disk filled up cannot land; a shutdown then keeps
    them in the spill file reserved at start, and the next start lands them: none is lost (the
    reported case lost 530 of 6,960)."""
    server, key, layout = serve_on_small_disk(tmpfs_data_dir, tmp_path / "server.log")
    acknowledged: list[str] = []  # 202 (queued) and 200 (on disk): both promise the record
    refused: Counter[int] = Counter()
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server.base_url, headers={"X-API-Key": key}) as client:
            while not stop.is_set():
                batch = [
                    {**TRACK, "uuid": str(uuid4()), "properties": {"pad": "x" * 200}}
                    for _ in range(20)
                ]
                try:
                    answer = client.post("/track", json=batch)
                except httpx.TransportError:
                    return
                if answer.status_code in (200, 202):
                    acknowledged.extend(event["uuid"] for event in batch)
                else:
                    refused[answer.status_code] += 1

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    fill(tmpfs_data_dir / "filler")  # the disk fills up under load
    wait_until(lambda: refused[503] >= 5)
    exit_code = server.stop()  # SIGTERM while the disk is still full
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    kept = server.logs

    # Room again, as an operator makes it: the filler goes, and the disk grows, since records
    # that landed before the filler may have taken most of it (the restart then could not land
    # what the spill file kept, and rightly left it there).
    (tmpfs_data_dir / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,size=16m", str(tmpfs_data_dir)], check=True)
    server.start()  # lands what the spill file kept
    assert server.stop() in CLEAN_EXIT

    assert exit_code in CLEAN_EXIT
    assert "lost" not in kept and "acknowledged record(s) kept in" in kept
    counts = all_uuids(layout)
    assert len(acknowledged) > 100
    assert [uuid for uuid in acknowledged if counts[uuid] != 1] == []
    assert "acknowledged record(s) a previous server kept" in server.logs
    assert layout.spill_files() == []
