"""The alert rule the issue's proof names: crash-free sessions below 99 % over 1 h, in
production, judged from 10 sessions."""

from __future__ import annotations

CRASH_FREE_PRODUCTION = {
    "name": "Crash-free sessions in production",
    "metric": "crash_free_session_rate",
    "environment": "production",
    "window_hours": 1,
    "critical_threshold": 99,
    "min_sessions": 10,
}
