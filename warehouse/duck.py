"""DuckDB access: every connection Loom opens goes through here.

Everything analysts and the read API read lives in one DuckLake, attached as catalog
``warehouse`` (so ``warehouse.analytics.events`` means the same from any client). Its catalog is a
SQLite file under the data directory by default, or a PostgreSQL database (``LOOM_LAKE_CATALOG``);
its data files are Parquet under ``LOOM_LAKE_DATA_PATH`` (see :class:`warehouse.layout.Lake`).

* :func:`connect_pipeline` — the one writer (raw loads, dbt, maintenance, publishing): an
  in-memory DuckDB with the lake attached read-write. It keeps nothing of its own: spills go to a
  scratch directory that may be deleted between runs.
* :func:`connect_reader` — analysts and the read API: the lake attached read-only, at a published
  snapshot (:mod:`warehouse.published`), so a reader never blocks a run and never sees half of one.

Extensions come from DuckDB's signed wheels on PyPI (``duckdb-extension-*``), never from the
network: autoloading and autoinstalling are off and ``extension_directory`` points at links to the
wheels' binaries (:func:`extension_directory`). DuckDB checks a binary's signature by hashing all
of it (70 MB) each time a connection loads it: a process has each binary checked once, by the first
connection that loads it, and later connections load that same file (same inode, size and
modification time) without the check (:func:`duckdb_config`). A binary changed or replaced since
is checked again.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from warehouse.layout import LAKE_ALIAS, Lake, Layout

# The wheels' file names and the names DuckDB looks the extensions up by.
EXTENSION_FILES = {
    "ducklake": "ducklake",
    "sqlite": "sqlite_scanner",
    "postgres": "postgres_scanner",
    "httpfs": "httpfs",
}
# SQLite catalogs answer "database is locked" now and then while another process commits.
ATTACH_ATTEMPTS = 8

# The extension binaries a connection of this process loaded with DuckDB's signature check on:
# (path, device, inode, size, modification time) of each.
_CHECKED_BINARIES: set[tuple[str, int, int, int, int]] = set()


def duckdb_config(layout: Layout) -> dict[str, str | bool]:
    """Connect-time settings of every Loom DuckDB connection. The signature check is left out
    only when every extension the lake needs is a binary this process has had checked."""
    directory = extension_directory(layout)
    checked = all(
        _binary_identity(directory, name) in _CHECKED_BINARIES
        for name in layout.lake.required_extensions()
    )
    return {
        "extension_directory": str(directory),
        "allow_unsigned_extensions": checked,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }


def extension_directory(layout: Layout) -> Path:
    """A DuckDB extension directory linking to the binaries of the installed extension wheels
    (``<dir>/v<version>/<platform>/<name>.duckdb_extension``), created on first use."""
    version = f"v{duckdb.__version__}"
    folder = layout.extensions_dir / version / _platform()
    for wheel_name, name in EXTENSION_FILES.items():
        link = folder / f"{name}.duckdb_extension"
        spec = importlib.util.find_spec(f"duckdb_extension_{wheel_name}")
        if spec is None or spec.origin is None:
            raise RuntimeError(f"the duckdb-extension-{wheel_name} package is not installed")
        binary = (
            Path(spec.origin).parent / "extensions" / version / f"{wheel_name}.duckdb_extension"
        )
        if link.is_symlink() and link.resolve() == binary.resolve():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        # Several processes may get here at once: each makes its own link and renames it.
        scratch = folder / f".{name}.{os.getpid()}.link"
        scratch.unlink(missing_ok=True)
        scratch.symlink_to(binary)
        os.replace(scratch, link)
    return layout.extensions_dir


def load_extensions(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """Load what attaching ``lake`` needs (autoloading is off); binaries loaded with the signature
    check on are remembered as checked."""
    [(directory, unsigned_allowed)] = con.execute(
        "SELECT current_setting('extension_directory'),"
        " current_setting('allow_unsigned_extensions')"
    ).fetchall()
    for extension in lake.required_extensions():
        # the file as it was before DuckDB read and checked it
        identity = _binary_identity(Path(directory), extension)
        con.execute(f"LOAD {extension}")
        if not unsigned_allowed:
            _CHECKED_BINARIES.add(identity)


def _binary_identity(directory: Path, extension: str) -> tuple[str, int, int, int, int]:
    name = EXTENSION_FILES.get(extension, extension)
    binary = directory / f"v{duckdb.__version__}" / _platform() / f"{name}.duckdb_extension"
    binary = binary.resolve()
    stat = binary.stat()
    return (str(binary), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def connect_pipeline(layout: Layout | None = None) -> duckdb.DuckDBPyConnection:
    """The writer's connection: the lake attached read-write as ``warehouse`` and in use."""
    layout = layout or Layout.from_settings()
    layout.scratch_dir.mkdir(parents=True, exist_ok=True)
    con = _connect(layout, temp_directory=str(layout.scratch_dir))
    attach_lake(con, layout.lake)
    return con


def connect_reader(
    layout: Layout | None = None, snapshot: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the lake at ``snapshot`` (its latest state when None)."""
    layout = layout or Layout.from_settings()
    con = unattached_connection(layout)
    attach_lake(con, layout.lake, snapshot=snapshot, read_only=True)
    return con


def unattached_connection(layout: Layout) -> duckdb.DuckDBPyConnection:
    """A connection with the lake's extensions loaded and nothing attached: the read API keeps one
    ready for its next snapshot (:class:`warehouse.published.PublishedMarts`; docs/benchmarks.md,
    "Publish to readers")."""
    return _connect(layout)


def attach_lake(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    *,
    snapshot: int | None = None,
    read_only: bool = False,
    alias: str = LAKE_ALIAS,
) -> None:
    """Attach ``lake`` (as ``warehouse``, unless ``alias`` names another catalog) and make
    ``warehouse`` the default catalog of ``con``."""
    if not read_only:
        lake.prepare()
    for attempt in range(ATTACH_ATTEMPTS):
        try:
            con.execute(lake.attach_sql(snapshot=snapshot, read_only=read_only, alias=alias))
            break
        except duckdb.Error as error:
            if not is_catalog_busy(error) or attempt == ATTACH_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    con.execute(f"USE {LAKE_ALIAS}")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction around the block: committed when it ends, rolled back when it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def is_catalog_busy(error: BaseException) -> bool:
    """Whether ``error`` is a SQLite catalog's momentary lock, worth a retry."""
    text = str(error).lower()
    return "database is locked" in text or "database is busy" in text


def _connect(layout: Layout, **settings: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={**duckdb_config(layout), **settings})
    # Every timestamp in the warehouse is naive UTC; make DuckDB's own clock functions agree, in
    # this connection and in every cursor of it.
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    load_extensions(con, layout.lake)
    return con


@functools.cache
def _platform() -> str:
    # A connection of its own: DuckDB's default connection is not safe to share between threads
    # (two readers opening connections at once got no row back).
    with duckdb.connect() as con:
        [(platform,)] = con.execute("PRAGMA platform").fetchall()
    return platform
