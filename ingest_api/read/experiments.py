"""An experiment (a feature flag's variants), read from dbt's table macro ``experiment_results``:
persons exposed per variant and, with a goal event, conversions and the Beta posterior PostHog
uses, Beta(1 + conversions, 1 + persons - conversions). The probability that a variant is best is
computed here from those posteriors by numerical integration, so the same numbers always give the
same answer (no sampling)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np

# Points per variant's ±SPREAD standard deviations, and across [0, 1]: the trapezoid rule on them
# is within ~1e-7 of the closed forms (tested from single exposures to 100,000 per variant).
GRID_POINTS = 4001
SPREAD = 12.0
DECIMALS = 4

EXPERIMENT_FIELDS = (
    "variant", "persons", "first_exposed_at", "conversions", "conversion_rate",
    "posterior_alpha", "posterior_beta",
)  # fmt: skip


def _power_log(exponent: float, base: np.ndarray) -> np.ndarray:
    """exponent · log(base), with 0 · log(0) = 0 (a Beta(1, b) density is b, not 0, at x = 0)."""
    if exponent == 0:
        return np.zeros_like(base)
    with np.errstate(divide="ignore"):
        return exponent * np.log(base)


def _beta_pdf(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    log_norm = math.lgamma(alpha) + math.lgamma(beta) - math.lgamma(alpha + beta)
    return np.exp(_power_log(alpha - 1, x) + _power_log(beta - 1, 1 - x) - log_norm)


def _grid(posteriors: Sequence[tuple[float, float]]) -> np.ndarray:
    """[0, 1], denser around each posterior's mass, where the integrand changes."""
    parts = [np.linspace(0.0, 1.0, GRID_POINTS)]
    for alpha, beta in posteriors:
        mean = alpha / (alpha + beta)
        sd = math.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1)))
        low, high = max(0.0, mean - SPREAD * sd), min(1.0, mean + SPREAD * sd)
        parts.append(np.linspace(low, high, GRID_POINTS))
    return np.unique(np.concatenate(parts))


def _cumulative(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    steps = (values[1:] + values[:-1]) / 2 * np.diff(x)
    return np.concatenate([[0.0], np.cumsum(steps)])


def probability_to_be_best(posteriors: Sequence[tuple[float, float]]) -> list[float]:
    """For Beta(alpha_i, beta_i) conversion rates, P(variant i has the highest rate) =
    ∫ pdf_i(x) · Π_{j≠i} cdf_j(x) dx, by the trapezoid rule on a fixed grid; rounded to 4
    decimals."""
    if len(posteriors) < 2:
        return [1.0] * len(posteriors)
    x = _grid(posteriors)
    pdfs = [_beta_pdf(x, a, b) for a, b in posteriors]
    cdfs = []
    for pdf in pdfs:
        cdf = _cumulative(pdf, x)
        cdfs.append(cdf / cdf[-1])  # the grid's own total, so every cdf ends at exactly 1
    best = []
    for i, pdf in enumerate(pdfs):
        others = np.prod([cdf for j, cdf in enumerate(cdfs) if j != i], axis=0)
        best.append(_cumulative(pdf * others, x)[-1] / _cumulative(pdf, x)[-1])
    total = sum(best)
    return [round(float(p / total), DECIMALS) for p in best]


def experiment_results(
    cur: duckdb.DuckDBPyConnection,
    org_id: str,
    flag_key: str,
    goal_event: str | None,
    window: timedelta,
) -> list[dict[str, Any]]:
    rows = cur.execute(
        "SELECT * FROM warehouse.analytics.experiment_results($org, $flag,"
        " goal_event := $goal, conversion_window := $window) ORDER BY variant",
        {"org": org_id, "flag": flag_key, "goal": goal_event or "", "window": window},
    ).fetchall()
    variants = [dict(zip(EXPERIMENT_FIELDS, row, strict=True)) for row in rows]
    if goal_event is None:
        return [{**variant, "probability_to_be_best": None} for variant in variants]
    posteriors = [(v["posterior_alpha"], v["posterior_beta"]) for v in variants]
    return [
        {**variant, "probability_to_be_best": p}
        for variant, p in zip(variants, probability_to_be_best(posteriors), strict=True)
    ]
