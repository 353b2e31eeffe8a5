"""Experiments and funnels over real HTTP, on the experiment of ``experiment_dataset.py`` (every
number derived there by hand), and the funnel as a table function from a plain DuckDB client."""

from __future__ import annotations

import math
from collections.abc import Iterator

import duckdb
import httpx
import pytest

from ingest_api.read.experiments import probability_to_be_best
from ingest_api.read.schemas import ExperimentResults, FunnelResults
from tests.ingest_api.read.utils.experiment_dataset import (
    FLAG,
    FUNNEL_STEPS,
    GOAL_DISPLAY_NAME,
    GOAL_EVENT,
)
from tests.ingest_api.read.utils.sql_shell import loom_sql
from tests.ingest_api.read.utils.warehouse import Built, RunningApi, Tenants

EXPERIMENT = f"/api/analytics/experiments/{FLAG}"


def log_beta(x: float, y: float) -> float:
    return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)


def p_b_beats_a(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    """P(X_B > X_A) for X ~ Beta with integer parameters, in closed form (Evan Miller's sum)."""
    return sum(
        math.exp(
            log_beta(alpha_a + i, beta_a + beta_b)
            - math.log(beta_b + i)
            - log_beta(1 + i, beta_b)
            - log_beta(alpha_a, beta_a)
        )
        for i in range(alpha_b)
    )


@pytest.mark.parametrize(
    ("posteriors", "expected"),
    [
        # Beta(1, 2) against Beta(2, 1): ∫∫_{b>a} 2(1 - a) · 2b = ∫ 2b (2b - b²) db = 5/6
        ([(1, 2), (2, 1)], [0.1667, 0.8333]),
        # the experiment below: Beta(2, 4) against Beta(4, 2): 113/126
        ([(2, 4), (4, 2)], [0.1032, 0.8968]),
        ([(3, 3), (4, 2)], [0.2619, 0.7381]),  # 31/42
        ([(1, 1), (1, 1), (1, 1)], [0.3333, 0.3333, 0.3333]),  # symmetry
        ([(7, 3)], [1.0]),
    ],
)
def test_probability_to_be_best_by_hand(posteriors: list, expected: list[float]) -> None:
    assert probability_to_be_best(posteriors) == expected


@pytest.mark.parametrize(
    "counts",
    [(2, 4, 4, 2), (31, 71, 41, 61), (1 + 5_000, 1 + 95_000, 1 + 5_200, 1 + 94_800)],
)
def test_probability_to_be_best_agrees_with_the_closed_form(counts: tuple) -> None:
    """Also at a hundred thousand exposures, where the densities are narrow spikes."""
    alpha_a, beta_a, alpha_b, beta_b = counts
    exact = p_b_beats_a(*counts)
    assert probability_to_be_best([(alpha_a, beta_a), (alpha_b, beta_b)]) == [
        round(1 - exact, 4),
        round(exact, 4),
    ]


@pytest.fixture
def client(experiment_api: RunningApi, experiment_built: Built) -> Iterator[httpx.Client]:
    headers = Tenants.headers(experiment_built.tenants.key_a)
    with httpx.Client(base_url=experiment_api.base_url, headers=headers, timeout=30) as client:
        yield client


def variants(response: httpx.Response) -> list[tuple]:
    assert response.status_code == 200, response.text
    ExperimentResults.model_validate(response.json())
    return [tuple(variant.values()) for variant in response.json()["variants"]]


@pytest.mark.slow
def test_exposures_per_variant(client: httpx.Client) -> None:
    response = client.get(EXPERIMENT)

    # t4 saw test, then control: counted once, in test
    assert variants(response) == [
        ("control", 4, "2026-11-22T10:00:00Z", None, None, None, None, None),
        ("test", 4, "2026-11-22T10:04:00Z", None, None, None, None, None),
    ]
    assert (response.json()["goal_event"], response.json()["conversion_window"]) == (None, None)


@pytest.mark.slow
@pytest.mark.parametrize("goal_event", [GOAL_EVENT, GOAL_DISPLAY_NAME])
def test_conversions_and_probability_to_be_best(client: httpx.Client, goal_event: str) -> None:
    params = {"goal_event": goal_event, "conversion_window": "7 days"}
    response = client.get(EXPERIMENT, params=params)

    # control: c1 converts (c2 bought before its exposure, c3 eight days after): Beta(2, 4);
    # test: t1, t3, t4 convert: Beta(4, 2); P(test best) = 113/126. c1's and t3's purchases were
    # sent natively, the others as `Purchase Completed`: either form counts all of them.
    assert variants(response) == [
        ("control", 4, "2026-11-22T10:00:00Z", 1, 25.0, 2, 4, 0.1032),
        ("test", 4, "2026-11-22T10:04:00Z", 3, 75.0, 4, 2, 0.8968),
    ]
    assert response.json()["conversion_window"] == "7 days"
    assert response.json()["goal_event"] == GOAL_EVENT  # the name it was counted by


@pytest.mark.slow
def test_a_longer_window_counts_the_late_conversion(client: httpx.Client) -> None:
    params = {"goal_event": GOAL_EVENT, "conversion_window": "9 days"}

    # c3's purchase, 8 days after its exposure, now counts: Beta(3, 3) against Beta(4, 2), 31/42
    assert variants(client.get(EXPERIMENT, params=params)) == [
        ("control", 4, "2026-11-22T10:00:00Z", 2, 50.0, 3, 3, 0.2619),
        ("test", 4, "2026-11-22T10:04:00Z", 3, 75.0, 4, 2, 0.7381),
    ]


@pytest.mark.slow
def test_an_experiment_reads_only_the_callers_org(
    experiment_api: RunningApi, experiment_built: Built, client: httpx.Client
) -> None:
    headers = Tenants.headers(experiment_built.tenants.key_b)
    with httpx.Client(base_url=experiment_api.base_url, headers=headers, timeout=30) as org_b:
        response = org_b.get(EXPERIMENT, params={"goal_event": GOAL_EVENT})

    assert variants(response) == [("test", 1, "2026-11-22T10:00:00Z", 0, 0.0, 1, 2, 1.0)]
    assert variants(client.get("/api/analytics/experiments/no-such-flag")) == []


FUNNEL = "/api/analytics/funnel"


def funnel_rows(response: httpx.Response) -> list[tuple]:
    assert response.status_code == 200, response.text
    FunnelResults.model_validate(response.json())
    return [tuple(row.values()) for row in response.json()["funnel"]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # c1, c2, c3, t1, t2 view pricing; all but c2 start a checkout; c1 and t1 buy in 7 days
        (
            {"conversion_window": "7 days"},
            [
                (None, 1, "viewed_pricing", 5, 100.0, None),
                (None, 2, "started_checkout", 4, 80.0, 80.0),
                (None, 3, "purchase_completed", 2, 40.0, 50.0),
            ],
        ),
        # each checkout starts exactly 10 minutes after pricing (the window's end is inclusive);
        # every purchase is 20 minutes or more after it
        (
            {"conversion_window": "10 minutes"},
            [
                (None, 1, "viewed_pricing", 5, 100.0, None),
                (None, 2, "started_checkout", 4, 80.0, 80.0),
                (None, 3, "purchase_completed", 0, 0.0, 0.0),
            ],
        ),
        # step-1 events from 10:12: c3, t1, t2; c3 buys 8 days later, inside the default 14
        (
            {"start_date": "2026-11-22T10:12:00Z"},
            [
                (None, 1, "viewed_pricing", 3, 100.0, None),
                (None, 2, "started_checkout", 3, 100.0, 100.0),
                (None, 3, "purchase_completed", 2, 66.67, 66.67),
            ],
        ),
        # by the variant of the first exposure: control c1, c2, c3; test t1, t2
        (
            {"conversion_window": "1 week", "breakdown_flag": FLAG},
            [
                ("control", 1, "viewed_pricing", 3, 100.0, None),
                ("control", 2, "started_checkout", 2, 66.67, 66.67),
                ("control", 3, "purchase_completed", 1, 33.33, 50.0),
                ("test", 1, "viewed_pricing", 2, 100.0, None),
                ("test", 2, "started_checkout", 2, 100.0, 100.0),
                ("test", 3, "purchase_completed", 1, 50.0, 50.0),
            ],
        ),
        ({"breakdown_flag": "no-such-flag"}, []),
    ],
)
def test_funnel_persons_per_step(client: httpx.Client, params: dict, expected: list) -> None:
    response = client.get(FUNNEL, params={"steps": list(FUNNEL_STEPS), **params})

    assert funnel_rows(response) == expected


DISPLAY_STEPS = ("Viewed Pricing", "Started Checkout", GOAL_DISPLAY_NAME)


@pytest.mark.slow
@pytest.mark.parametrize("steps", [FUNNEL_STEPS, DISPLAY_STEPS])
def test_funnel_steps_in_either_form_count_the_same_persons(
    client: httpx.Client, steps: tuple[str, ...]
) -> None:
    response = client.get(FUNNEL, params={"steps": list(steps), "conversion_window": "7 days"})

    # as below: 5 view pricing, 4 start a checkout, c1 (native) and t1 (display) buy in 7 days
    assert funnel_rows(response) == [
        (None, 1, "viewed_pricing", 5, 100.0, None),
        (None, 2, "started_checkout", 4, 80.0, 80.0),
        (None, 3, "purchase_completed", 2, 40.0, 50.0),
    ]
    assert response.json()["steps"] == list(FUNNEL_STEPS)


@pytest.mark.slow
def test_a_funnel_reads_only_the_callers_org(
    experiment_api: RunningApi, experiment_built: Built
) -> None:
    headers = Tenants.headers(experiment_built.tenants.key_b)
    params = {"steps": list(FUNNEL_STEPS), "breakdown_flag": FLAG}
    with httpx.Client(base_url=experiment_api.base_url, headers=headers, timeout=30) as org_b:
        plain = org_b.get(FUNNEL, params={"steps": list(FUNNEL_STEPS)})
        by_variant = org_b.get(FUNNEL, params=params)

    # org B's one person was exposed but did none of the steps
    assert [persons for _variant, _step, _event, persons, *_ in funnel_rows(plain)] == [0, 0, 0]
    assert funnel_rows(by_variant) == []


@pytest.mark.slow
def test_a_funnel_with_nobody_in_it_still_lists_its_steps(client: httpx.Client) -> None:
    response = client.get(FUNNEL, params={"steps": ["viewed_pricing", "nothing_like_it"]})

    assert response.json()["conversion_window"] == "14 days"
    assert funnel_rows(response)[1] == (None, 2, "nothing_like_it", 0, 0.0, 0.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "params", "field", "reason"),
    [
        (FUNNEL, {"steps": ["a"]}, "query.steps", "List should have at least 2 items"),
        (FUNNEL, {"steps": [f"s{n}" for n in range(11)]}, "query.steps", "at most 10 items"),
        (FUNNEL, {}, "query.steps", "Field required"),
        (FUNNEL, {"steps": ["a", ""]}, "query.steps[1]", "at least 1 character"),
        (
            FUNNEL,
            {"steps": ["a", "b"], "conversion_window": "7 dayz"},
            "query.conversion_window",
            "not a window: send `<n> <unit>`, unit minute, hour, day or week",
        ),
        (
            EXPERIMENT,
            {"goal_event": "x", "conversion_window": "53 weeks"},
            "query.conversion_window",
            "'53 weeks' is longer than 365 days",
        ),
        (EXPERIMENT, {"goal_event": ""}, "query.goal_event", "at least 1 character"),
        # a name no event can be stored under, as ingest refuses it
        (EXPERIMENT, {"goal_event": "123 Go"}, "query.goal_event", "normalizes to '123_go'"),
        (FUNNEL, {"steps": ["a", "!!"]}, "query.steps[1]", "normalizes to ''"),
        ("/api/analytics/events", {"event_name": "9 lives"}, "query.event_name", "normalizes"),
        (FUNNEL, {"steps": ["a", "b"], "breakdown_flag": ""}, "query.breakdown_flag", "at least"),
    ],
)
def test_bad_parameters_are_400s_naming_the_field(
    client: httpx.Client, path: str, params: dict, field: str, reason: str
) -> None:
    response = client.get(path, params=params)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert reason in error["reason"]


@pytest.mark.slow
def test_the_funnel_is_a_table_function_for_any_duckdb_client(experiment_built: Built) -> None:
    statements = loom_sql(experiment_built.layout, "--print-attach")
    code = "\n".join(line for line in statements.splitlines() if not line.startswith("--"))
    steps = ", ".join(f"'{step}'" for step in FUNNEL_STEPS)
    with duckdb.connect() as analyst:  # a plain DuckDB, as an analyst's notebook would have
        for statement in code.split(";"):
            if statement.strip():
                analyst.execute(statement)
        rows = analyst.execute(
            f"select * from funnel([{steps}], conversion_window := interval '7 days',"
            " breakdown_flag := 'new-checkout', scope_org_id := ?)",
            [experiment_built.tenants.org_a],
        ).fetchall()
        whole_lake = analyst.execute(
            f"select step, persons from warehouse.analytics.funnel([{steps}]) order by step"
        ).fetchall()

    assert [(variant, step, persons) for variant, step, _event, persons, *_ in rows] == [
        ("control", 1, 3),
        ("control", 2, 2),
        ("control", 3, 1),
        ("test", 1, 2),
        ("test", 2, 2),
        ("test", 3, 1),
    ]
    # every org (org B has no funnel events), 14 days: c3's late purchase counts
    assert whole_lake == [(1, 5), (2, 4), (3, 3)]
