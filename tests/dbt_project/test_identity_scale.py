"""One hour of 4,000 links into one person, and one of a 4,000-id chain of dangerous merges,
built by dbt within a bound, to PostHog's answer.

The SQL models this replaced were quadratic in such hours: the replay copied a component's whole
state for every link (4,000 identifies into one user: 103 s and 2 GB), label propagation took one
round per hop (a 4,000-alias chain: 61 s), and the person lookup repeated a person's id list
under each of its ids (4,000 ids: 14 s); a person of more than 100 ids now keeps only its key
there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bench.bench_identity import HOUR, land
from ingest_api.read.persons import person_by_distinct_id
from tests.dbt_project.utils.warehouse import query
from warehouse import dbt
from warehouse.dbt import person_uuid
from warehouse.duck import connect_reader
from warehouse.layout import Layout
from warehouse.raw_load import load_landed

pytestmark = pytest.mark.slow

LINKS = 4_000
STAR, CHAIN = "org_star", "org_chain"
MODELS = (
    "int_identity_components",
    "int_identity_replay",
    "int_identity_map",
    "dim_persons",
    "dim_persons_by_distinct_id",
)
BOUND_S = 5.0  # each model; they take well under a second here


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, dbt_target: Path) -> Iterator[tuple]:
    layout = Layout(tmp_path_factory.mktemp("identity-scale"))
    land(layout.data_dir, LINKS, users=1, org_id=STAR)
    land(layout.data_dir, LINKS, users=None, org_id=CHAIN)
    dbt.prepare_warehouse(layout)
    load_landed(layout)
    result = dbt.run_dbt(
        ["run", "--select", "+dim_persons_by_distinct_id"],
        layout=layout,
        vars=dbt.window_vars(HOUR, HOUR + timedelta(hours=1)),
        target_path=dbt_target,
    )
    seconds = {run.node.name: run.execution_time for run in result.result.results}
    yield layout, seconds


def test_the_identity_models_take_a_bounded_time(built: tuple) -> None:
    _layout, seconds = built
    assert {model: seconds[model] for model in MODELS if seconds[model] > BOUND_S} == {}


def persons(layout: Layout, org_id: str) -> list[tuple]:
    return query(
        layout,
        "select person_id, len(distinct_ids), is_identified, properties::varchar"
        " from analytics.dim_persons where org_id = ?",
        [org_id],
    )


def test_every_identify_merges_into_one_person_whose_first_values_win(built: tuple) -> None:
    # user-0 joins anon-0's person, which then absorbs anon-1 … anon-3999: the person merged
    # into keeps its value of every property on conflict
    layout, _seconds = built
    assert persons(layout, STAR) == [
        (person_uuid(STAR, "anon-0"), LINKS + 1, True, '{"first_page":"/page/0"}')
    ]


def test_a_chain_of_dangerous_merges_ends_in_its_last_id(built: tuple) -> None:
    # each id absorbs the person built so far, whose values it overrides
    layout, _seconds = built
    assert persons(layout, CHAIN) == [
        (person_uuid(CHAIN, f"anon-{LINKS - 1}"), LINKS, True, '{"first_page":"/page/3999"}')
    ]


def test_the_person_lookup_holds_each_id_once_with_only_the_big_persons_key(
    built: tuple,
) -> None:
    layout, _seconds = built
    assert query(
        layout,
        "select org_id, count(*), count(distinct person_id), count(distinct_ids)"
        " from analytics.dim_persons_by_distinct_id group by org_id order by org_id",
    ) == [(CHAIN, LINKS, 1, 0), (STAR, LINKS + 1, 1, 0)]
    with connect_reader(layout) as con:
        person = person_by_distinct_id(con.cursor(), STAR, "anon-17")
    assert person is not None
    assert (person["person_id"], len(person["distinct_ids"])) == (
        person_uuid(STAR, "anon-0"),
        LINKS + 1,
    )
