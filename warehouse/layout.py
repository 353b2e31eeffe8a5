"""The storage layout: the one place that knows where Loom's files live.

Everything under ``LOOM_DATA_DIR`` (default ``./data``)::

    landing/<stream>/org_id=<org>/date=<YYYY-MM-DD>/hour=<HH>/part-<received>-<id>.ndjson
    warehouse.duckdb        the dbt/Dagster warehouse (single writer: the pipeline)
    serving/                read-only copies of the marts the read API queries
    registry.sqlite3        orgs, projects and API-key hashes
    demo-keys.json          the demo keys `make up` creates
    dagster/                DAGSTER_HOME (run storage, schedules, logs)

Landing contract (what every later stage may rely on):

* ``<stream>`` is one of :data:`STREAMS`; the columns of each are in :mod:`warehouse.streams`.
* ``date``/``hour`` are the UTC hour the *server received* the records, and every record in a
  file has ``date_trunc('hour', received_at)`` equal to its directory's hour. Late events keep
  their own ``timestamp``; only where they are filed depends on arrival.
* A file becomes visible only complete (written to a dot-file, fsynced, renamed, directory
  fsynced) and is never appended to afterwards. Readers glob ``part-*.ndjson`` and so never see
  a file being written.
* An hour is *closed* once the wall clock has passed its end plus :data:`HOUR_CLOSE_GRACE`; a
  file that still appears for a closed hour is late and makes that hour be loaded again.
* The retention job deletes an hour's files only once they are loaded, and first leaves
  :data:`RETIRED_MARKER` in the hour's directory: from then on the warehouse's raw rows are the
  only copy of that hour, and the loader keeps them instead of reloading from files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warehouse.settings import Settings, get_settings

STREAMS: tuple[str, ...] = ("events", "identities", "sessions")
PART_GLOB = "part-*.ndjson"
HOUR_CLOSE_GRACE = timedelta(minutes=2)
RETIRED_MARKER = ".retired"


def floor_hour(moment: datetime) -> datetime:
    """The UTC hour containing ``moment``, as a naive UTC datetime (the warehouse's convention)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Layout:
    data_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Layout:
        return cls((settings or get_settings()).data_dir)

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def serving_dir(self) -> Path:
        return self.data_dir / "serving"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.sqlite3"

    @property
    def demo_keys_path(self) -> Path:
        return self.data_dir / "demo-keys.json"

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
    now = now or datetime.now(UTC)
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    return now >= floor_hour(hour) + timedelta(hours=1) + HOUR_CLOSE_GRACE
