"""Ports for the servers the tests start (on loopback only), and what their clients share."""

from __future__ import annotations

import socket
import ssl

# httpx loads the CA bundle into a new SSL context for each client it makes (~30 ms of CPU); the
# tests' clients talk plain HTTP on loopback and share this one.
CLIENT_SSL_CONTEXT = ssl.create_default_context()


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
