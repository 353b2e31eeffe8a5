"""A real nginx in front of ingest API replicas: Debian's ``nginx`` package (``make test``
installs it when missing), run in the foreground as the current user with everything (config,
pid, logs, buffered bodies) in a temporary directory, listening on loopback only.

The config is the one docs/deploy.md recommends: an upstream of every replica, and a request
that fails on one (refused, reset, timed out, 502/503) retried on the next, POSTs included
(``non_idempotent``): the API lands a retried record under the same uuid, and the models count it
once."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

MISSING = "nginx is not installed: `make test` installs Debian's nginx package"


def nginx_binary() -> Path | None:
    """nginx on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    return Path(found) if found else None


def replicas_config(root: Path, port: int, replicas: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{replica} max_fails=1 fail_timeout=5s;"
                        for replica in replicas)  # fmt: skip
    # As root, workers would run as nobody, who cannot write the buffered bodies in `root`.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
worker_processes 1;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstreams '$status $upstream_addr';
    access_log {root}/access.log upstreams;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;

    upstream loom_ingest {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 20m;
        location / {{
            proxy_pass http://loom_ingest;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            proxy_buffering off;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    root: Path
    port: int
    process: subprocess.Popen

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def upstreams(self) -> list[str]:
        """The replica(s) each logged request went to, in order: ``a, b`` when nginx passed it
        on to ``b`` after ``a`` failed."""
        lines = (self.root / "access.log").read_text().splitlines()
        return [line.split(" ", 1)[1] for line in lines]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_nginx(root: Path, port: int, replicas: list[int]) -> Nginx:
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError(MISSING)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "nginx.conf"
    config.write_text(replicas_config(root, port, replicas))
    command = [str(binary), "-p", str(root), "-e", str(root / "error.log"), "-c", str(config),
               "-g", f"daemon off; pid {root}/nginx.pid;"]  # fmt: skip
    log = (root / "stderr.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=log)
    nginx = Nginx(root, port, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"nginx ({getpass.getuser()}) exited with {process.returncode}: "
                + (root / "stderr.log").read_text(errors="replace")
                + nginx.error_log
            )
        try:
            httpx.get(f"{nginx.base_url}/healthz", timeout=1)
            return nginx
        except httpx.TransportError:
            time.sleep(0.05)
    nginx.stop()
    raise TimeoutError(f"nginx did not listen on {nginx.base_url}: {nginx.error_log}")
