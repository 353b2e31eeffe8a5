"""``loom-dbt``: the venv's ``dbt``, bound to the life of the process that starts it.

dagster-dbt runs dbt as a child process. If the pipeline process is killed (``kill -9`` of
``loom run``, a crashed run worker), an ordinary child lives on as an orphan, still writing the
warehouse, while a rerun waits for it. Before becoming dbt, this launcher asks the kernel to kill
it when its parent dies (Linux ``PR_SET_PDEATHSIG``, kept across ``exec``); elsewhere it runs dbt
as is.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel kill this process (and what it execs) when its parent process dies."""
    if sys.platform != "linux":
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died before the signal was armed
        sys.exit("loom-dbt: the process that started dbt is gone; not starting it")


def main() -> None:
    die_with_parent()
    dbt = Path(sys.executable).with_name("dbt")
    os.execv(dbt, [str(dbt), *sys.argv[1:]])
