"""One writer per lake, across hosts: the writer lease.

Dagster's ``warehouse`` pool and run queue keep one writer per Dagster instance. Two pipeline hosts
on one PostgreSQL catalog (a standby started by mistake) have two instances, which share their
storage there but not their run queues and processes, and both could write. So a run holds the
lake's writer lease from its first write to its end (a writer run is STARTED only while its
process holds it, which tells another host's dead run from a live one):

* on a PostgreSQL catalog, a session-level advisory lock in the catalog's database, on a
  connection of its own. PostgreSQL frees it when that connection ends: at once when the holder's
  process dies (``kill -9``), within :data:`KEEPALIVE_BOUND_S` when its host vanishes (TCP
  keepalives). The connection's ``application_name`` names the holder to whoever waits;
* on a SQLite catalog (one host), an exclusive ``flock`` of a file beside the catalog, which the
  kernel frees when the holder's process dies; the holder writes its name into the file.

A process takes the lease once however many times it asks (``loom run`` takes it before its run,
the run's steps ask again), so nested takes never wait on themselves.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from warehouse.layout import Lake

# TCP keepalives of the lease's connection: a holder whose host stopped answering is let go after
# about idle + interval * count seconds.
KEEPALIVE = "keepalives=1 keepalives_idle=10 keepalives_interval=5 keepalives_count=3"
KEEPALIVE_BOUND_S = 25
POLL_S = 1.0
# The advisory lock's key: any fixed 64-bit number; this one says what it is.
LEASE_KEY = int.from_bytes(hashlib.sha256(b"loom writer lease").digest()[:8], "big", signed=True)

_held: dict[str, int] = {}  # lake catalog -> how many takes of this process hold it
_held_lock = threading.Lock()


class WriterLeaseError(RuntimeError):
    """The lake's writer lease could not be taken."""


class LeaseHeld(WriterLeaseError):
    """Another writer held the lake's writer lease for longer than the wait allowed."""


class LeaseUnreachable(WriterLeaseError):
    """The catalog database that keeps the lease cannot be reached."""


def holder_name(run_id: str | None = None) -> str:
    run = f" run {run_id[:8]}" if run_id else ""
    return f"{socket.gethostname()} pid {os.getpid()}{run}"


@contextmanager
def writer_lease(
    lake: Lake,
    holder: str,
    *,
    wait_s: float,
    on_wait: Callable[[str], None] = lambda _: None,
) -> Iterator[None]:
    """Hold ``lake``'s writer lease while the block runs. Waits for another holder up to
    ``wait_s`` (telling ``on_wait`` who it is, once), then raises :class:`LeaseHeld` naming it."""
    with _held_lock:
        if _held.get(lake.catalog):
            _held[lake.catalog] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_lock:
                _held[lake.catalog] -= 1
        return
    lease = _postgres_lease(lake) if lake.catalog_kind == "postgres" else _file_lease(lake)
    with lease as take:
        deadline, told = time.monotonic() + wait_s, False
        while (other := take(holder)) is not None:
            if time.monotonic() >= deadline:
                raise LeaseHeld(
                    f"the lake's writer lease is held by {other}: another pipeline host is "
                    f"writing this lake (waited {wait_s:.0f} s; LOOM_WRITER_LEASE_WAIT_SECONDS)"
                )
            if not told:
                on_wait(f"waiting for the lake's writer lease, held by {other}…")
                told = True
            time.sleep(POLL_S)
        with _held_lock:
            _held[lake.catalog] = 1
        try:
            yield
        finally:
            with _held_lock:
                del _held[lake.catalog]


# Each lease kind is a context manager around a `take(holder) -> None | other holder` function:
# None when it now holds the lease, else the name of who holds it.
TakeFunction = Callable[[str], str | None]


@contextmanager
def _file_lease(lake: Lake) -> Iterator[TakeFunction]:
    path = Path(lake.catalog.removeprefix("sqlite:") + ".writer-lease")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:

        def take(holder: str) -> str | None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                return handle.read().strip() or "another process"
            handle.seek(0)
            handle.truncate()
            handle.write(holder)
            handle.flush()
            return None

        yield take


def _postgres_lease(lake: Lake) -> AbstractContextManager[TakeFunction]:
    import psycopg  # imported here: a SQLite lake never needs it

    @contextmanager
    def lease() -> Iterator[TakeFunction]:
        conninfo = lake.catalog.removeprefix("postgres:")
        connection = None

        def take(holder: str) -> str | None:
            nonlocal connection
            if connection is None:
                # application_name is at most 63 bytes: what names the holder to a waiter.
                name = f"loom writer {holder}"[:63]
                try:
                    connection = psycopg.connect(
                        f"{conninfo} {KEEPALIVE}", application_name=name, autocommit=True
                    )
                except psycopg.OperationalError as error:
                    raise LeaseUnreachable(
                        f"the lake's writer lease is kept in its PostgreSQL catalog, which "
                        f"cannot be reached: {str(error).strip()}"
                    ) from error
            [(taken,)] = connection.execute("SELECT pg_try_advisory_lock(%s)", [LEASE_KEY])
            if taken:
                return None
            rows = connection.execute(
                "SELECT activity.application_name FROM pg_locks AS locks"
                " JOIN pg_stat_activity AS activity ON activity.pid = locks.pid"
                " WHERE locks.locktype = 'advisory' AND locks.granted"
                " AND locks.classid = %s AND locks.objid = %s",
                [(LEASE_KEY >> 32) & 0xFFFFFFFF, LEASE_KEY & 0xFFFFFFFF],
            ).fetchall()
            return rows[0][0].removeprefix("loom writer ") if rows else "another process"

        try:
            yield take
        finally:
            if connection is not None:
                connection.close()  # the session ends, and its advisory lock with it

    return lease()
