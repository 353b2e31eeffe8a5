"""The run tags that make one run cover a range of hourly partitions, as a single-run backfill
does. Dagster reads them (``RunRequest.partition_key_range``) but exports their names only from
an internal module, so this is the one place that imports them."""

from __future__ import annotations

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)


def partition_range_tags(first_key: str, last_key: str) -> dict[str, str]:
    """Tags of a run over the partitions ``first_key``..``last_key`` (inclusive)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first_key, ASSET_PARTITION_RANGE_END_TAG: last_key}
