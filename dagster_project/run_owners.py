"""Which process runs a scripted run, so that a run whose process died can be let go.

``loom run`` executes runs in its own process (``execute_in_process``), outside Dagster's run
launcher and its monitoring. When that process is killed (``kill -9``), the run stays STARTED in
run storage and keeps its slot of the ``warehouse`` pool, and every later run waits for it
forever. Each scripted run is therefore tagged with its owner (host, pid and the process's start
time, so a reused pid is not mistaken for the owner), and :func:`release_runs_of_dead_owners`
marks the runs of owners that are gone as failed and frees their slots. Runs the UI or the
daemon launch are watched by Dagster's own run monitoring (``dagster_project/instance.py``).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from dagster_project.instance import WRITER_TAG
from dagster_project.resources import WAREHOUSE_POOL
from warehouse.layout import Lake, Layout
from warehouse.settings import get_settings
from warehouse.writer_lease import WriterLeaseError, holder_name, writer_lease

HOST_TAG, PID_TAG, STARTED_TAG = "loom/host", "loom/pid", "loom/process-started"
TURN_LOCK = "loom-run.lock"
TURN_POLL_S = 1.0
UNFINISHED = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class ReleasedRun:
    run_id: str
    pid: int
    host: str = ""


def owner_tags() -> dict[str, str]:
    """The tags naming this process as the owner of a run."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), STARTED_TAG: _started(pid) or ""}


def release_runs_of_dead_owners(instance: dg.DagsterInstance) -> list[ReleasedRun]:
    """Fail every unfinished warehouse run owned by a process of this host that is gone, and
    free its pool slots; the runs let go."""
    released: list[ReleasedRun] = []
    if not Path("/proc/self/stat").exists():
        return released  # no way to tell a live owner from a dead one here
    runs = instance.get_runs(
        filters=dg.RunsFilter(statuses=UNFINISHED, tags={WRITER_TAG: WAREHOUSE_POOL})
    )
    for run in runs:
        if run.tags.get(HOST_TAG) != socket.gethostname() or PID_TAG not in run.tags:
            continue
        pid = int(run.tags[PID_TAG])
        if _started(pid) == run.tags.get(STARTED_TAG):
            continue  # its owner is still running it
        instance.report_run_failed(
            run, f"the process that ran it (pid {pid} on {run.tags[HOST_TAG]}) is gone"
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(ReleasedRun(run.run_id, pid))
    return released


@contextmanager
def writer_turn(
    instance: dg.DagsterInstance, layout: Layout, echo: Callable[[str], None]
) -> Iterator[None]:
    """Wait until no other run writes the warehouse, then hold the turn while the block runs.

    Runs executed by scripts (``loom run``) never pass through Dagster's run queue, so two of
    them used to interleave their steps through the ``warehouse`` pool, each slowing the others
    more than waiting would. ``loom run``s of this host take turns through a lock file
    in DAGSTER_HOME, and each waits for the runs the daemon started to finish (the run queue in
    turn holds the daemon's runs back while this one is in progress). Last, it takes the lake's
    writer lease, which another pipeline host's run may hold."""
    with open(Path(instance.root_directory) / TURN_LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo("waiting for another `loom run` on this host to finish…")
            fcntl.flock(lock, fcntl.LOCK_EX)
        waited_for: set[str] = set()
        while runs := _unfinished_writer_runs_of_this_host(instance):
            for run in runs:
                if run.run_id not in waited_for:
                    echo(f"waiting for run {run.run_id[:8]} ({run.job_name}) to finish…")
                    waited_for.add(run.run_id)
            time.sleep(TURN_POLL_S)
        # Runs of other pipeline hosts writing the same lake: the lake's writer lease.
        with writer_lease(
            layout.lake,
            holder_name(),
            wait_s=get_settings().writer_lease_wait_seconds,
            on_wait=echo,
        ):
            for released in release_runs_of_gone_hosts(instance):
                echo(
                    f"run {released.run_id} was left unfinished by pid {released.pid} of "
                    f"{released.host}, which holds the lake's writer lease no more: marked "
                    "failed, its warehouse slot freed"
                )
            yield


def _unfinished_writer_runs_of_this_host(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Unfinished warehouse runs of this host, and those no process has taken up yet (a run the
    daemon launched, before the worker tags it). Another host's runs, which a storage shared in
    PostgreSQL shows too, are waited for through the writer lease: one of a host that died would
    never finish here."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(statuses=UNFINISHED, tags={WRITER_TAG: WAREHOUSE_POOL})
    )
    here = socket.gethostname()
    return [run for run in runs if run.tags.get(HOST_TAG, here) == here]


def release_runs_of_gone_hosts(instance: dg.DagsterInstance) -> list[ReleasedRun]:
    """Fail every STARTED warehouse run of another host, and free its pool slots; the runs let
    go. Called while holding the lake's writer lease: a writer run is STARTED only while its
    process holds the lease (``loom run`` takes it before its run starts, the run worker before
    it executes one), so another host's STARTED run with the lease free here is one whose
    process died (its host gone), left so in the run storage the hosts share."""
    released: list[ReleasedRun] = []
    here = socket.gethostname()
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED], tags={WRITER_TAG: WAREHOUSE_POOL}
        )
    )
    for run in runs:
        host = run.tags.get(HOST_TAG)
        if host is None or host == here:
            continue  # this host's runs are judged by their pids
        pid = int(run.tags.get(PID_TAG, "0"))
        instance.report_run_failed(
            run,
            f"the process that ran it (pid {pid} on {host}) is gone: it no longer held the "
            "lake's writer lease",
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(ReleasedRun(run.run_id, pid, host))
    return released


def run_owner_alive(run: dg.DagsterRun, lake: Lake) -> bool | None:
    """Whether the process that executes ``run`` still does: by its pid on this host; on another
    host, for a STARTED writer run, by the lake's writer lease (free: its holder is gone); None
    when it cannot be told."""
    host = run.tags.get(HOST_TAG)
    if host is None or PID_TAG not in run.tags:
        return None
    if host == socket.gethostname():
        return _started(int(run.tags[PID_TAG])) == run.tags.get(STARTED_TAG)
    if run.tags.get(WRITER_TAG) != WAREHOUSE_POOL or run.status != dg.DagsterRunStatus.STARTED:
        return None
    try:
        with writer_lease(lake, holder_name(), wait_s=0):
            return False
    except WriterLeaseError:
        return True  # held (by that run, or one that waited for it) or unreachable: not judged


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or
    None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    # The command name (field 2) may contain spaces and parentheses: count from its end.
    return stat[stat.rindex(")") + 2 :].split()[19]


def execute_holding_the_lease(
    instance: dg.DagsterInstance, run_id: str, execute: Callable[[], None]
) -> None:
    """Execute a run the daemon launched; a warehouse writer takes the lake's writer lease
    first, as ``loom run`` does (:func:`writer_turn`). Every process so takes the lease before
    any pool slot: the other way round, a micro-batch's step holding the ``warehouse`` slot
    waited for the lease of a ``loom run`` whose step waited for that slot, until the lease's
    timeout (10 min)."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.tags.get(WRITER_TAG) != WAREHOUSE_POOL:
        execute()
        return
    try:
        with writer_lease(
            Layout.from_settings().lake,
            holder_name(),
            wait_s=get_settings().writer_lease_wait_seconds,
        ):
            release_runs_of_gone_hosts(instance)
            execute()
    except WriterLeaseError as problem:
        instance.report_run_failed(run, str(problem))
