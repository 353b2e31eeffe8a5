"""Run the benchmarks: ``python -m bench`` (all) or ``python -m bench ingest dbt`` (some)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import bench


def main(argv: list[str]) -> int:
    names = sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(bench.__path__)
        if info.name.startswith("bench_")
    )
    wanted = argv or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}")
        return 2
    Path(bench.__path__[0], "results").mkdir(exist_ok=True)
    for name in wanted:
        print(f"== bench {name} ==", flush=True)
        importlib.import_module(f"bench.bench_{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
