"""The warm run worker: executes the pipeline's runs one at a time in a process that stays up.

Dagster's default launcher starts a new interpreter for every run, which imports Dagster,
dagster-dbt, dbt and the definitions, loads the dbt manifest and attaches the lake again before
the first step: several seconds, paid again by every micro-batch. The worker pays them once.
:class:`dagster_project.run_launcher.WarmRunLauncher` (the instance's run launcher) starts it on
first use and hands it run ids over a Unix socket in ``DAGSTER_HOME``; each run is executed as
``dagster api execute_run`` would (:mod:`dagster_project.framework_workarounds`), its events
stored in the instance like any other run's.

One worker per ``DAGSTER_HOME`` (a lock file). A worker whose code changed under it (a model, an
asset, a module of the packages it runs) executes itself anew before the next run, so no run
executes stale definitions. When the process that started it (the Dagster daemon) is gone, it
stops taking runs, finishes the one it is executing and exits.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import queue
import socket
import sys
import threading
from functools import partial
from pathlib import Path

MODULE = "dagster_project.run_worker"
SOCKET_NAME = "run-worker.sock"
LOCK_NAME = "run-worker.lock"
# The run tag naming the worker executing a run (run monitoring and cancellation read it).
WORKER_PID_TAG = "loom/run-worker-pid"
# Code whose change makes a worker stale: the packages it executes (the dbt project is checked
# through warehouse.dbt.project_mtime).
WATCHED_PACKAGES = ("dagster_project", "warehouse")
PARENT_CHECK_S = 1.0


def worker_command(
    dagster_home: Path, parent_pid: int, pending: list[str] | None = None
) -> list[str]:
    return [sys.executable, "-m", MODULE, str(dagster_home), str(parent_pid), *(pending or [])]


def ask_worker(dagster_home: Path, run_id: str) -> int:
    """Queue ``run_id`` on the worker of ``dagster_home``; its pid. OSError when none listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(10.0)
        connection.connect(str(dagster_home / SOCKET_NAME))
        with connection.makefile("rw") as stream:
            stream.write(json.dumps({"run_id": run_id}) + "\n")
            stream.flush()
            answer = stream.readline()
    if not answer:
        raise ConnectionResetError("the run worker closed the connection: it is leaving")
    return int(json.loads(answer)["pid"])


def code_stamp() -> float:
    """When the code a run executes last changed: the packages' modules and the dbt project."""
    from warehouse.dbt import project_mtime

    root = Path(__file__).resolve().parents[1]
    modules = (path for package in WATCHED_PACKAGES for path in (root / package).rglob("*.py"))
    return max([project_mtime(), *(path.stat().st_mtime for path in modules)])


class RunWorker:
    def __init__(self, dagster_home: Path, parent_pid: int) -> None:
        self._home = dagster_home
        self._parent_pid = parent_pid
        self._runs: queue.Queue[str] = queue.Queue()
        self._stamp = code_stamp()
        self._leaving = threading.Event()

    def serve(self, pending: list[str]) -> None:
        from dagster import DagsterInstance

        import dagster_project.definitions  # noqa: F401 - loaded once, before any run
        from dagster_project.framework_workarounds import execute_run_in_this_process
        from dagster_project.run_owners import execute_holding_the_lease, owner_tags

        # What is loaded now lives as long as the worker: out of the collector's full passes, as
        # in `loom run` (dagster_project/cli.py).
        gc.freeze()
        gc.set_threshold(50_000, 10, 10)
        for run_id in pending:
            self._runs.put(run_id)
        listener = self._listen()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        threading.Thread(target=self._watch_parent, args=(listener,), daemon=True).start()
        with DagsterInstance.get() as instance:
            while not (self._leaving.is_set() and self._runs.empty()):
                try:
                    run_id = self._runs.get(timeout=PARENT_CHECK_S)
                except queue.Empty:
                    continue
                if code_stamp() != self._stamp:
                    listener.close()
                    self._restart([run_id, *self._waiting()])
                instance.add_run_tags(run_id, {**owner_tags(), WORKER_PID_TAG: str(os.getpid())})
                execute_holding_the_lease(
                    instance, run_id, partial(execute_run_in_this_process, run_id, instance)
                )

    def _listen(self) -> socket.socket:
        path = self._home / SOCKET_NAME
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen()
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the worker is leaving
                return
            with connection, connection.makefile("rw") as stream:
                request = json.loads(stream.readline() or "{}")
                if self._leaving.is_set():
                    continue  # no answer: the launcher starts another worker
                self._runs.put(request["run_id"])
                stream.write(json.dumps({"pid": os.getpid()}) + "\n")
                stream.flush()

    def _watch_parent(self, listener: socket.socket) -> None:
        while not self._leaving.wait(PARENT_CHECK_S):
            if os.getppid() != self._parent_pid:
                self._leaving.set()
                listener.close()

    def _waiting(self) -> list[str]:
        waiting = []
        while not self._runs.empty():
            waiting.append(self._runs.get_nowait())
        return waiting

    def _restart(self, pending: list[str]) -> None:
        command = worker_command(self._home, self._parent_pid, pending)
        os.execv(command[0], command)


def main() -> None:
    home, parent, *pending = sys.argv[1:]
    os.environ["DAGSTER_HOME"] = home
    with open(Path(home) / LOCK_NAME, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another worker serves this DAGSTER_HOME
        RunWorker(Path(home), int(parent)).serve(pending)


if __name__ == "__main__":
    main()
