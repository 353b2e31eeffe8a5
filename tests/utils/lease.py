"""A process of its own holding a lake's writer lease, as another pipeline host's run would."""

from __future__ import annotations

import subprocess
import sys

from warehouse.layout import Layout

HOLD = """
import sys, time
from pathlib import Path
from warehouse.layout import Layout
from warehouse.writer_lease import writer_lease
data_dir, catalog, data_path, holder = sys.argv[1:]
layout = Layout(Path(data_dir), catalog or None, data_path or None)
with writer_lease(layout.lake, holder, wait_s=0):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_lease(layout: Layout, holder: str) -> subprocess.Popen:
    """The process, once it holds the lease (kill it to let go)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(layout.data_dir), layout.lake_catalog or "",
         layout.lake_data_path or "", holder],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process
