"""``loom up``: the local stack. Bootstraps the demo keys, then runs each service as a child
process and supervises them together: when one exits or Ctrl-C arrives, all are stopped.

A service is one :class:`Service` in :func:`services`; adding one (e.g. the Dagster UI) is adding
an entry there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from warehouse.layout import Layout
from warehouse.settings import Settings, get_settings

STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    url: str
    env: dict[str, str] | None = None  # added to the parent's environment


def loom_command(*args: str) -> list[str]:
    """Run a ``loom`` subcommand with this interpreter, whether or not the script is on PATH."""
    return [sys.executable, "-c", "from warehouse.cli import main; main(prog_name='loom')", *args]


def services(settings: Settings, layout: Layout) -> list[Service]:
    return [
        Service(
            "ingest API",
            loom_command("serve", "--host", settings.host, "--port", str(settings.port)),
            f"http://{settings.host}:{settings.port}  (dashboard: /, API docs: /docs)",
        ),
        dagster_service(settings, layout),
    ]


def dagster_service(settings: Settings, layout: Layout) -> Service:
    """`dagster dev` (webserver, daemon with the schedules and sensor) on the project's instance.

    Loopback only: the Dagster UI has no authentication.
    """
    from dagster_project.instance import DAGSTER_ENVIRONMENT, prepare_dagster_home

    repo = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-m", "dagster", "dev", "-m", "dagster_project"]
    argv += ["--working-directory", str(repo), "--host", "127.0.0.1"]
    argv += ["--port", str(settings.dagster_port)]
    return Service(
        "Dagster UI",
        argv,
        f"http://127.0.0.1:{settings.dagster_port}  (asset graph: /asset-groups)",
        env={
            "DAGSTER_HOME": str(prepare_dagster_home(layout)),
            "LOOM_DATA_DIR": str(layout.data_dir),
            **DAGSTER_ENVIRONMENT,
        },
    )


class Supervisor:
    """Child processes started together and stopped together."""

    def __init__(self) -> None:
        self.running: list[tuple[Service, subprocess.Popen]] = []

    def start(self, service: Service) -> None:
        env = {**os.environ, **(service.env or {})}
        self.running.append((service, subprocess.Popen(service.argv, env=env)))

    def wait_any(self) -> tuple[Service, int]:
        """Block until one child exits; its service and exit code."""
        while True:
            for service, process in self.running:
                code = process.poll()
                if code is not None:
                    return service, code
            time.sleep(0.2)

    def stop(self) -> None:
        for _, process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _, process in self.running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a `kill` of `loom up` stops the children like Ctrl-C does


@click.command()
def up() -> None:
    """Create the demo keys and run the local stack until Ctrl-C."""
    from ingest_api.bootstrap import bootstrap_demo

    settings = get_settings()
    layout = Layout.from_settings(settings)
    demo = bootstrap_demo(layout)
    click.echo(f"demo org {demo['org_name']} ({demo['org_id']}), project id {demo['project_id']}")
    click.echo(f"  write key: {demo['write_key']}")
    click.echo(f"  rw key:    {demo['rw_key']}")
    click.echo(f"  (saved to {Path(layout.demo_keys_path)})")

    signal.signal(signal.SIGTERM, _interrupt)
    supervisor = Supervisor()
    code = 0
    try:
        for service in services(settings, layout):
            supervisor.start(service)
            click.echo(f"{service.name}: {service.url}")
        click.echo("Ctrl-C stops everything.")
        service, code = supervisor.wait_any()
        click.echo(f"{service.name} exited with code {code}; stopping the others", err=True)
    except KeyboardInterrupt:
        click.echo("stopping…", err=True)
    finally:
        supervisor.stop()
    sys.exit(code)
