"""``loom run``: materialize received hours through Dagster, as the schedule would."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import click

from warehouse.layout import Layout, floor_hour, is_hour_closed
from warehouse.settings import get_settings


def parse_hour(value: str) -> datetime:
    """An ISO 8601 moment (``2026-11-23T10``, ``2026-11-23 10:00``, ``…Z``) or a partition key
    (``2026-11-23-10:00``), as the naive UTC hour containing it."""
    text = value.strip()
    if len(text) == 16 and text[10] == "-":  # Dagster's partition key format
        text = f"{text[:10]}T{text[11:]}"
    try:
        return floor_hour(datetime.fromisoformat(text))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 hour such as 2026-11-23T10:00", param_hint="hour"
        ) from None


def requested_hours(hour: str | None, start: str | None, end: str | None) -> list[datetime]:
    if hour and (start or end):
        raise click.UsageError("use either --hour or --from/--to")
    if hour:
        first = last = parse_hour(hour)
    elif start and end:
        first, last = parse_hour(start), parse_hour(end)
    else:
        raise click.UsageError("give --hour H, or --from H --to H")
    if last < first:
        raise click.UsageError("--to is before --from")
    pipeline_start = floor_hour(get_settings().pipeline_start)
    current = floor_hour(datetime.now(UTC))
    if first < pipeline_start:
        raise click.UsageError(
            f"{first:%Y-%m-%d %H:00} is before LOOM_PIPELINE_START ({pipeline_start})"
        )
    if last > current:
        raise click.UsageError(
            f"{last:%Y-%m-%d %H:00} has not started yet (now: {current:%H:00} UTC)"
        )
    count = int((last - first) / timedelta(hours=1)) + 1
    return [first + timedelta(hours=i) for i in range(count)]


def open_hours(now: datetime | None = None) -> list[datetime]:
    """The hours a micro-batch looks at: the current one, and the previous one while it is
    within its grace."""
    now = now or datetime.now(UTC)
    current = floor_hour(now)
    previous = current - timedelta(hours=1)
    return [previous, current] if not is_hour_closed(previous, now) else [current]


@click.command()
@click.option("--hour", help="One received hour (UTC), e.g. 2026-11-23T10:00.")
@click.option("--from", "start", help="First hour of a range (UTC).")
@click.option("--to", "end", help="Last hour of a range, inclusive (UTC).")
@click.option(
    "--micro-batch",
    is_flag=True,
    help="Load only the files not loaded yet (of the open hours, or --hour) and build them.",
)
def run(hour: str | None, start: str | None, end: str | None, micro_batch: bool) -> None:
    """Materialize received hours through Dagster: one hour, or a range as one backfill run;
    with --micro-batch, what landed since the last batch, as the micro-batch sensor does.

    The run uses the same job, assets and run storage as the Dagster UI (DAGSTER_HOME under the
    data directory), so it shows up there. The current, still-open hour may be run too; the
    schedule rebuilds it once it has closed. Runs take turns: this one waits for any other run
    writing the warehouse to finish, and says so.
    """
    if micro_batch and not (hour or start or end):
        hours = open_hours()
    else:
        hours = requested_hours(hour, start, end)
    # Imported here: loading the definitions parses the dbt manifest, which `--help` should not.
    from dagster_project.instance import DagsterStorageUnreachable, warehouse_instance
    from dagster_project.jobs import HOURLY_JOB
    from dagster_project.partitions import MICRO_BATCH_JOB
    from dagster_project.run_owners import release_runs_of_dead_owners, writer_turn
    from dagster_project.runner import materialize_range
    from warehouse.writer_lease import WriterLeaseError

    # A run allocates by the million: keep what is loaded (Dagster, dbt) out of the collector's
    # passes, and collect the youngest generation less often.
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)

    layout = Layout.from_settings()
    try:
        instance = warehouse_instance(layout)
    except DagsterStorageUnreachable as problem:
        click.echo(f"{hours[0]:%Y-%m-%d %H:00}  FAILED  {problem}")
        raise SystemExit(1) from None
    with instance:
        for released in release_runs_of_dead_owners(instance):
            click.echo(
                f"run {released.run_id} was left unfinished by a process that is gone "
                f"(pid {released.pid}): marked failed, its warehouse slot freed"
            )
        try:
            with writer_turn(instance, layout, click.echo):
                job = MICRO_BATCH_JOB if micro_batch else HOURLY_JOB
                result = materialize_range(hours[0], hours[-1], instance, job)
        except WriterLeaseError as problem:
            click.echo(f"{hours[0]:%Y-%m-%d %H:00}  FAILED  {problem}")
            raise SystemExit(1) from None
    if len(hours) > 1:
        for line in result.hour_lines():
            click.echo(line)
    click.echo(("micro-batch of " if micro_batch else "") + result.progress_line())
    if not result.success:
        raise click.ClickException(f"the run failed (run {result.run_id})")
    click.echo(f"{len(hours)} hour(s) materialized; runs are in {layout.dagster_home}")
