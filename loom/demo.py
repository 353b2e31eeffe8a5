"""``loom demo`` / ``make demo``: a one-shot tour of the whole pipeline on a fresh data directory.

1. starts the ingest API (``loom serve``, a subprocess on a free loopback port) with demo keys;
2. posts one realistic day of traffic through the real ``posthog`` SDK (anonymous visitors, a
   share of whom identify later, a few aliasing a second device, person properties, a checkout
   funnel) and the session endpoints over HTTP (three releases whose adoption rises through the
   day, crashes and handled errors, and release 1.1.0 sampled at 0.1), every request durable
   before it is acknowledged;
3. stops the API and materializes every received hour through Dagster, with the same job and run
   storage as the UI (``loom run``);
4. prints release health and person counts from the marts next to what the demo actually sent.

The data directory (``--data-dir``, default ``data/demo``) is the demo's own: it is emptied first.
Any other non-empty directory is emptied only with ``--reset``. With ``--api URL`` the demo posts
to an API that is already running instead (``loom up`` does that on a data directory's first
start, so that the dashboard has releases to show) and builds them in LOOM_DATA_DIR as it is.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import httpx

DEFAULT_DATA_DIR = Path("data/demo")
SEED = 7
USERS = 240
IDENTIFY_SHARE = 0.6
ALIAS_SHARE = 0.15  # of identified users: a second device aliased to the user
SESSIONS_PER_USER = (2, 9)
RELEASES = ("1.0.0", "1.1.0", "1.2.0")
CRASH_RATE = {"1.0.0": 0.04, "1.1.0": 0.08, "1.2.0": 0.01}
SAMPLED_RELEASE, SAMPLE_RATE = "1.1.0", 0.1
PLATFORMS = ("javascript", "node", "rust", "python")


@dataclass
class User:
    anon_id: str
    user_id: str | None
    identify_at: datetime | None
    device_id: str | None


@dataclass
class SentTruth:
    """What the demo sent, to print beside what the marts say."""

    users: int = 0
    identified: int = 0
    events: int = 0
    sessions: Counter = field(default_factory=Counter)  # release -> sessions that happened
    crashed: Counter = field(default_factory=Counter)
    stored: Counter = field(default_factory=Counter)  # release -> sessions sent (after sampling)
    stored_crashed: Counter = field(default_factory=Counter)


def release_for(progress: float, rng: random.Random) -> str:
    """1.0.0 fades out, 1.1.0 peaks mid-day, 1.2.0 rises to most sessions by the evening."""
    weights = ((1 - progress) ** 2, 2 * progress * (1 - progress), progress**2)
    return rng.choices(RELEASES, weights=weights)[0]


def actor(user: User, moment: datetime) -> str:
    identified = user.identify_at is not None and moment >= user.identify_at
    return user.user_id if identified and user.user_id else user.anon_id


def build_users(rng: random.Random, start: datetime) -> list[User]:
    users = []
    for n in range(USERS):
        identifies = rng.random() < IDENTIFY_SHARE
        users.append(
            User(
                anon_id=f"anon-{rng.getrandbits(48):012x}",
                user_id=f"user-{n:04d}" if identifies else None,
                identify_at=start + timedelta(hours=rng.uniform(1, 22)) if identifies else None,
                device_id=f"device-{n:04d}" if identifies and rng.random() < ALIAS_SHARE else None,
            )
        )
    return users


def post_traffic(base_url: str, write_key: str, start: datetime, truth: SentTruth) -> None:
    from posthog import Posthog

    rng = random.Random(SEED)
    users = build_users(rng, start)
    errors: list[Exception] = []
    posthog = Posthog(
        write_key,
        host=base_url,
        gzip=True,
        flush_at=200,
        flush_interval=0.5,
        on_error=lambda error, _batch: errors.append(error),
    )
    truth.users = len(users)
    truth.identified = sum(1 for user in users if user.user_id)
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {write_key}"}, timeout=30
    ) as http:
        for user in users:
            if user.user_id and user.identify_at:
                # posthog-python 7 has no identify(): the $identify event posthog-js sends.
                posthog.capture(
                    "$identify",
                    distinct_id=user.user_id,
                    properties={"$anon_distinct_id": user.anon_id},
                    timestamp=user.identify_at,
                )
                posthog.set(
                    distinct_id=user.user_id,
                    properties={"plan": rng.choice(("free", "pro", "team"))},
                    timestamp=user.identify_at,
                )
                if user.device_id:
                    posthog.alias(
                        previous_id=user.device_id,
                        distinct_id=user.user_id,
                        timestamp=user.identify_at + timedelta(minutes=5),
                    )
                # identity operations are events too ($identify, $set, $create_alias)
                truth.events += 3 if user.device_id else 2
            for _ in range(rng.randint(*SESSIONS_PER_USER)):
                moment = start + timedelta(seconds=rng.uniform(0, 23.5 * 3600))
                post_session(
                    http, posthog, user, moment, (moment - start) / timedelta(days=1), rng, truth
                )
    posthog.flush()
    posthog.shutdown()
    if errors:
        raise click.ClickException(f"the posthog SDK reported {len(errors)} errors: {errors[0]}")


def post_session(
    http: httpx.Client,
    posthog,
    user: User,
    started: datetime,
    progress: float,
    rng: random.Random,
    truth: SentTruth,
) -> None:
    release = release_for(progress, rng)
    crashed = rng.random() < CRASH_RATE[release]
    errored = not crashed and rng.random() < 0.05
    duration = timedelta(seconds=rng.uniform(20, 1800))
    distinct_id = actor(user, started)
    if user.device_id and rng.random() < 0.3 and distinct_id == user.user_id:
        distinct_id = user.device_id  # the aliased second device
    # The session's events happen whether or not the SDK keeps the session for release health.
    for step in range(rng.randint(2, 8)):
        moment = started + duration * (step / 8)
        name, properties = page_or_checkout(rng, step)
        posthog.capture(name, distinct_id=distinct_id, properties=properties, timestamp=moment)
        truth.events += 1
    truth.sessions[release] += 1
    truth.crashed[release] += crashed
    rate = SAMPLE_RATE if release == SAMPLED_RELEASE else 1.0
    # Client-side sampling as release health defines it: crashed sessions are always sent.
    if not crashed and rng.random() >= rate:
        return
    truth.stored[release] += 1
    truth.stored_crashed[release] += crashed
    session_id = f"ses-{rng.getrandbits(64):016x}"
    start_body = {
        "session_id": session_id,
        "distinct_id": distinct_id,
        "release": release,
        "environment": "production",
        "platform": rng.choice(PLATFORMS),
        "started_at": started.isoformat() + "Z",
        "sample_rate": rate,
    }
    status = "crashed" if crashed else "errored" if errored else "exited"
    end_body = {
        "session_id": session_id,
        "status": status,
        "error_count": 1 if errored else 0,
        "crash_count": 1 if crashed else 0,
        "ended_at": (started + duration).isoformat() + "Z",
        "duration_ms": int(duration.total_seconds() * 1000),
    }
    for path, body in (("/api/sessions/start", start_body), ("/api/sessions/end", end_body)):
        response = http.post(path, json=body)
        if response.status_code >= 300:
            raise click.ClickException(f"POST {path}: {response.status_code} {response.text}")


def page_or_checkout(rng: random.Random, step: int) -> tuple[str, dict]:
    if step >= 3 and rng.random() < 0.15:
        return "purchase", {
            "currency": rng.choice(("USD", "EUR", "GBP")),
            "amount": rng.randint(5, 120),
        }
    if rng.random() < 0.1:
        return "$feature_flag_called", {
            "$feature_flag": "new-checkout",
            "$feature_flag_response": rng.choice(("control", "test")),
        }
    return "$pageview", {"$current_url": rng.choice(("/", "/pricing", "/docs", "/blog"))}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_api(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "LOOM_DATA_DIR": str(data_dir)}
    argv = [sys.executable, "-m", "loom", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
    except click.ClickException:
        process.terminate()
        raise
    return process


def wait_healthy(base_url: str, process: subprocess.Popen | None = None) -> None:
    """Until the API at ``base_url`` answers ``/healthz``; fails if ``process`` (the API's own,
    when the demo started it) exits first, or after 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise click.ClickException(f"the API exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"the API at {base_url} did not become healthy within 60 s")


def stop_api(process: subprocess.Popen) -> None:
    """SIGTERM: the API flushes every buffered record to disk before it exits."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def prepare_data_dir(data_dir: Path, reset: bool) -> Path:
    data_dir = data_dir.expanduser().resolve()
    owned = data_dir == DEFAULT_DATA_DIR.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (owned or reset):
            raise click.UsageError(
                f"{data_dir} is not empty; pass --reset to empty it for the demo"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


def report(layout, truth: SentTruth, day_start: datetime) -> None:
    from warehouse.duck import connect_reader
    from warehouse.published import published_snapshot_id

    con = connect_reader(layout, snapshot=published_snapshot_id(layout))
    try:
        adoption = {
            label: dict(
                con.execute(
                    "select release, adoption_rate from analytics.release_health_between(?, ?) "
                    "where environment = 'production'",
                    [start, start + timedelta(hours=6)],
                ).fetchall()
            )
            for label, start in (("early", day_start), ("late", day_start + timedelta(hours=18)))
        }
        health = con.execute(
            """
            select release, total_sessions, crashed_sessions, crash_free_session_rate,
                   total_users, crash_free_user_rate, adoption_rate, adoption_stage
            from analytics.release_health where environment = 'production' order by release
            """
        ).fetchall()
        persons, identified = con.execute(
            "select count(*), count(*) filter (where is_identified) from analytics.dim_persons"
        ).fetchone()
        (events,) = con.execute("select count(*) from analytics.fct_events").fetchone()
    finally:
        con.close()
    click.echo("\nRelease health (production, whole day; sessions are sampling-adjusted)")
    click.echo(
        f"{'release':<9}{'sessions':>9}{'happened':>10}{'stored':>8}{'crashed':>9}"
        f"{'crash-free %':>14}{'users':>7}{'user crash-free %':>19}{'adoption %':>12}"
        f"{'first 6 h → last 6 h':>23}  stage"
    )
    for release, total, crashed, cf_rate, users, cf_users, rate, stage in health:
        trend = f"{adoption['early'].get(release, 0):.1f} → {adoption['late'].get(release, 0):.1f}"
        click.echo(
            f"{release:<9}{total:>9,}{truth.sessions[release]:>10,}{truth.stored[release]:>8,}"
            f"{crashed:>9,}{cf_rate:>14.2f}{users:>7,}{cf_users:>19.2f}{rate:>12.2f}{trend:>23}"
            f"  {stage}"
        )
    expected_adjusted = {
        release: truth.stored_crashed[release]
        + (truth.stored[release] - truth.stored_crashed[release])
        / (SAMPLE_RATE if release == SAMPLED_RELEASE else 1.0)
        for release in RELEASES
    }
    click.echo(
        "expected adjusted sessions from what was sent: "
        + ", ".join(f"{release} {expected_adjusted[release]:,.0f}" for release in RELEASES)
        + f"  ({SAMPLED_RELEASE} sampled at {SAMPLE_RATE}; crashed sessions always kept)"
    )
    click.echo(
        f"\nPersons: {persons:,} (sent: {truth.users:,} people), identified: {identified:,} "
        f"(sent: {truth.identified:,}); events: {events:,} (sent: {truth.events:,})"
    )


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="The demo's data directory; emptied first.",
)
@click.option("--reset", is_flag=True, help="Allow emptying a --data-dir other than the default.")
@click.option(
    "--api",
    "api_url",
    metavar="URL",
    help="Post to this running ingest API instead of starting one; the data directory is then "
    "LOOM_DATA_DIR's, as it is (what `loom up` does on a first start).",
)
def demo(data_dir: Path, reset: bool, api_url: str | None) -> None:
    """Post a day of traffic through the API, materialize it through Dagster, print the marts."""
    started = time.perf_counter()
    if api_url is None:
        data_dir = prepare_data_dir(data_dir, reset)
        os.environ["LOOM_DATA_DIR"] = str(data_dir)
    from warehouse.settings import get_settings

    get_settings.cache_clear()
    from warehouse.bootstrap import bootstrap_demo
    from warehouse.layout import Layout, floor_hour

    layout = Layout.from_settings()
    keys = bootstrap_demo(layout)
    own_api = None
    if api_url is None:
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        click.echo(f"data dir {data_dir}; ingest API on {api_url}")
        own_api = start_api(data_dir, port)
    else:
        click.echo(f"demo data: posting a day of traffic to {api_url} ({layout.data_dir})")
        wait_healthy(api_url)
    truth = SentTruth()
    day_start = floor_hour(datetime.now(UTC) - timedelta(days=1))
    try:
        post_traffic(api_url, keys["write_key"], day_start, truth)
    finally:
        if own_api is not None:
            stop_api(own_api)
    click.echo(
        f"posted {truth.events:,} events from {truth.users} people and "
        f"{sum(truth.stored.values()):,} sessions in {time.perf_counter() - started:.0f}s"
    )

    from dagster_project.instance import warehouse_instance
    from dagster_project.runner import landed_hours, materialize_hours

    hours = landed_hours(layout)
    click.echo(f"materializing {len(hours)} received hour(s) through Dagster")
    with warehouse_instance(layout) as instance:
        runs = materialize_hours(hours, instance, on_hour=lambda r: click.echo(r.progress_line()))
    if not all(run.success for run in runs) or len(runs) < len(hours):
        raise click.ClickException("a pipeline run failed; see the line above")
    report(layout, truth, day_start)
    if own_api is None:
        click.echo(
            f"\ndemo data ready in {time.perf_counter() - started:.0f}s: the dashboard at "
            f"{api_url}/ shows it (rw key: {keys['rw_key']})"
        )
    else:
        click.echo(
            f"\ndone in {time.perf_counter() - started:.0f}s. Browse it: "
            f"LOOM_DATA_DIR={data_dir} loom up  (Dagster UI and the API on this data)"
        )
