"""Release-health alert rules: what a rule is, and how its state moves.

A rule watches one metric of a project's releases over a window of whole hours (Sentry's metric
alerts on release health): the crash-free session or user rate, the error rate or the session
count. Every release in the window with at least ``min_sessions`` sessions is judged, the worst
one gives the rule its value, and the value against the thresholds gives its state:
``ok`` → ``warning`` → ``critical`` → ``resolved``. The numbers themselves come from dbt's marts
(:mod:`warehouse.alert_evaluation`); this module only compares them.
"""

from __future__ import annotations

from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

Metric = Literal["crash_free_session_rate", "crash_free_user_rate", "error_rate", "session_count"]
METRICS: tuple[str, ...] = get_args(Metric)
ThresholdType = Literal["below", "above"]
State = Literal["ok", "warning", "critical", "resolved"]
FIRING: frozenset[str] = frozenset({"warning", "critical"})

# The column of the release-health marts each metric reads.
METRIC_COLUMNS: dict[str, str] = {
    "crash_free_session_rate": "crash_free_session_rate",
    "crash_free_user_rate": "crash_free_user_rate",
    "error_rate": "error_rate",
    "session_count": "total_sessions",
}
# Crash-free rates alert when they fall; the error rate and the session count when they rise.
DEFAULT_THRESHOLD_TYPES: dict[str, ThresholdType] = {
    "crash_free_session_rate": "below",
    "crash_free_user_rate": "below",
    "error_rate": "above",
    "session_count": "above",
}
PERCENT_RANGE = (0.0, 100.0)
MAX_WINDOW_HOURS = 720  # 30 days: the windowed table function reads every hour of it
MAX_RULES_PER_PROJECT = 100


def _out_of_range(field: str, value: float, low: float, high: float | None) -> PydanticCustomError:
    bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
    return PydanticCustomError(
        "threshold_out_of_range",
        "{field} {value} is out of range: this metric's values are {bounds}",
        {"field": field, "value": f"{value:g}", "bounds": bounds},
    )


class AlertRule(BaseModel):
    """A rule as it is created (``POST /api/projects/{id}/alerts``) and stored."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    metric: Metric = Field(description="What is watched: " + ", ".join(METRICS) + ".")
    environment: str | None = Field(
        None, min_length=1, max_length=200, description="Only this environment's sessions."
    )
    release: str | None = Field(
        None, min_length=1, max_length=200, description="Only this release's sessions."
    )
    latest_adopted_release: bool = Field(
        False,
        description="Only the newest release adopted in its environment (adoption_stage "
        "`adopted` in release_health); not with `release`.",
    )
    window_hours: int = Field(
        1,
        ge=1,
        le=MAX_WINDOW_HOURS,
        description="The last N whole UTC hours up to the newest data, the hour in progress "
        "included.",
    )
    threshold_type: ThresholdType | None = Field(
        None,
        validate_default=True,
        description="`below` (the default for crash-free rates) or `above` (for the error rate "
        "and the session count): on which side of a threshold the value is bad.",
    )
    critical_threshold: float = Field(description="Percent for rates, sessions for the count.")
    warning_threshold: float | None = Field(None, description="Less severe than critical.")
    resolve_threshold: float | None = Field(
        None,
        validate_default=True,
        description="A firing rule resolves once the value is back past it. Default: the "
        "warning threshold, else the critical one.",
    )
    min_sessions: int = Field(
        10, ge=1, le=10**12, description="Releases with fewer sessions are not judged."
    )
    webhook_url: str | None = Field(
        None, max_length=2048, description="POSTed a JSON body at every change of state."
    )

    @field_validator("threshold_type")
    @classmethod
    def _default_threshold_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        metric = info.data.get("metric")
        return value or (DEFAULT_THRESHOLD_TYPES[metric] if metric else None)

    @field_validator("critical_threshold", "warning_threshold", "resolve_threshold")
    @classmethod
    def _in_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        metric = info.data.get("metric")
        if value is None or metric is None:
            return value
        low, high = PERCENT_RANGE if metric != "session_count" else (0.0, None)
        if value < low or (high is not None and value > high):
            raise _out_of_range(str(info.field_name), value, low, high)
        return value

    @field_validator("warning_threshold")
    @classmethod
    def _less_severe_than_critical(cls, value: float | None, info: ValidationInfo) -> float | None:
        critical, kind = info.data.get("critical_threshold"), info.data.get("threshold_type")
        if value is None or critical is None or kind is None:
            return value
        if (kind == "below" and value <= critical) or (kind == "above" and value >= critical):
            side = "above" if kind == "below" else "below"
            raise PydanticCustomError(
                "threshold_order",
                "warning_threshold must be {side} critical_threshold ({critical}) for a rule "
                "that alerts when the value is {kind} them",
                {"side": side, "critical": f"{critical:g}", "kind": kind},
            )
        return value

    @field_validator("resolve_threshold")
    @classmethod
    def _past_the_thresholds(cls, value: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("threshold_type")
        nearest = info.data.get("warning_threshold")
        if nearest is None:
            nearest = info.data.get("critical_threshold")
        if nearest is None or kind is None:
            return value
        if value is None:
            return nearest
        if (kind == "below" and value < nearest) or (kind == "above" and value > nearest):
            side = "at or above" if kind == "below" else "at or below"
            raise PydanticCustomError(
                "threshold_order",
                "resolve_threshold must be {side} {nearest}: a rule resolves only once the "
                "value is clear of every threshold",
                {"side": side, "nearest": f"{nearest:g}"},
            )
        return value

    @field_validator("latest_adopted_release")
    @classmethod
    def _one_release_filter(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("release") is not None:
            raise PydanticCustomError(
                "release_filter", "give `release` or `latest_adopted_release`, not both"
            )
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError(
                "webhook_url", "webhook_url must be an http:// or https:// URL with a host"
            )
        return value

    @property
    def column(self) -> str:
        return METRIC_COLUMNS[self.metric]

    def breaches(self, value: float, threshold: float) -> bool:
        """Whether ``value`` is on the bad side of ``threshold``."""
        return value < threshold if self.threshold_type == "below" else value > threshold

    def next_state(self, state: str, value: float) -> str:
        """The state after a judged value: critical or warning as soon as the value breaches
        their threshold; a firing rule resolves only once the value is clear of the resolve
        threshold, and keeps its state in between (no flapping around a threshold)."""
        if self.breaches(value, self.critical_threshold):
            return "critical"
        if self.warning_threshold is not None and self.breaches(value, self.warning_threshold):
            return "warning"
        assert self.resolve_threshold is not None  # filled in by validation
        if state in FIRING and not self.breaches(value, self.resolve_threshold):
            return "resolved"
        return state

    def threshold_of(self, state: str) -> float | None:
        """The threshold a state was entered by."""
        return {
            "critical": self.critical_threshold,
            "warning": self.warning_threshold,
            "resolved": self.resolve_threshold,
        }.get(state)
