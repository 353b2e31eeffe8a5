"""Values that make every read route answer: its path parameters and required query."""

from __future__ import annotations

# Values for the path parameters of org A's routes, each naming something org A has. A new path
# parameter needs a value here; until it has one the test fails, it does not skip the route.
PATH_VALUES = {
    "distinct_id": "anon-1",
    "version": "1.2.3",
    "session_id": "s123-0000",
    "flag_key": "new-checkout",
}
REQUIRED_QUERY = {
    "/api/analytics/export": {"start_date": "2026-11-01", "end_date": "2026-12-01"},
    "/api/analytics/funnel": {"steps": ["$pageview", "checkout_completed"]},
}
