"""``loom up``: the local stack. Bootstraps the demo keys, then runs each service as a child
process and supervises them together: when one exits or Ctrl-C arrives, all are stopped.

On a data directory's first start (nothing landed, no lake yet) a one-shot child, ``loom demo
--api``, posts the demo's day of traffic to the stack's own API and builds it through Dagster, so
that the dashboard opens on releases rather than on "nothing published yet". It is a task, not a
service: its exit stops nothing.

A service is a :class:`~warehouse.service.Service` that its own package describes
(``ingest_api/service.py``, ``dagster_project/service.py``); ``loom.cli.SERVICES`` names them, as
it names subcommands.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from loom.cli import SERVICES, resolve
from warehouse.bootstrap import bootstrap_demo
from warehouse.layout import STREAMS, Layout
from warehouse.service import Service
from warehouse.settings import Settings, get_settings

STOP_TIMEOUT_S = 10.0


def services(settings: Settings, layout: Layout) -> list[Service]:
    """Each service of ``SERVICES``, as its own package describes it."""
    return [resolve(target)(settings, layout) for target in SERVICES]


def is_first_start(layout: Layout) -> bool:
    """Nothing has landed and the lake does not exist yet: a data directory the demo may fill.
    A lake in a shared catalog (PostgreSQL) never is: other hosts may be writing to it."""
    lake = layout.lake
    return (
        lake.catalog_kind == "sqlite"
        and not lake.is_created()
        and not any(layout.landed_hours(stream) for stream in STREAMS)
    )


def demo_task(settings: Settings) -> Service:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    argv = [sys.executable, "-m", "loom", "demo", "--api", f"http://{host}:{settings.port}"]
    return Service("demo data", argv, "")


class Supervisor:
    """Child processes started together and stopped together: services, which must keep running,
    and one-shot tasks, whose exit is reported and stops nothing."""

    def __init__(self) -> None:
        self.running: list[tuple[Service, subprocess.Popen]] = []
        self.tasks: list[tuple[Service, subprocess.Popen]] = []

    def start(self, service: Service) -> None:
        self.running.append((service, self._spawn(service)))

    def start_task(self, task: Service) -> None:
        self.tasks.append((task, self._spawn(task)))

    def _spawn(self, service: Service) -> subprocess.Popen:
        # Each in a process group of its own, stopped whole: `dagster dev` leaves its webserver,
        # daemon, code servers and run worker running when only it is stopped.
        return subprocess.Popen(
            service.argv, env={**os.environ, **(service.env or {})}, start_new_session=True
        )

    def wait_any(self) -> tuple[Service, int]:
        """Block until one service exits; its service and exit code. Tasks that finish
        meanwhile are reported."""
        while True:
            for service, process in self.running:
                code = process.poll()
                if code is not None:
                    return service, code
            for task, process in list(self.tasks):
                code = process.poll()
                if code is not None:
                    self.tasks.remove((task, process))
                    outcome = "done" if code == 0 else f"FAILED with code {code} (see above)"
                    click.echo(f"{task.name}: {outcome}", err=code != 0)
            time.sleep(0.2)

    def stop(self) -> None:
        """Interrupt every child's process group, as Ctrl-C in a terminal would (the API flushes
        what it acknowledged, a run in progress is recorded as canceled), then kill what is left
        after STOP_TIMEOUT_S."""
        children = [*self.tasks, *self.running]
        for _, process in children:
            _signal_group(process, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _, process in children:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for _, process in children:  # what a child left behind in its group
            _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a `kill` of `loom up` stops the children like Ctrl-C does


@click.command()
@click.option(
    "--demo/--no-demo",
    default=True,
    show_default=True,
    help="On a data directory's first start, post the demo's day of traffic and build it.",
)
def up(demo: bool) -> None:
    """Create the demo keys and run the local stack until Ctrl-C."""
    settings = get_settings()
    layout = Layout.from_settings(settings)
    seed_demo = demo and is_first_start(layout)
    keys = bootstrap_demo(layout)
    click.echo(f"demo org {keys['org_name']} ({keys['org_id']}), project id {keys['project_id']}")
    click.echo(f"  write key: {keys['write_key']}")
    click.echo(f"  rw key:    {keys['rw_key']}")
    click.echo(f"  (saved to {Path(layout.demo_keys_path)})")

    signal.signal(signal.SIGTERM, _interrupt)
    supervisor = Supervisor()
    code = 0
    try:
        for service in services(settings, layout):
            supervisor.start(service)
            click.echo(f"{service.name}: {service.url}")
        if seed_demo:
            click.echo("first start: posting the demo's day of traffic and building it (~30 s)")
            supervisor.start_task(demo_task(settings))
        click.echo("Ctrl-C stops everything.")
        service, code = supervisor.wait_any()
        click.echo(f"{service.name} exited with code {code}; stopping the others", err=True)
    except KeyboardInterrupt:
        click.echo("stopping…", err=True)
    finally:
        supervisor.stop()
    sys.exit(code)
