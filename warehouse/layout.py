"""The storage layout: the one place that knows where Loom's files live.

Everything under ``LOOM_DATA_DIR`` (default ``./data``)::

    landing/<stream>/org_id=<org>/date=<YYYY-MM-DD>/hour=<HH>/part-<received>-<host>-<pid>-<id>.ndjson
                            (unless LOOM_LANDING_PATH names a place every host reaches)
    .spill-<pid>            room a running ingest API reserves for acknowledged records
    lake/catalog.sqlite     the DuckLake catalog (unless LOOM_LAKE_CATALOG names another)
    lake/files/             its Parquet data files (unless LOOM_LAKE_DATA_PATH names another place)
    registry.sqlite3        orgs, projects and API-key hashes (unless the catalog is PostgreSQL)
    demo-keys.json          the demo keys `make up` creates
    dagster/                DAGSTER_HOME (run storage, schedules, logs)
    metrics/pipeline.prom   the pipeline's Prometheus metrics, which the API's /metrics adds
    scratch/                the pipeline's DuckDB spill space: nothing that cannot be rebuilt
    duckdb-extensions/      links to the DuckDB extensions installed from PyPI

Landing contract (what every later stage may rely on):

* ``<stream>`` is one of :data:`STREAMS`; the columns of each are in :mod:`warehouse.streams`.
* ``date``/``hour`` are the UTC hour the *server received* the records, and every record in a
  file has ``date_trunc('hour', received_at)`` equal to its directory's hour. Late events keep
  their own ``timestamp``; only where they are filed depends on arrival.
* Every file name carries its writer's host id (:attr:`Layout.host_id`) and pid: ingest hosts
  sharing one landing path never write, clean up or load under each other's names, and the
  pipeline loads every host's files of an hour together.
* A file becomes visible only complete (written to a dot-file, fsynced, renamed, directory
  fsynced) and is never appended to afterwards. Readers glob ``part-*.ndjson`` and so never see
  a file being written. A dot-file older than ``LOOM_LANDING_TEMP_FILE_MAX_AGE_MINUTES`` was
  left by a writer that died (on any host): the retention job deletes it.
* An hour is *closed* once the wall clock has passed its end plus :data:`HOUR_CLOSE_GRACE`; a
  file that still appears for a closed hour is late and makes that hour be loaded again.
* The retention job deletes an hour's files only once they are loaded, and first leaves
  :data:`RETIRED_MARKER` in the hour's directory: from then on the warehouse's raw rows are the
  only copy of that hour, and the loader keeps them instead of reloading from files.
"""

from __future__ import annotations

import hashlib
import re
import socket
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from warehouse.settings import HOST_ID_CHARACTERS, Settings, get_settings

STREAMS: tuple[str, ...] = (
    "events",
    "identities",
    "sessions",
    "session_aggregates",
    "ingestion_warnings",
)
LAKE_ALIAS = "warehouse"  # the catalog name analysts write: warehouse.analytics.events
PART_GLOB = "part-*.ndjson"
# Dot-files of writes in flight (or of writers that died): a flush's files, and a failing
# writer's probe of the disk, in the landing directory itself.
TEMP_GLOB = "*/org_id=*/date=*/hour=*/.part-*.tmp"
PROBE_GLOB = ".probe-*.tmp"
HOUR_CLOSE_GRACE = timedelta(minutes=2)
RETIRED_MARKER = ".retired"
SPILL_PREFIX = ".spill-"  # then the pid of the API process that reserved it
CLOCK_PREFIX = ".clock-"  # then the host id of the pipeline host that reads the time there


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as a naive UTC datetime, the warehouse's convention (DuckDB's TIMESTAMP); an
    aware one is converted, a naive one is taken to be UTC already."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def floor_hour(moment: datetime) -> datetime:
    """The UTC hour containing ``moment``, as a naive UTC datetime."""
    return naive_utc(moment).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Lake:
    """Where the DuckLake lives: its catalog database and the place of its data files.

    ``catalog`` is DuckLake's own metadata connection string without the ``ducklake:`` prefix:
    ``sqlite:<path>`` (one machine, no server) or ``postgres:<libpq connection string>`` (several
    machines share one lake). ``data_path`` is a directory or an object-store prefix
    (``s3://bucket/prefix/``, read through httpfs).
    """

    catalog: str
    data_path: str
    # The default lake (catalog and files in the data directory) moves with the directory: a
    # copied or moved data directory keeps working. A lake whose catalog or files were placed
    # explicitly must find its files where its catalog says they are.
    moves: bool = False

    @property
    def catalog_kind(self) -> str:
        kind = self.catalog.split(":", 1)[0]
        if kind not in ("sqlite", "postgres"):
            raise ValueError(
                f"LOOM_LAKE_CATALOG must start with sqlite: or postgres:, got {self.catalog!r}"
            )
        return kind

    @property
    def is_remote(self) -> bool:
        return "://" in self.data_path

    def required_extensions(self) -> list[str]:
        return ["ducklake", self.catalog_kind, *(["httpfs"] if self.is_remote else [])]

    def is_created(self) -> bool:
        """Whether the lake exists yet (a SQLite catalog is created by the first writer)."""
        return self.catalog_kind != "sqlite" or Path(self.catalog.removeprefix("sqlite:")).exists()

    def prepare(self) -> None:
        """Create what a new lake needs before DuckLake initializes it: local directories, and a
        SQLite catalog file in WAL mode, where readers never block the writer's commits."""
        if self.catalog_kind == "sqlite":
            path = Path(self.catalog.removeprefix("sqlite:"))
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                with closing(sqlite3.connect(path)) as catalog:
                    catalog.execute("PRAGMA journal_mode = WAL")
        if not self.is_remote:
            Path(self.data_path).mkdir(parents=True, exist_ok=True)

    def attach_sql(
        self, *, snapshot: int | None = None, read_only: bool = False, alias: str = LAKE_ALIAS
    ) -> str:
        options = [f"DATA_PATH {_sql_string(self.data_path)}"]
        if read_only:
            options.append("READ_ONLY")
        else:
            # Inlined rows (kept in the catalog instead of Parquet) break dbt's table swaps.
            options.append("DATA_INLINING_ROW_LIMIT 0")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        if self.moves:
            options.append("OVERRIDE_DATA_PATH TRUE")
        return f"ATTACH {_sql_string('ducklake:' + self.catalog)} AS {alias} ({', '.join(options)})"

    def catalog_database_attach_sql(self, alias: str) -> str:
        """Attach the catalog database itself (not the lake it describes), read-only."""
        database = self.catalog.split(":", 1)[1]
        return f"ATTACH {_sql_string(database)} AS {alias} (TYPE {self.catalog_kind}, READ_ONLY)"


@dataclass(frozen=True)
class Layout:
    data_dir: Path
    lake_catalog: str | None = None  # default: sqlite:<data_dir>/lake/catalog.sqlite
    lake_data_path: str | None = None  # default: <data_dir>/lake/files/
    landing_path: Path | None = None  # default: <data_dir>/landing
    host: str | None = None  # LOOM_HOST_ID; None derives one (see host_id)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Layout:
        settings = settings or get_settings()
        return cls(
            settings.data_dir,
            settings.lake_catalog,
            settings.lake_data_path,
            settings.landing_path,
            settings.host_id,
        )

    @cached_property
    def host_id(self) -> str:
        """This host's name in the landing files it writes (``LOOM_HOST_ID``). By default the
        hostname and a digest of the data directory's path: stable across restarts, and
        different for two API processes with data directories of their own on one machine."""
        if self.host is not None:
            return self.host
        name = re.sub(f"[^{HOST_ID_CHARACTERS}]", "_", socket.gethostname())
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:8]
        return f"{name.strip('._-')[:40] or 'host'}-{digest}"

    @property
    def lake(self) -> Lake:
        if self.lake_catalog is None and self.lake_data_path is None:
            lake = self.data_dir / "lake"
            return Lake(f"sqlite:{lake / 'catalog.sqlite'}", f"{lake / 'files'}/", moves=True)
        catalog = self.lake_catalog or f"sqlite:{self.data_dir / 'lake' / 'catalog.sqlite'}"
        return Lake(catalog, self.lake_data_path or f"{self.data_dir / 'lake' / 'files'}/")

    @property
    def landing_dir(self) -> Path:
        return self.landing_path or self.data_dir / "landing"

    def landing_clock(self) -> float:
        """Now, by the clock that stamps the landing files' times: on a shared filesystem its
        server's, which may be seconds or minutes off this host's. What compares those times
        (the sensors' cursors, a load's ``loaded_as_of``) takes "now" from here, so that no skew
        between hosts hides a file that landed after a look."""
        self.landing_dir.mkdir(parents=True, exist_ok=True)
        clock = self.landing_dir / f"{CLOCK_PREFIX}{self.host_id}"
        clock.touch()  # a time set to "now" is the file server's now (NFS: SET_TO_SERVER_TIME)
        return clock.stat().st_mtime

    def temp_files(self) -> list[Path]:
        """Every dot-file of a landing write in flight or left by a writer that died, of any
        host sharing the landing path."""
        return [*self.landing_dir.glob(TEMP_GLOB), *self.landing_dir.glob(PROBE_GLOB)]

    def spill_path(self, pid: int) -> Path:
        """The room ingest API process ``pid`` reserves for acknowledged records that landing
        cannot take (its spill file): in this host's data directory, never on a shared landing
        path, since only this host knows whether ``pid`` still runs."""
        return self.data_dir / f"{SPILL_PREFIX}{pid}"

    def spill_files(self) -> list[Path]:
        """This host's spill files, with those kept where earlier versions put them (in the
        landing directory under the data directory) until they are landed."""
        legacy = self.data_dir / "landing"
        pattern = f"{SPILL_PREFIX}*"
        return sorted([*self.data_dir.glob(pattern), *legacy.glob(pattern)])

    @property
    def scratch_dir(self) -> Path:
        return self.data_dir / "scratch"

    @property
    def extensions_dir(self) -> Path:
        return self.data_dir / "duckdb-extensions"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.sqlite3"

    @property
    def demo_keys_path(self) -> Path:
        return self.data_dir / "demo-keys.json"

    @property
    def pipeline_metrics_path(self) -> Path:
        return self.data_dir / "metrics" / "pipeline.prom"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster"

    def stream_dir(self, stream: str) -> Path:
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; expected one of {', '.join(STREAMS)}")
        return self.landing_dir / stream

    def hour_dir(self, stream: str, org_id: str, hour: datetime) -> Path:
        hour = floor_hour(hour)
        return (
            self.stream_dir(stream)
            / f"org_id={org_id}"
            / f"date={hour:%Y-%m-%d}"
            / f"hour={hour:%H}"
        )

    def hour_files(self, stream: str, hour: datetime) -> list[Path]:
        """Every visible landing file of one received hour, across all orgs, in a stable order."""
        hour = floor_hour(hour)
        pattern = f"org_id=*/date={hour:%Y-%m-%d}/hour={hour:%H}/{PART_GLOB}"
        return sorted(self.stream_dir(stream).glob(pattern))

    def is_hour_retired(self, stream: str, hour: datetime) -> bool:
        """Whether retention has started deleting this received hour's landing files."""
        hour = floor_hour(hour)
        pattern = f"org_id=*/date={hour:%Y-%m-%d}/hour={hour:%H}/{RETIRED_MARKER}"
        return any(self.stream_dir(stream).glob(pattern))

    def landed_hours(self, stream: str) -> set[datetime]:
        """Every received hour that has at least one visible file in ``stream``."""
        hours = set()
        for hour_path in self.stream_dir(stream).glob("org_id=*/date=*/hour=*"):
            if any(hour_path.glob(PART_GLOB)):
                hours.add(hour_of_dir(hour_path))
        return hours


def hour_of_dir(hour_path: Path) -> datetime:
    """The received hour a ``date=…/hour=…`` directory holds."""
    date = hour_path.parent.name.removeprefix("date=")
    hour = hour_path.name.removeprefix("hour=")
    return datetime.strptime(f"{date} {hour}", "%Y-%m-%d %H")


def is_hour_closed(hour: datetime, now: datetime | None = None) -> bool:
    now = naive_utc(now or datetime.now(UTC))
    return now >= floor_hour(hour) + timedelta(hours=1) + HOUR_CLOSE_GRACE


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
