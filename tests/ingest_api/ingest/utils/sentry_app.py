"""Apps instrumented with the real sentry-sdk from PyPI, each run in a process of its own as its
user would run it; the only configuration is ``sentry_sdk.init(dsn=…, release=…)``.

* ``script``: application mode, one session around the script's work, which ends cleanly, with a
  handled error, or with an unhandled exception (the process dies of it);
* ``wsgi``: a WSGI app behind the SDK's middleware, in request mode (one session per request,
  sent as aggregates): path ``/`` answers, ``/handled`` captures an error and answers,
  ``/crash`` raises.

Run as ``python -m tests.ingest_api.ingest.utils.sentry_app script|wsgi DSN RELEASE …``.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Literal

REPO = Path(__file__).resolve().parents[4]
Compression = Literal["gzip", "br", "none"]


def dsn(base_url: str, key: str, project_id: int) -> str:
    """A Sentry DSN for a Loom project: the key as the public key, the project id as the path."""
    scheme, _, host = base_url.partition("://")
    return f"{scheme}://{key}@{host}/{project_id}"


def _run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.ingest_api.ingest.utils.sentry_app", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_script(
    dsn: str, release: str, user: str, ending: str, compression: Compression = "br"
) -> subprocess.CompletedProcess:
    """Run the application-mode script; ``ending`` is clean, handled or crash."""
    finished = _run("script", dsn, release, compression, user, ending)
    assert finished.returncode == (1 if ending == "crash" else 0), finished.stderr
    return finished


def run_wsgi(dsn: str, release: str, paths: list[str], compression: Compression = "br") -> None:
    """Serve ``paths`` (one request each) through the instrumented WSGI app."""
    finished = _run("wsgi", dsn, release, compression, *paths)
    assert finished.returncode == 0, finished.stderr


def _init(dsn: str, release: str, compression: Compression) -> None:
    import sentry_sdk

    experiments = (
        {"transport_compression_level": 0}
        if compression == "none"
        else {"transport_compression_algo": compression}
    )
    sentry_sdk.init(dsn=dsn, release=release, _experiments=experiments)


def script(user: str, ending: str) -> None:
    import sentry_sdk

    sentry_sdk.set_user({"id": user})
    sentry_sdk.start_session()
    if ending == "handled":
        try:
            int("not a number")
        except ValueError as error:
            sentry_sdk.capture_exception(error)
    if ending == "crash":
        raise RuntimeError("an unhandled error ends the process")
    sentry_sdk.end_session()


def wsgi(paths: list[str]) -> None:
    from wsgiref.util import setup_testing_defaults

    import sentry_sdk
    from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

    def app(environ: dict, start_response) -> list[bytes]:
        if environ["PATH_INFO"] == "/crash":
            raise RuntimeError("an unhandled error in a request")
        if environ["PATH_INFO"] == "/handled":
            try:
                int("not a number")
            except ValueError as error:
                sentry_sdk.capture_exception(error)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    served = SentryWsgiMiddleware(app)
    for path in paths:
        environ = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        # A WSGI server answers an exception with a 500 and goes on with the next request.
        with contextlib.suppress(RuntimeError):
            b"".join(served(environ, lambda status, headers: None))
    sentry_sdk.flush()  # the SDK sends request-mode aggregates every 60 s, or when flushed


def main(arguments: list[str]) -> None:
    kind, dsn_, release, compression, *rest = arguments
    _init(dsn_, release, compression)
    if kind == "script":
        script(*rest)
    else:
        wsgi(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
