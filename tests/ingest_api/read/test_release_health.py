"""Releases, release detail, health trend and sessions over real HTTP. Every number is
worked out by hand from the dataset (see ``dataset.py``) with the seed's formulas."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
import httpx
import pytest

from bench.generate import session_end_record, session_start_record, write_records
from dagster_project.runner import materialize_hours
from ingest_api.read.schemas import HealthTrend, ReleaseDetail, ReleaseList, SessionDetail
from tests.dagster_project.utils.pipeline import loom_data_dir
from tests.ingest_api.read.utils.dataset import sessions_a
from tests.ingest_api.read.utils.newcomer_dataset import TREND_ENVIRONMENT, TREND_RELEASE
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants
from warehouse.dbt import person_uuid
from warehouse.layout import Layout

pytestmark = pytest.mark.slow


def _release(release, environment, cfsr, cfur, adoption, stage, sessions, crashed, users) -> dict:
    return {
        "release": release,
        "environment": environment,
        "crash_free_session_rate": cfsr,
        "crash_free_user_rate": cfur,
        "adoption_rate": adoption,
        "adoption_stage": stage,
        "total_sessions": sessions,
        "crashed_sessions": crashed,
        "total_users": users,
    }


def _extra(current, peak, error_rate, avg_duration_ms=1_800_000) -> dict:
    """The fields beyond the seed's: current and peak adoption, error rate, average duration
    (every session of the dataset lasts 30 minutes)."""
    return {
        "current_adoption_rate": current,
        "peak_adoption_rate": peak,
        "error_rate": error_rate,
        "avg_duration_ms": avg_duration_ms,
    }


# 1.2.3 production on 2026-11-20 is the spec's example: 50 + 950 / 0.1 = 9,550 sessions, 99.48%
# crash-free. Users: 50 crashed (count 1 each) + 50 others seen at rate 0.1 (count 10 each) =
# 550, (550 - 50) / 550 = 90.91%. 1.2.2 had 100% of production on 2026-10-01, so at 4.5% it is
# "replaced" rather than "new"; 5 of its 450 sessions erred: 1.11%.
NOV_20 = [
    _release("1.2.3", "production", 99.48, 90.91, 95.5, "adopted", 9550, 50, 550)
    | _extra(95.5, None, 0.0),
    _release("1.2.2", "production", 100.0, 100.0, 4.5, "replaced", 450, 0, 45)
    | _extra(4.5, 100.0, 1.11),
    _release("1.2.3", "staging", 100.0, 100.0, 100.0, "adopted", 10, 0, 1)
    | _extra(100.0, None, 0.0),
]
# 2026-10-01: 200 sessions of 1.2.2, 10 crashed; 20 users, 10 of whom crashed.
OCT_1 = [
    _release("1.2.2", "production", 95.0, 50.0, 100.0, "adopted", 200, 10, 20)
    | _extra(100.0, None, 0.0)
]
# The whole history: 1.2.2 has 650 sessions (10 crashed, 5 errored: 0.77%) and 65 users of the
# 10,200 production sessions (6.37%); 1.2.3 93.63%. The stage follows the last 24 hours of
# production's data (its latest session is at 11:56 on 2026-11-20), 2026-11-20 alone: 1.2.2 has
# 450 of those 10,000 sessions, 4.5%, after 100% on 2026-10-01: replaced, not growing.
WHOLE_HISTORY = [
    _release("1.2.3", "production", 99.48, 90.91, 93.63, "adopted", 9550, 50, 550)
    | _extra(95.5, None, 0.0),
    _release("1.2.2", "production", 98.46, 84.62, 6.37, "replaced", 650, 10, 65)
    | _extra(4.5, 100.0, 0.77),
    _release("1.2.3", "staging", 100.0, 100.0, 100.0, "adopted", 10, 0, 1)
    | _extra(100.0, None, 0.0),
]


def test_releases_over_the_whole_history(
    client_a: httpx.Client, built: Built, published: dict
) -> None:
    response = client_a.get(f"/api/projects/{built.tenants.project_a}/releases")
    assert response.status_code == 200
    assert response.json() == {"releases": WHOLE_HISTORY, "snapshot": published}
    ReleaseList.model_validate(response.json())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"start_date": "2026-11-20", "end_date": "2026-11-21"}, NOV_20),
        ({"start_date": "2026-10-01T00:00:00Z", "end_date": "2026-10-02T00:00:00Z"}, OCT_1),
        (
            {"start_date": "2026-11-20", "end_date": "2026-11-21", "environment": "staging"},
            NOV_20[2:],
        ),
        ({"start_date": "2025-01-01", "end_date": "2025-02-01"}, []),
        # one open side is taken from the project's whole history (Oct 1 to Nov 20)
        ({"start_date": "2026-11-20"}, NOV_20),
        ({"end_date": "2026-10-02"}, OCT_1),
    ],
)
def test_releases_over_a_window(
    client_a: httpx.Client, built: Built, published: dict, params: dict, expected: list
) -> None:
    response = client_a.get(f"/api/projects/{built.tenants.project_a}/releases", params=params)
    assert response.json() == {"releases": expected, "snapshot": published}


def test_release_detail_with_crashed_users_lifetime_and_trend(
    client_a: httpx.Client, built: Built, published: dict
) -> None:
    # Hour 11:00 of 2026-11-20: 485 sessions of 1.2.3 at rate 0.1, none crashed → 4,850, 100%;
    # each of the 100 users counts 10 → 1,000. The hour before: 50 crashed + 465 x 10 = 4,700,
    # 98.936% crash-free, so the trend is +1.06 points. Production that hour also had 210
    # sessions of 1.2.2: adoption 4,850 / 5,060 = 95.85%.
    response = client_a.get(
        f"/api/projects/{built.tenants.project_a}/releases/1.2.3",
        params={"start_date": "2026-11-20T11:00:00Z", "end_date": "2026-11-20T12:00:00Z"},
    )
    assert response.json() == {
        **_release("1.2.3", "production", 100.0, 100.0, 95.85, "adopted", 4850, 0, 1000),
        # its peak before the window: 10:00, 4,700 of 4,940 production sessions
        **_extra(95.85, 95.14, 0.0),
        "crashed_users": 0,
        "first_seen": "2026-11-20T10:00:00Z",
        "last_seen": "2026-11-20T11:56:33Z",
        "crash_free_rate_trend": 1.06,
        "snapshot": published,
    }
    ReleaseDetail.model_validate(response.json())


def test_release_detail_whole_history_and_environment(
    client_a: httpx.Client, built: Built, published: dict
) -> None:
    base = f"/api/projects/{built.tenants.project_a}/releases"
    production = client_a.get(f"{base}/1.2.2").json()
    staging = client_a.get(f"{base}/1.2.3", params={"environment": "staging"}).json()

    assert production == {
        **WHOLE_HISTORY[1],
        "crashed_users": 10,
        "first_seen": "2026-10-01T10:00:00Z",
        "last_seen": "2026-11-20T11:52:18Z",
        # production's last 24 h of data (2026-11-19 12:00 to 11-20 12:00) against the 24 h
        # before them, which had no session
        "crash_free_rate_trend": None,
        "snapshot": published,
    }
    assert (staging["environment"], staging["total_sessions"]) == ("staging", 10)


def test_release_detail_without_dates_has_a_crash_free_trend(
    experiment_api: RunningApi, experiment_built: Built
) -> None:
    """Over the default window, the trend compares the environment's last 24 h of data with the
    24 h before (newcomer_dataset.py): 2.0.0 in canary was 90 % crash-free, now 100 %."""
    tenants = experiment_built.tenants
    headers = Tenants.headers(tenants.key_a)
    with httpx.Client(base_url=experiment_api.base_url, headers=headers, timeout=30) as client:
        detail = client.get(
            f"/api/projects/{tenants.project_a}/releases/{TREND_RELEASE}",
            params={"environment": TREND_ENVIRONMENT},
        ).json()

    assert {
        key: detail[key]
        for key in ("total_sessions", "crashed_sessions", "crash_free_session_rate")
    } == {"total_sessions": 20, "crashed_sessions": 1, "crash_free_session_rate": 95.0}
    assert detail["crash_free_rate_trend"] == 10.0


def test_a_windowed_detail_keeps_the_first_session_ever_as_first_seen(
    client_a: httpx.Client, built: Built
) -> None:
    """Documented: first_seen is the release's first session ever, last_seen its last up to the
    window's end; the counts are the window's."""
    response = client_a.get(
        f"/api/projects/{built.tenants.project_a}/releases/1.2.2",
        params={"start_date": "2026-11-20", "end_date": "2026-11-21"},
    )

    detail = response.json()
    assert (detail["total_sessions"], detail["first_seen"], detail["last_seen"]) == (
        450,
        "2026-10-01T10:00:00Z",
        "2026-11-20T11:52:18Z",
    )


def test_unknown_release_is_404(client_a: httpx.Client, built: Built) -> None:
    response = client_a.get(f"/api/projects/{built.tenants.project_a}/releases/9.9.9")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # 2026-11-20: 9,550 + 450 + 10 = 10,010 sessions, 50 crashed → 99.50%; users: 550 as
        # above + 45 legacy + qa = 596, 50 crashed → 91.61%.
        (
            {"interval": "day"},
            [
                ("2026-10-01T00:00:00Z", 95.0, 50.0, 200),
                ("2026-11-20T00:00:00Z", 99.5, 91.61, 10010),
            ],
        ),
        (
            {"interval": "week"},
            [
                ("2026-09-28T00:00:00Z", 95.0, 50.0, 200),
                ("2026-11-16T00:00:00Z", 99.5, 91.61, 10010),
            ],
        ),
        # 10:00: 4,700 + 240 + 10 = 4,950 sessions, 50 crashed; 11:00: 4,850 + 210 = 5,060.
        (
            {"interval": "hour", "start_date": "2026-11-20", "end_date": "2026-11-21"},
            [
                ("2026-11-20T10:00:00Z", 98.99, 91.61, 4950),
                ("2026-11-20T11:00:00Z", 100.0, 100.0, 5060),
            ],
        ),
        ({"interval": "day", "start_date": "2026-10-02", "end_date": "2026-11-20"}, []),
    ],
)
def test_health_trend(
    client_a: httpx.Client, built: Built, published: dict, params: dict, expected: list
) -> None:
    response = client_a.get(f"/api/projects/{built.tenants.project_a}/health/trend", params=params)
    fields = ("timestamp", "crash_free_session_rate", "crash_free_user_rate", "total_sessions")
    assert response.json() == {
        "trend": [dict(zip(fields, point, strict=True)) for point in expected],
        "snapshot": published,
    }
    HealthTrend.model_validate(response.json())


def test_health_trend_rejects_an_unknown_interval(client_a: httpx.Client, built: Built) -> None:
    response = client_a.get(
        f"/api/projects/{built.tenants.project_a}/health/trend", params={"interval": "month"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "query.interval"


def _session_ids(response: httpx.Response) -> list[str]:
    return [session["id"] for session in response.json()["sessions"]]


def test_sessions_newest_first_default_limit_100(client_a: httpx.Client, built: Built) -> None:
    everything = sessions_a(built.tenants.org_a, built.tenants.project_a)
    newest = sorted(everything, key=lambda s: (s.started_at, s.session_id), reverse=True)

    response = client_a.get(f"/api/projects/{built.tenants.project_a}/sessions")

    assert _session_ids(response) == [s.session_id for s in newest[:100]]


@pytest.mark.parametrize(
    ("params", "count", "first"),
    [
        ({"status": "crashed", "limit": 1000}, 60, "s123-0049"),  # 50 recent + 10 old
        ({"status": "errored", "release": "1.2.2"}, 5, "s122-0004"),
        ({"release": "1.2.3", "limit": 1000}, 1000, "s123-0999"),  # 1,010, capped by limit
        ({"release": "1.2.3", "status": "errored"}, 0, None),
        ({"environment": "staging", "limit": 1000}, 10, "qa-09"),  # what the dashboard shows
        ({"environment": "production", "release": "1.2.3", "limit": 1000}, 1000, "s123-0999"),
        ({"environment": "development"}, 0, None),
    ],
)
def test_sessions_filters(
    client_a: httpx.Client, built: Built, params: dict, count: int, first: str | None
) -> None:
    ids = _session_ids(
        client_a.get(f"/api/projects/{built.tenants.project_a}/sessions", params=params)
    )
    assert (len(ids), ids[0] if ids else None) == (count, first)


def test_session_detail_in_the_seed_shape(
    client_a: httpx.Client, built: Built, published: dict
) -> None:
    response = client_a.get(f"/api/projects/{built.tenants.project_a}/sessions/s123-0000")

    assert response.json() == {
        "session": {
            "id": "s123-0000",
            "person_id": person_uuid(built.tenants.org_a, "user_0"),
            "status": "crashed",
            "release": "1.2.3",
            "environment": "production",
            "error_count": 0,
            "crash_count": 1,
            "duration_ms": 1_800_000,
            "platform": "javascript",
            "started_at": "2026-11-20T10:00:00Z",
            "ended_at": "2026-11-20T10:30:00Z",
        },
        "snapshot": published,
    }
    SessionDetail.model_validate(response.json())
    missing = client_a.get(f"/api/projects/{built.tenants.project_a}/sessions/nope")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/projects/{p}/releases", {"start_date": "1900-01-01", "end_date": "2026-01-01"}),
        ("/api/projects/{p}/health/trend", {"end_date": "9999-12-31"}),
        ("/api/projects/{p}/sessions", {"status": "sleeping"}),
        ("/api/projects/{p}/sessions", {"limit": 1001}),
        ("/api/projects/99999999999999999999999/releases", {}),
    ],
)
def test_bad_parameters_are_400_never_500(
    client_a: httpx.Client, built: Built, path: str, params: dict
) -> None:
    response = client_a.get(path.format(p=built.tenants.project_a), params=params)
    assert response.status_code == 400, response.text


BACKFILL_RECEIVED = datetime(2026, 11, 20, 12, 5)


def _backfill(org_id: str, project_id: int) -> list[dict]:
    """21 sessions of 2026-11-18, each ended 10 minutes after its start, one with a handled
    error, all sent two days later (a backfill): start and end arrive long after the timeout."""
    records = []
    for n in range(21):
        started = datetime(2026, 11, 18, 10, n)
        session_id = f"backfill-{n:02d}"
        records += [
            session_start_record(
                org_id=org_id,
                project_id=project_id,
                session_id=session_id,
                distinct_id=f"late_{n}",
                release="2.0.0",
                started_at=started,
                received_at=BACKFILL_RECEIVED,
                environment="backfill",
            ),
            session_end_record(
                org_id=org_id,
                project_id=project_id,
                session_id=session_id,
                ended_at=started + timedelta(minutes=10),
                status="errored" if n == 0 else "exited",
                error_count=int(n == 0),
                duration_ms=600_000,
                received_at=BACKFILL_RECEIVED,
            ),
        ]
    return records


def test_a_late_end_signal_counts(
    built: Built, copy_of_built: Layout, api_on: Callable[[Layout], RunningApi]
) -> None:
    tenants = built.tenants
    write_records(copy_of_built, "sessions", _backfill(tenants.org_a, tenants.project_a))
    with loom_data_dir(copy_of_built.data_dir):
        [run] = materialize_hours([BACKFILL_RECEIVED], dg.DagsterInstance.ephemeral())
    assert run.success, run.progress_line()
    served = api_on(copy_of_built)
    headers = Tenants.headers(tenants.key_a)
    with httpx.Client(base_url=served.base_url, headers=headers, timeout=30) as client:
        base = f"/api/projects/{tenants.project_a}"
        health = client.get(f"{base}/releases/2.0.0", params={"environment": "backfill"}).json()
        errored = client.get(f"{base}/sessions/backfill-00").json()["session"]
        statuses = {
            status: len(
                client.get(
                    f"{base}/sessions", params={"release": "2.0.0", "status": status}
                ).json()["sessions"]
            )
            for status in ("errored", "exited", "abnormal")
        }

    # Each end arrived two days after its start and counts: 1 errored of 21 is 4.76 % (read as
    # 0.0 when all 21 were taken for abnormal), 10 minutes each.
    assert statuses == {"errored": 1, "exited": 20, "abnormal": 0}
    assert (errored["status"], errored["duration_ms"]) == ("errored", 600_000)
    assert {
        key: health[key]
        for key in ("total_sessions", "error_rate", "avg_duration_ms", "adoption_stage")
    } == {"total_sessions": 21, "error_rate": 4.76, "avg_duration_ms": 600_000,
          "adoption_stage": "adopted"}  # fmt: skip
