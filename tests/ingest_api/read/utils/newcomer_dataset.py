"""What a new user sent (issue 30), posted through the ingest API over HTTP on top of the
experiment (``experiment_dataset.py``), every answer worked out here.

Org A, project A:

* **Ids as users write them**: for each kind of path parameter, values with ``/``, a literal
  ``%2F`` and ``+``, spaces, unicode, and the longest value ingest accepts (200 characters).
  Each distinct id sends a ``$pageview`` at 2026-11-23 09:00 and is exposed (variant ``test``)
  to the flag of the same position; each session id is one exited session of the release of the
  same position, in ``staging``, started at 2026-11-23 12:00.
* **A busier staging**: the session of ``feature/x`` was sampled at 1 in 20,000, so staging has
  20,000 + 4 + the read dataset's 10 = 20,014 sessions against production's 10,200: the
  dashboard must still open on production.
* **A trend without dates**: release ``2.0.0`` in environment ``canary``: ten sessions started
  at 2026-11-22 10:00 (one crashed, 90 % crash-free) and ten at 2026-11-23 10:00 (none crashed,
  100 %). Canary's last 24 h of data are [11-22 11:00, 11-23 11:00), so the detail's
  ``crash_free_rate_trend`` without dates is 100 - 90 = +10.0 points.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

# ingest's limit for ids, releases and environments (ingest_api/ingest/schemas/fields.py)
LONGEST = 200
DISTINCT_IDS = ("team/alice", "50%2F+off", "first last", "zoë/東京 ✓", "d/" * (LONGEST // 2))
SESSION_IDS = ("ses/with/slash", "ses%25+plus", "ses with space", "séance/東京", "s/" * 100)
RELEASES = ("feature/x", "app@1.2.3+build/5", "release 2.0 %", "版本/1.0", "r/" * 100)
FLAG_KEYS = ("team/new-checkout", "50%2F+off", "flag with space", "旗/✓", "f/" * 100)
BUSY_RELEASE, BUSY_RATE = "feature/x", 1 / 20_000
STAGING_SESSIONS = 20_014
PRODUCTION_SESSIONS = 10_200

TREND_RELEASE, TREND_ENVIRONMENT = "2.0.0", "canary"
SEEN_AT = datetime(2026, 11, 23, 9)
STAGING_AT = datetime(2026, 11, 23, 12)
CANARY_DAYS = (datetime(2026, 11, 22, 10), datetime(2026, 11, 23, 10))


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def _events() -> list[dict]:
    events = []
    for n, (distinct_id, flag) in enumerate(zip(DISTINCT_IDS, FLAG_KEYS, strict=True)):
        at = SEEN_AT + timedelta(minutes=n)
        events += [
            {"event": "$pageview", "distinct_id": distinct_id, "timestamp": _iso(at)},
            {
                "event": "$feature_flag_called",
                "distinct_id": distinct_id,
                "timestamp": _iso(at + timedelta(seconds=30)),
                "properties": {"$feature_flag": flag, "$feature_flag_response": "test"},
            },
        ]
    return events


def _sessions() -> list[tuple[dict, dict]]:
    """(start, end) bodies of every session."""
    sessions = []
    for n, (session_id, release) in enumerate(zip(SESSION_IDS, RELEASES, strict=True)):
        started = STAGING_AT + timedelta(minutes=n)
        rate = BUSY_RATE if release == BUSY_RELEASE else 1.0
        sessions.append(_session(session_id, DISTINCT_IDS[n], release, "staging", started, rate))
    for day, started in enumerate(CANARY_DAYS):
        for k in range(10):
            crashed = day == 0 and k == 0
            sessions.append(
                _session(
                    f"canary-{day}-{k}",
                    f"canary_{k}",
                    TREND_RELEASE,
                    TREND_ENVIRONMENT,
                    started + timedelta(minutes=k),
                    1.0,
                    "crashed" if crashed else "exited",
                )
            )
    return sessions


def _session(
    session_id: str,
    distinct_id: str,
    release: str,
    environment: str,
    started: datetime,
    sample_rate: float,
    status: str = "exited",
) -> tuple[dict, dict]:
    start = {
        "session_id": session_id,
        "distinct_id": distinct_id,
        "release": release,
        "environment": environment,
        "platform": "javascript",
        "started_at": _iso(started),
        "sample_rate": sample_rate,
    }
    end = {
        "session_id": session_id,
        "status": status,
        "crash_count": int(status == "crashed"),
        "ended_at": _iso(started + timedelta(minutes=5)),
        "duration_ms": 300_000,
    }
    return start, end


def post_newcomer_data(base_url: str, write_key: str) -> None:
    """Everything above, through the ingest API; every request must be accepted."""
    headers = {"Authorization": f"Bearer {write_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        response = client.post("/api/analytics/batch", json={"batch": _events()})
        assert response.status_code == 200, response.text
        for start, end in _sessions():
            for path, body in (("/api/sessions/start", start), ("/api/sessions/end", end)):
                response = client.post(path, json=body)
                assert response.status_code == 200, response.text
