"""The ``loom`` command's own behaviour (each subcommand is tested next to its component)."""

from __future__ import annotations

import subprocess
import sys


def test_loom_freezes_what_is_alive_at_exit() -> None:
    # Python's shutdown otherwise collects garbage over every live object: 1.2 s after a pipeline
    # run. atexit handlers run last-registered first, so this probe, registered before `loom`
    # starts, runs after loom's own handler.
    probe = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count()))\n"
        "from loom.cli import main\n"
        "main(['keys', '--help'], prog_name='loom')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    frozen = int(done.stdout.rsplit("frozen at exit:", 1)[1])
    assert frozen > 10_000, done.stdout
