"""Settings for every component, read from ``LOOM_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ASYNC_SPILL_BYTES = 64 * 1024 * 1024
# A host id goes into landing file names: a safe file-name charset, never a leading dot or dash.
HOST_ID_CHARACTERS = "A-Za-z0-9._-"  # a regular expression's character class
HOST_ID = re.compile(rf"[A-Za-z0-9][{HOST_ID_CHARACTERS}]{{0,63}}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOOM_", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Root of every file Loom writes.")
    host: str = Field("127.0.0.1", description="Interface the ingest/read API binds to.")
    port: int = Field(8000, description="Port of the ingest/read API.")
    dagster_port: int = Field(3000, description="Port of the Dagster UI started by `make up`.")
    lake_catalog: str | None = Field(
        None,
        description=(
            "DuckLake catalog: `sqlite:<path>` or `postgres:<libpq string>` (e.g. "
            "`postgres:dbname=loom host=db.internal user=loom`). Default: a SQLite file under "
            "the data directory."
        ),
    )
    dagster_storage: str | None = Field(
        None,
        description=(
            "Where Dagster keeps runs, event logs, schedules and pool slots: `sqlite` (files in "
            "the data directory) or `postgres:<libpq string>` (schema `dagster` of that "
            "database, shared by every pipeline host). Default: the lake catalog's PostgreSQL "
            "database when the catalog is PostgreSQL, else `sqlite`."
        ),
    )
    lake_data_path: str | None = Field(
        None,
        description=(
            "Where the lake's Parquet files live: a directory every host reaches, or "
            "`s3://bucket/prefix/`. Default: lake/files/ under the data directory."
        ),
    )
    landing_path: Path | None = Field(
        None,
        description=(
            "Where the ingest API lands files and the pipeline reads them: a directory every "
            "ingest and pipeline host reaches (a POSIX filesystem with atomic rename and fsync, "
            "docs/deploy.md). Default: landing/ under the data directory."
        ),
    )
    host_id: str | None = Field(
        None,
        description=(
            "This host's name in the landing files it writes, so hosts sharing a landing path "
            "never collide: letters, digits, `.`, `_` and `-`, at most 64. Default: the "
            "hostname and a digest of the data directory's path."
        ),
    )
    lake_snapshot_retention_hours: int = Field(
        24,
        ge=1,
        description=(
            "Every lake snapshot younger than this is kept (older ones are expired and the files "
            "only they read deleted), and every publish: readers may be on any of them."
        ),
    )
    published_retention_days: int = Field(
        7,
        ge=1,
        description=(
            "Time travel (`loom sql --at`, `?as_of=`) reaches this far back: of older publishes, "
            "the newest of each hour is kept this long."
        ),
    )

    writer_lease_wait_seconds: float = Field(
        600,
        ge=0,
        description=(
            "How long a run waits for the lake's writer lease, held by a run of another pipeline "
            "host, before it fails naming the holder."
        ),
    )
    micro_batch_seconds: int = Field(
        60,
        ge=5,
        le=3600,
        description=(
            "How often the micro-batch sensor looks for new landing files and, when some landed, "
            "loads and builds them (release health within minutes, not at the end of the hour)."
        ),
    )

    pipeline_start: datetime = Field(
        datetime(2026, 1, 1),
        description="First hour of the hourly partitions (UTC).",
    )
    session_retention_days: int = Field(30, ge=1, description="Individual sessions kept this long.")
    landing_retention_days: int = Field(
        7, ge=1, description="Landing files kept this long, and only once their hour is loaded."
    )
    landing_temp_file_max_age_minutes: int = Field(
        60,
        ge=1,
        description=(
            "A landing dot-file (a write in flight) older than this was left by an ingest host "
            "that died, whichever host it was: the retention job deletes it. No write takes that "
            "long."
        ),
    )
    abnormal_session_timeout_hours: int = Field(
        24, ge=1, description="A session with no end after this long is abnormal."
    )

    max_request_bytes: int = Field(20 * 1024 * 1024, description="Largest accepted request body.")
    max_properties_bytes: int = Field(1024 * 1024, description="Largest properties object (1 MB).")
    future_timestamp_tolerance_hours: int = Field(
        23, description="Timestamps further ahead than this are replaced by the server time."
    )
    async_flush_interval_seconds: float = Field(
        0.2, gt=0, le=1.0, description="Async records are durable within this long (at most 1 s)."
    )
    async_spill_bytes: int = Field(
        DEFAULT_ASYNC_SPILL_BYTES,
        ge=0,
        description=(
            "Room reserved on the landing filesystem for acknowledged async records a full disk "
            "keeps from landing; async requests are acknowledged only while they fit."
        ),
    )
    header_timeout_seconds: float = Field(
        10, gt=0, description="A request's headers must arrive within this long (else 408)."
    )
    body_timeout_seconds: float = Field(
        30, gt=0, description="A request's body must arrive within this long of its headers."
    )

    public_url: str | None = Field(
        None,
        description=(
            "The API's address as its users reach it, for the dashboard links alerts carry. "
            "Default: http://<LOOM_HOST>:<LOOM_PORT>."
        ),
    )
    dagster_url: str | None = Field(
        None,
        description=(
            "The Dagster UI's address, for the run links pipeline alerts carry. Default: "
            "http://127.0.0.1:<LOOM_DAGSTER_PORT>."
        ),
    )
    alert_webhook: str | None = Field(
        None,
        description="Where pipeline alerts (a failed run, a failing asset check) are posted.",
    )
    alert_allow_loopback: bool = Field(
        False,
        description=(
            "Let alert rules post to loopback addresses (a receiver on this machine); the API's "
            "own address stays refused."
        ),
    )
    alert_webhook_timeout_seconds: float = Field(
        5, gt=0, le=60, description="How long one webhook delivery may take before it is retried."
    )
    alert_retry_seconds: float = Field(
        10,
        gt=0,
        description=(
            "A failed webhook delivery is retried after this long, then three times longer each "
            "time, up to 5 attempts."
        ),
    )
    metrics_enabled: bool = Field(
        True, description="Count requests and records for /metrics (off only to measure its cost)."
    )
    metrics_max_orgs: int = Field(
        100,
        ge=0,
        description=(
            "Orgs that get their own label in /metrics, in the order they are first seen; the "
            "others are counted as `other`."
        ),
    )

    @field_validator(
        "lake_catalog", "lake_data_path", "alert_webhook", "host_id", "dagster_storage"
    )
    @classmethod
    def _unset_when_empty(cls, value: str | None) -> str | None:
        # LOOM_LAKE_CATALOG="" means the default, as if it were not set at all.
        return value or None

    @field_validator("dagster_storage")
    @classmethod
    def _storage_kind(cls, value: str | None) -> str | None:
        if value is not None and value != "sqlite" and not value.startswith("postgres:"):
            raise ValueError("LOOM_DAGSTER_STORAGE must be sqlite or postgres:<libpq string>")
        return value

    @field_validator("public_url", "dagster_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def dagster_ui_url(self) -> str:
        return self.dagster_url or f"http://127.0.0.1:{self.dagster_port}"

    @field_validator("host_id")
    @classmethod
    def _file_name_safe(cls, value: str | None) -> str | None:
        if value is not None and not HOST_ID.fullmatch(value):
            raise ValueError(
                f"LOOM_HOST_ID must be 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                f"letter or digit (it goes into file names), got {value!r}"
            )
        return value

    @field_validator("landing_path", mode="before")
    @classmethod
    def _unset_when_blank(cls, value: object) -> object:
        return value or None

    @field_validator("data_dir", "landing_path")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # Relative paths would silently change meaning when dbt or Dagster change directory.
        return value.expanduser().resolve() if value is not None else None


@lru_cache
def get_settings() -> Settings:
    return Settings()


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Environment variables set for a while (dbt's profile reads ``LOOM_*`` through
    ``env_var``), and the settings read again from them; restored afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
