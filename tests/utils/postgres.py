"""A real PostgreSQL server for the tests that need one (a lake catalog shared by several hosts):
Debian's ``postgresql`` package (``make test`` installs it when missing), started on a free
loopback port in a temporary directory and stopped after the tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"  # initdb refuses to run as root; the package creates this user


def postgres_bin_dir() -> Path:
    """Where pg_ctl and initdb are: on PATH, or Debian's versioned directory (newest)."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    if not installed:
        raise RuntimeError(
            "PostgreSQL is not installed: `make test` installs Debian's postgresql package"
        )
    return installed[-1].parent


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin_dir: Path

    def conninfo(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=loom dbname={dbname}"

    def create_database(self, name: str) -> str:
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "loom", "-d",
                  "postgres", "-c", f'CREATE DATABASE "{name}"')  # fmt: skip
        return self.conninfo(name)

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-w",
            "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.root / "data"), "status", check=False) == 0

    def _run(self, program: str, *args: str, check: bool = True) -> int:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, timeout=120).returncode


def start_postgres() -> PostgresServer:
    root = Path(tempfile.mkdtemp(prefix="loom-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(root, SERVER_USER, SERVER_USER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = PostgresServer(root, port, postgres_bin_dir())
    server._run("initdb", "-D", str(root / "data"), "-U", "loom", "--auth=trust", "-E", "UTF8")
    server.start()
    return server


def remove(server: PostgresServer) -> None:
    if server.is_running():  # a test may have stopped it
        server.stop()
    shutil.rmtree(server.root, ignore_errors=True)
