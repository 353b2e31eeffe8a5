"""``loom-dbt`` binds dbt to its parent: killed parent, killed child, even when the child is busy
and silent (a long model writes nothing to a pipe that could break)."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.processes import alive

# A parent that starts a quiet, long-lived child and prints its pid; the child either binds itself
# to its parent the way loom-dbt does before becoming dbt, or does not.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(120)
"""
UNBOUND_CHILD = "import time; time.sleep(120)"
BOUND_CHILD = (
    f"from warehouse.dbt_launcher import die_with_parent; die_with_parent(); {UNBOUND_CHILD}"
)


def child_after_parent_is_killed(child_code: str) -> bool:
    """Whether the child is still alive a moment after its parent got SIGKILL."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, child_code], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child has armed its signal (or not) by now
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and alive(child):
        time.sleep(0.05)
    survived = alive(child)
    if survived:
        subprocess.run(["kill", "-9", str(child)], check=False)
    return survived


def test_a_bound_child_dies_with_its_parent_and_an_unbound_one_does_not() -> None:
    assert not child_after_parent_is_killed(BOUND_CHILD)
    assert child_after_parent_is_killed(UNBOUND_CHILD)  # what dbt did before: an orphan
