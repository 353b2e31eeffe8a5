"""Pure unit tests: partition keys, dbt window vars, the schedule's tick, `loom run`'s hours."""

from datetime import UTC, datetime

import click
import dagster as dg
import pytest

from dagster_project.cli import parse_hour, requested_hours
from dagster_project.partitions import dbt_window_vars, hour_key, hour_of_key, hourly_partitions
from dagster_project.schedules import hourly_pipeline_schedule


def test_window_vars_are_the_naive_utc_bounds_of_the_window() -> None:
    window = dg.TimeWindow(
        datetime(2026, 1, 18, 9, tzinfo=UTC), datetime(2026, 1, 18, 10, tzinfo=UTC)
    )

    assert dbt_window_vars(window) == {
        "window_start": "2026-01-18 09:00:00",
        "window_end": "2026-01-18 10:00:00",
    }


def test_window_vars_of_a_partition_range_span_all_its_hours() -> None:
    first = hourly_partitions.time_window_for_partition_key("2026-01-18-23:00")
    last = hourly_partitions.time_window_for_partition_key("2026-01-19-01:00")

    assert dbt_window_vars(dg.TimeWindow(first.start, last.end)) == {
        "window_start": "2026-01-18 23:00:00",
        "window_end": "2026-01-19 02:00:00",
    }


def test_hour_keys_round_trip_and_match_dagsters_partition_keys() -> None:
    key = hour_key(datetime(2026, 1, 18, 9, 41, 7))

    assert key == "2026-01-18-09:00"
    assert hour_of_key(key) == datetime(2026, 1, 18, 9)
    with dg.partition_loading_context(effective_dt=datetime(2026, 1, 18, 10, tzinfo=UTC)):
        assert hourly_partitions.has_partition_key(key)


def test_the_open_hour_is_a_partition_so_it_can_be_run() -> None:
    with dg.partition_loading_context(effective_dt=datetime(2026, 1, 18, 10, 20, tzinfo=UTC)):
        assert hourly_partitions.get_last_partition_key() == "2026-01-18-10:00"


def test_schedule_tick_at_10_05_requests_the_09_00_partition() -> None:
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 1, 18, 10, 5, tzinfo=UTC)
    )

    request = hourly_pipeline_schedule(context)

    assert hourly_pipeline_schedule.cron_schedule == "5 * * * *"
    assert hourly_pipeline_schedule.execution_timezone == "UTC"
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-01-18-09:00"
    assert hourly_pipeline_schedule.default_status == dg.DefaultScheduleStatus.RUNNING


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-18T09:00",
        "2026-01-18 09:00:00Z",
        "2026-01-18T09",
        "2026-01-18T09:59:59+00:00",
        "2026-01-18-09:00",
    ],
)
def test_loom_run_reads_iso_hours_and_partition_keys(text: str) -> None:
    assert parse_hour(text) == datetime(2026, 1, 18, 9)


def test_loom_run_range_is_inclusive_and_refuses_the_future() -> None:
    assert requested_hours(None, "2026-01-18T22:00", "2026-01-19T01:00") == [
        datetime(2026, 1, 18, 22),
        datetime(2026, 1, 18, 23),
        datetime(2026, 1, 19, 0),
        datetime(2026, 1, 19, 1),
    ]
    with pytest.raises(click.UsageError, match="has not started"):
        requested_hours("2999-01-01T00:00", None, None)
    with pytest.raises(click.UsageError, match="before"):
        requested_hours(None, "2026-01-18T10:00", "2026-01-18T09:00")
    with pytest.raises(click.BadParameter):
        parse_hour("yesterday")
