"""Every use of dbt-core's and dbt-duckdb's Python internals, in one place: WORKAROUNDS written for
dbt-core 1.11.16 and dbt-duckdb 1.11.1 (tests/test_workaround_pins.py fails when either moves,
naming what to check again).

* :func:`pickled_manifest` / :func:`unpickled_manifest`: the parsed manifest kept on disk for the
  next process. dbt offers a partial parse, not a parsed manifest to start from: parsing the
  project costs ~7 s and a partial parse ~3 s, loading the pickle a fraction of a second
  (docs/benchmarks.md, "Why the code is as it is"), and every ``loom run`` is a new process.
* :func:`close_dbt_connection`: dbt-duckdb keeps its DuckDB connection open between in-process
  invocations (``keep_open``) in a class attribute, and offers nothing to close it.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest


def pickled_manifest(manifest: Manifest) -> bytes:
    """``manifest`` pickled, without its lookups: they are rebuilt on first use, and pickled they
    come back in the wrong fields (dbt's ``__reduce_ex__`` and constructor disagree on their
    order)."""
    for name in [name for name in vars(manifest) if name.endswith("_lookup")]:
        setattr(manifest, name, None)
    return pickle.dumps(manifest)


def unpickled_manifest(pickled: bytes) -> Manifest:
    return pickle.loads(pickled)


def close_dbt_connection() -> None:
    """Close dbt-duckdb's connection once an invocation is over: the next invocation may be for
    another lake (the tests build several), and an idle attach would hold the catalog open."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
        DuckDBConnectionManager.close_all_connections()
