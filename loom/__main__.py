"""``python -m loom``: the ``loom`` command run by this interpreter, with or without the script."""

from loom.cli import main

main(prog_name="loom")
