"""The landing writer's spill file: room reserved in the data directory when the server starts,
where records already acknowledged (202, async) are kept whenever landing files cannot be written
(a full disk), so that none is lost, not even by a shutdown while the disk is still full.

Each server reserves ``<data dir>/.spill-<pid>`` (on this host's own disk even when the landing
path is shared: only this host knows whether ``pid`` still runs), preallocated
(``posix_fallocate``) to ``LOOM_ASYNC_SPILL_BYTES``: writing into it needs no free space. The
writer acknowledges async records only while all it holds unwritten fits in it (else a request
waits for its write, as a sync one does) and keeps them all there when a flush fails; the next
start lands what the spill files of servers no longer running hold
(``ingest_api/ingest/landing.py``).

A spill file is a header of ``HEADER_BYTES``, ``b"loom-spill 1 <length>\\n"`` padded with NULs
(all NULs: it keeps nothing), then ``<length>`` bytes of records. The header is cleared first and
written last, each time fsynced, so the file keeps either a whole set of records or none.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

HEADER_BYTES = 64
MAGIC = b"loom-spill 1 "


class Spill:
    """A reserved spill file, open for the server's lifetime."""

    def __init__(self, path: Path, fd: int, capacity: int) -> None:
        self.path = path
        self.capacity = capacity  # bytes of records it can keep
        self._fd = fd
        self.keeps_records = False

    @classmethod
    def reserve(cls, path: Path, capacity: int) -> Spill | None:
        """The spill file at ``path`` with ``capacity`` bytes allocated, or None when the
        filesystem lacks twice that room (reserving must not take the last of what landing files
        need: a failed fallocate may hold blocks for a while) or a way to reserve it."""
        try:
            available = os.statvfs(path.parent)
        except OSError:
            return None
        if available.f_bavail * available.f_frsize < 2 * (HEADER_BYTES + capacity):
            return None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            os.posix_fallocate(fd, 0, HEADER_BYTES + capacity)
            os.pwrite(fd, bytes(HEADER_BYTES), 0)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return cls(path, fd, capacity)

    def keep(self, content: bytes) -> None:
        """Keep ``content`` (at most ``capacity`` bytes) in place of what the file kept."""
        if len(content) > self.capacity:
            raise ValueError(f"{len(content)} bytes do not fit a {self.capacity}-byte spill file")
        self.clear()
        os.pwrite(self._fd, content, HEADER_BYTES)
        os.fsync(self._fd)
        header = MAGIC + str(len(content)).encode() + b"\n"
        os.pwrite(self._fd, header.ljust(HEADER_BYTES, b"\0"), 0)
        os.fsync(self._fd)
        self.keeps_records = True

    def clear(self) -> None:
        if self.keeps_records:
            os.pwrite(self._fd, bytes(HEADER_BYTES), 0)
            os.fsync(self._fd)
            self.keeps_records = False

    def release(self) -> None:
        """Close the file, and give its room back unless it keeps records."""
        os.close(self._fd)
        if not self.keeps_records:
            self.path.unlink(missing_ok=True)


def kept_content(path: Path) -> bytes:
    """What a spill file keeps (empty when nothing)."""
    with path.open("rb") as spill:
        header = spill.read(HEADER_BYTES)
        if not header.startswith(MAGIC):
            return b""
        length = int(header[len(MAGIC) :].partition(b"\n")[0])
        content = spill.read(length)
    if len(content) != length:
        raise ValueError(f"{path} is shorter than its header says")
    return content
