"""warehouse.dbt's pure helpers, and the `loom dbt` passthrough on a fresh (empty) warehouse."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from loom.cli import main
from warehouse import dbt
from warehouse.layout import Layout


def test_window_vars_are_naive_utc_strings() -> None:
    assert dbt.window_vars(datetime(2026, 1, 18, 12), datetime(2026, 1, 18, 13)) == {
        "window_start": "2026-01-18 12:00:00",
        "window_end": "2026-01-18 13:00:00",
    }
    paris = timezone(timedelta(hours=1))
    assert dbt.window_vars(
        datetime(2026, 1, 18, 13, tzinfo=paris), datetime(2026, 1, 18, 13, tzinfo=UTC)
    ) == {
        "window_start": "2026-01-18 12:00:00",
        "window_end": "2026-01-18 13:00:00",
    }


def test_window_vars_reject_an_empty_window() -> None:
    with pytest.raises(ValueError, match="before its end"):
        dbt.window_vars(datetime(2026, 1, 18, 13), datetime(2026, 1, 18, 13))


def test_person_uuid_is_a_uuid5_of_org_and_distinct_id() -> None:
    person = uuid.UUID(dbt.person_uuid("org_a", "u1"))
    assert person.version == 5
    assert str(person) == "65728826-0fdc-561d-b363-35e05a745df4"  # the value the models compute
    assert dbt.person_uuid("org_b", "u1") != str(person)


def test_dbt_env_points_dbt_at_the_project_and_an_absolute_data_dir(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = dbt.dbt_env(Layout(Path("relative")))
    assert env["LOOM_DATA_DIR"] == str(tmp_path / "relative")
    assert Path(env["DBT_PROJECT_DIR"], "dbt_project.yml").is_file()
    assert Path(env["DBT_PROFILES_DIR"], "profiles.yml").is_file()
    assert env["PATH"].split(":")[0] == str(Path(dbt.sys.executable).parent)


@pytest.mark.slow
def test_loom_dbt_runs_and_documents_a_fresh_warehouse(data_dir: Path, tmp_path: Path) -> None:
    # what `make dbt-build` / `make dbt-docs` do on a fresh clone: no raw data at all yet
    target = ["--target-path", str(tmp_path / "target")]
    runner = CliRunner()

    run = runner.invoke(main, ["dbt", "run", *target])
    docs = runner.invoke(main, ["dbt", "docs", "generate", *target])

    assert run.exit_code == 0, run.output
    assert docs.exit_code == 0, docs.output
    assert (tmp_path / "target" / "catalog.json").is_file()
    assert dbt.run_dbt(
        ["ls", "--resource-type", "model", "--output", "name"], layout=Layout(data_dir)
    ).success
