"""Values that make every read route answer: its path parameters and required query."""

from __future__ import annotations

import re
from urllib.parse import quote

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
# A route's path parameter, with or without a converter: {version} or {version:path}.
PATH_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


def route_url(path: str, project_id: int) -> str:
    """The route's path with every parameter filled in (percent-encoded) for org A."""
    values = {"project_id": project_id, **PATH_VALUES}
    return PATH_PARAMETER.sub(lambda match: quote(str(values[match[1]]), safe=""), path)
