"""The landing writer: makes records durable as NDJSON files in the :mod:`warehouse.layout`.

One background task owns all file writes. Requests hand it serialized records (:class:`Chunk`)
and either wait until those are on disk (*durable*: ``sync=true``, the native endpoints' default)
or return right after the hand-over (*async*: flushed within the flush interval, at most 1 s).
Every flush takes everything pending, so concurrent durable requests share one write and one
fsync per file (group commit) instead of paying for their own.

A flush writes one file per (stream, org, received hour), all or nothing: every file goes to a
dot-file and is fsynced first; only then are all renamed to ``part-*.ndjson`` and their
directories fsynced. If any step fails, what the flush wrote is removed, so none of the records of
any request it served becomes visible (a request spanning streams never lands in part), and no
dot-file is left to fill the disk. Readers glob ``part-*.ndjson`` and never see a partial file; a
visible file is never appended to. A crash can leave only dot-files behind, which the next start
removes.

The async queue is bounded: when it holds ``max_queued_records``, further requests wait for the
next flush like durable ones, so memory stays bounded and nothing is dropped. While flushes fail
(a full disk), every request waits for its flush the same way, so nothing is acknowledged that is
not on disk: requests get 503 until a flush succeeds again, and ``failure`` says why.

What was acknowledged before a flush failed is kept in the spill file reserved at start
(:mod:`ingest_api.ingest.spill`): async records are acknowledged only while all the writer holds
unwritten fits there, and a failed flush keeps them all there, so a shutdown (or a crash) while
the disk is full loses none. The next start lands what the spill files of servers gone hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson

from ingest_api.ingest.spill import Spill, kept_content
from warehouse.layout import SPILL_PREFIX, Layout
from warehouse.settings import DEFAULT_ASYNC_SPILL_BYTES

log = logging.getLogger(__name__)

PROBE_BYTES = 4096  # one page or block: a full disk refuses it
RESERVE_RETRY_SECONDS = 60  # how often a writer without a spill file tries to reserve one


@dataclass(frozen=True, slots=True)
class Target:
    """The landing directory a record belongs in."""

    stream: str
    org_id: str
    hour: datetime  # naive UTC, the hour the server received the record


@dataclass(frozen=True, slots=True)
class Chunk:
    target: Target
    payload: bytes  # NDJSON: one record per line, each ending in a newline
    records: int

    def spilled(self) -> bytes:
        """The chunk as a spill file keeps it: a JSON line naming its target, then its payload."""
        return self._spill_head() + self.payload

    def spilled_size(self) -> int:
        return len(self._spill_head()) + len(self.payload)

    def _spill_head(self) -> bytes:
        target = self.target
        head = {"stream": target.stream, "org_id": target.org_id, "hour": target.hour.isoformat()}
        return orjson.dumps(head | {"bytes": len(self.payload), "records": self.records}) + b"\n"


def unspill(content: bytes) -> list[Chunk]:
    """The chunks a spill file keeps (:meth:`Chunk.spilled`, one after another)."""
    chunks, position = [], 0
    while position < len(content):
        end = content.index(b"\n", position)
        head = orjson.loads(content[position:end])
        payload = content[end + 1 : end + 1 + head["bytes"]]
        target = Target(head["stream"], head["org_id"], datetime.fromisoformat(head["hour"]))
        chunks.append(Chunk(target, payload, head["records"]))
        position = end + 1 + head["bytes"]
    return chunks


class LandingUnavailable(RuntimeError):
    """Records could not be made durable; the request must not be acknowledged."""


class LandingObserver(Protocol):
    """What the writer tells about its work (the API's metrics, ingest_api/metrics.py)."""

    def submitted(self, chunks: list[Chunk]) -> None: ...

    def flushed(self, chunks: list[Chunk], seconds: float) -> None: ...

    def failed(self, error: BaseException) -> None: ...


class LandingWriter:
    def __init__(
        self,
        layout: Layout,
        *,
        flush_interval: float,
        spill_bytes: int = DEFAULT_ASYNC_SPILL_BYTES,
        max_queued_records: int = 100_000,
        observer: LandingObserver | None = None,
    ) -> None:
        self._layout = layout
        self._observer = observer
        self._flush_interval = flush_interval
        self._spill_bytes = spill_bytes
        self._max_queued = max_queued_records
        self._pending: list[Chunk] = []  # async: acknowledged already
        self._pending_durable: list[Chunk] = []  # their requests wait for the flush
        self._pending_records = 0
        self._oldest_pending: float | None = None
        self._spill: Spill | None = None  # None: no room reserved, nothing async acknowledged
        self._reserve_tried = 0.0  # when (monotonic) reserving the spill file was last tried
        self._unwritten_bytes = 0  # acknowledged async records not on disk, as spilled
        self._pending_kept = False  # whether the spill keeps every acknowledged async record
        # Chunks the spill files of servers gone keep that did not land at start, and those
        # files, removed once the chunks land.
        self._from_spills: list[Chunk] = []
        self._spill_files_gone: list[Path] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._known_dirs: set[Path] = set()
        self._failure: str | None = None  # why the last flush failed; None once one succeeds

    @property
    def pending_records(self) -> int:
        return self._pending_records

    @property
    def failure(self) -> str | None:
        """Why records cannot be stored now, or None when they can."""
        if self._closing or self._task is None or self._task.done():
            return "the landing writer is not running"
        return self._failure

    async def start(self) -> None:
        removed = await asyncio.to_thread(remove_leftover_temp_files, self._layout)
        if removed:
            log.warning("removed %d incomplete landing file(s) left by a crash", removed)
        await asyncio.to_thread(self._land_spills_of_servers_gone)
        if not await asyncio.to_thread(self._reserve_spill):
            log.warning(
                "no room for the %d-byte spill file in %s: async requests wait for their write "
                "until there is",
                self._spill_bytes,
                self._layout.landing_dir,
            )
        # A landing path unreachable from the start (a failed mount) makes the server unhealthy
        # at once, before a client's request finds out.
        await self._probe()
        if self._from_spills:
            self._oldest_pending = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="landing-writer")

    async def close(self) -> None:
        """Flush everything pending, then stop. New submissions are refused from here on."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._spill is not None:
            self._spill.release()

    def _land_spills_of_servers_gone(self) -> None:
        """Land what the spill files of servers no longer running keep; what cannot land now
        (the disk is still full) lands with the first flush that succeeds."""
        for path in self._layout.spill_files():
            pid = path.name.removeprefix(SPILL_PREFIX)
            if pid.isdigit() and (int(pid) == os.getpid() or _process_alive(int(pid))):
                continue
            try:
                chunks = unspill(kept_content(path))
            except (ValueError, KeyError) as error:  # not written by a server: by hand
                damaged = path.with_name(f".damaged{path.name}")
                log.error("%s is unreadable (%s); left as %s", path, error, damaged)
                path.rename(damaged)
                continue
            try:
                write_chunks(self._layout, chunks, self._known_dirs)
            except OSError as error:
                log.error(
                    "could not land the %d acknowledged record(s) kept in %s yet (%s): they land "
                    "once landing files can be written",
                    sum(chunk.records for chunk in chunks),
                    path,
                    describe(error),
                )
                self._from_spills.extend(chunks)
                self._spill_files_gone.append(path)
                continue
            if chunks:
                log.warning(
                    "landed %d acknowledged record(s) a previous server kept in %s",
                    sum(chunk.records for chunk in chunks),
                    path,
                )
            path.unlink()

    def _reserve_spill(self) -> bool:
        """Reserve this server's spill file; whether there was room."""
        self._reserve_tried = time.monotonic()
        path = self._layout.spill_path(os.getpid())
        with contextlib.suppress(OSError):  # then reserving fails and says so
            path.parent.mkdir(parents=True, exist_ok=True)
        self._spill = Spill.reserve(path, self._spill_bytes)
        if self._spill is not None:
            fsync_dir(path.parent)
        return self._spill is not None

    async def submit(self, chunks: list[Chunk], *, durable: bool) -> bool:
        """Hand records over; whether they are on disk already (else within the flush interval)."""
        if self._closing or self._task is None or self._task.done():
            raise LandingUnavailable("the landing writer is not running")
        if not chunks:
            return True  # nothing to write is on disk already
        if self._observer is not None:
            self._observer.submitted(chunks)
        count = sum(chunk.records for chunk in chunks)
        size = spilled_size(chunks)
        room = self._spill.capacity - self._unwritten_bytes if self._spill is not None else 0
        if not durable and (
            self._pending_records + count > self._max_queued
            or self._failure is not None
            or size > room
        ):
            # Back-pressure, a failing disk, or no room left to keep them should the disk fill
            # up: wait for the flush instead of acknowledging records that may never be written.
            durable = True
        if self._oldest_pending is None:
            self._oldest_pending = time.monotonic()
            self._wake.set()
        (self._pending_durable if durable else self._pending).extend(chunks)
        self._pending_records += count
        if not durable:
            self._unwritten_bytes += size
            self._pending_kept = False
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake.set()
        await waiter
        return True

    async def _run(self) -> None:
        while True:
            await self._until_flush_due()
            if not (self._pending or self._pending_durable or self._from_spills):
                if self._closing:
                    return  # everything is written
                await self._probe()  # failing and idle: find out whether the disk recovered
                continue
            queued, durable, waiters = self._pending, self._pending_durable, self._waiters
            recovered, self._from_spills = self._from_spills, []
            self._pending, self._pending_durable, self._waiters = [], [], []
            self._pending_records, self._oldest_pending = 0, None
            started = time.perf_counter()
            try:
                await asyncio.to_thread(
                    write_chunks, self._layout, durable + recovered + queued, self._known_dirs
                )
            except Exception as error:
                if self._observer is not None:
                    self._observer.failed(error)
                self._fail(error)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(
                            LandingUnavailable(f"could not store the records ({describe(error)})")
                        )
                # Durable requests were refused and their clients retry; async ones were already
                # acknowledged, so they stay queued for the next attempt, and kept in the spill.
                self._from_spills[:0] = recovered
                self._pending[:0] = queued
                self._pending_records += sum(chunk.records for chunk in queued)
                self._oldest_pending = time.monotonic()
                kept = await self._keep_acknowledged()
                if self._closing:
                    self._log_shutdown(kept)
                    return
                await asyncio.sleep(self._flush_interval)  # do not spin on a failing disk
                continue
            self._unwritten_bytes -= spilled_size(queued)
            if self._observer is not None:
                self._observer.flushed(durable + recovered + queued, time.perf_counter() - started)
            self._writes_succeed()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            if self._spill_work_due():  # rarely: most flushes leave the spill files alone
                await asyncio.to_thread(self._written)

    async def _keep_acknowledged(self) -> bool:
        """Keep every acknowledged async record not on disk in the spill file (once: none is
        acknowledged while flushes fail); whether they are kept."""
        if self._pending_kept or not self._pending:
            return True
        if self._spill is None:
            return False
        content = b"".join(chunk.spilled() for chunk in self._pending)
        try:
            await asyncio.to_thread(self._spill.keep, content)
        except OSError as error:
            log.error("could not keep acknowledged records in %s: %s", self._spill.path, error)
            return False
        self._pending_kept = True
        return True

    def _log_shutdown(self, kept: bool) -> None:
        records = sum(chunk.records for chunk in self._pending)
        if not records:
            return
        if kept and self._spill is not None:
            log.warning(
                "shutting down with %d acknowledged record(s) kept in %s: the next start lands "
                "them",
                records,
                self._spill.path,
            )
        else:
            log.error("shutting down with %d acknowledged record(s) lost", records)

    def _spill_work_due(self) -> bool:
        if self._spill is None:
            return time.monotonic() - self._reserve_tried > RESERVE_RETRY_SECONDS
        return self._spill.keeps_records or bool(self._spill_files_gone)

    def _written(self) -> None:
        """After a flush succeeded: what the spill files kept is on disk now."""
        if self._spill is not None:
            self._spill.clear()
        elif time.monotonic() - self._reserve_tried > RESERVE_RETRY_SECONDS:
            self._reserve_spill()  # the room the disk lacked may be there now
        for path in self._spill_files_gone:
            path.unlink(missing_ok=True)
        self._spill_files_gone = []

    async def _probe(self) -> None:
        try:
            await asyncio.to_thread(probe_write, self._layout)
        except Exception as error:
            self._fail(error)
        else:
            self._writes_succeed()

    def _fail(self, error: Exception) -> None:
        if self._failure is None:  # once, not on every retry of a failing disk
            log.error("landing writes are failing; refusing records until they succeed: %s", error)
        self._failure = f"landing writes are failing: {describe(error)}"

    def _writes_succeed(self) -> None:
        if self._failure is not None:
            log.warning("landing writes succeed again")
            self._failure = None

    async def _until_flush_due(self) -> None:
        while True:
            if self._waiters or self._closing:
                return
            timeout = None
            if self._pending and self._oldest_pending is not None:
                timeout = self._oldest_pending + self._flush_interval - time.monotonic()
                if timeout <= 0:
                    return
            elif self._failure is not None:
                timeout = self._flush_interval  # then probe the disk
            self._wake.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                return


def spilled_size(chunks: list[Chunk]) -> int:
    return sum(chunk.spilled_size() for chunk in chunks)


def describe(error: BaseException) -> str:
    """An error as a client may see it: an OS error's reason without the server's paths."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


def write_chunks(layout: Layout, chunks: list[Chunk], known_dirs: set[Path]) -> None:
    """One new file per target, all made durable and visible before this returns, or none."""
    payloads: dict[Target, list[bytes]] = defaultdict(list)
    for chunk in chunks:
        payloads[chunk.target].append(chunk.payload)
    staged: list[tuple[Path, Path]] = []  # (dot-file, final name)
    published: list[Path] = []
    try:
        for target, parts in payloads.items():
            directory = layout.hour_dir(target.stream, target.org_id, target.hour)
            make_durable_dir(directory, known_dirs)
            payload = b"".join(parts)
            try:
                staged.append(stage_part(directory, payload, layout.host_id))
            except FileNotFoundError:  # the directory was removed since (e.g. a wiped data dir)
                known_dirs.discard(directory)
                make_durable_dir(directory, known_dirs)
                staged.append(stage_part(directory, payload, layout.host_id))
        for temp, final in staged:
            os.rename(temp, final)
            published.append(final)
        for directory in {final.parent for final in published}:
            fsync_dir(directory)
    except BaseException:
        # Nothing of a failed flush stays: a reader may at most have glimpsed a renamed file
        # during the instants before a later rename or directory fsync failed.
        for path in [*published, *(temp for temp, _ in staged)]:
            remove_quietly(path)
        raise


def stage_part(directory: Path, payload: bytes, host_id: str) -> tuple[Path, Path]:
    """Write ``payload`` to a fsynced dot-file in ``directory``: (dot-file, its final name).
    A dot-file whose write fails is removed at once."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"part-{stamp}-{host_id}-{os.getpid()}-{secrets.token_hex(4)}.ndjson"
    temp = directory / f".{name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        remove_quietly(temp)
        raise
    finally:
        os.close(fd)
    return temp, directory / name


def remove_quietly(path: Path) -> None:
    """Remove what a failed write left; the write's own error is the one to report."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def probe_write(layout: Layout) -> None:
    """Write, fsync and remove one small dot-file: whether the disk takes writes again."""
    layout.landing_dir.mkdir(parents=True, exist_ok=True)
    probe = layout.landing_dir / f".probe-{layout.host_id}-{os.getpid()}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"\n" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        remove_quietly(probe)


def make_durable_dir(directory: Path, known_dirs: set[Path]) -> None:
    """Create ``directory`` and fsync the parent of each directory created, so that the new
    directory entries survive a power loss along with the files in them."""
    if directory in known_dirs:
        return
    missing = []
    path = directory
    while not path.exists():
        missing.append(path)
        path = path.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        fsync_dir(path.parent)
    known_dirs.add(directory)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftover_temp_files(layout: Layout) -> int:
    """Delete dot-files of this host's writers that are gone (a crash). Names carry the writer's
    host id and pid, so a second server process sharing the landing path, on this host or
    another, keeps its in-flight files."""
    removed = 0
    for path in layout.temp_files():
        writer = _writer(path.name)
        if writer is None:
            path.unlink(missing_ok=True)  # not a writer's name: nothing writes it
            removed += 1
            continue
        host_id, pid = writer
        if host_id in (layout.host_id, None) and (pid == os.getpid() or not _process_alive(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _writer(name: str) -> tuple[str | None, int] | None:
    """(host id, pid) of a dot-file's writer, from ``.part-<stamp>-<host>-<pid>-<random>.ndjson
    .tmp`` or ``.probe-<host>-<pid>.tmp`` (a host id may hold dashes: read from the right). The
    host is None in the names of versions before host ids (``.part-<stamp>-<pid>-<random>…``,
    ``.probe-<pid>.tmp``): this host's, as landing was never shared then."""
    if name.startswith(".probe-"):
        *host, pid = name.removeprefix(".probe-").removesuffix(".tmp").split("-")
    else:
        parts = name.removeprefix(".part-").split("-")
        host, pid = parts[1:-2], parts[-2] if len(parts) >= 3 else ""
    if not pid.isdigit():
        return None
    return "-".join(host) or None, int(pid)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
