"""bench.generate writes the landing contract exactly, deterministically, and loadably."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from bench.generate import LATEST_RECEIPT, generate
from bench.generate import main as generate_main
from warehouse.duck import connect_pipeline
from warehouse.layout import PART_GLOB, STREAMS, Layout
from warehouse.raw_load import load_landed
from warehouse.registry import Registry
from warehouse.streams import STREAM_COLUMNS


def landed(layout: Layout) -> dict[str, list[bytes]]:
    return {
        stream: sorted(
            line
            for path in sorted(layout.stream_dir(stream).rglob(PART_GLOB))
            for line in path.read_bytes().splitlines()
        )
        for stream in STREAMS
    }


def test_generated_files_follow_the_landing_contract(tmp_path) -> None:
    layout = Layout(tmp_path / "a")
    summary = generate(layout, events=3000, sessions=300, days=1, seed=3, orgs=2, progress=False)

    files = landed(layout)
    assert summary.session_starts == 300
    assert len(files["events"]) >= 3000  # plus retried copies
    assert len(files["sessions"]) == summary.session_starts + summary.session_ends
    assert len(files["identities"]) == summary.identities > 0
    assert files.pop("session_aggregates") == []  # the generator sends no Sentry aggregates
    assert files.pop("ingestion_warnings") == []  # nor records ingest would have corrected
    for stream, lines in files.items():
        records = [orjson.loads(line) for line in lines]
        assert all(list(record) == list(STREAM_COLUMNS[stream]) for record in records)
        assert {record["org_id"] for record in records} <= set(summary.orgs)
        # every record is filed under the hour it was received
        first = records[0]
        received = datetime.strptime(first["received_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        folder = layout.hour_dir(stream, first["org_id"], received)
        assert any(lines[0] in path.read_bytes() for path in folder.glob(PART_GLOB))
    kinds = {orjson.loads(line)["kind"] for line in files["identities"]}
    assert kinds == {"identify", "alias"}
    retried = len(files["events"]) - len({orjson.loads(line)["uuid"] for line in files["events"]})
    assert retried > 0


def test_generation_is_deterministic_and_loads(tmp_path) -> None:
    first, second = Layout(tmp_path / "a"), Layout(tmp_path / "b")
    generate(first, events=2000, sessions=200, days=0.5, seed=11, progress=False)
    generate(second, events=2000, sessions=200, days=0.5, seed=11, progress=False)
    assert landed(first) == landed(second)

    loads = load_landed(first)
    loaded = sum(load.rows_loaded for load in loads)
    # What the API writes takes the fast path: one read_json a stream, no file read line by line.
    fast = [(load.records_quarantined, load.files_reread) for load in loads]
    assert fast == [(0, 0)] * len(STREAMS)
    con = connect_pipeline(first)
    assert loaded == sum(len(lines) for lines in landed(first).values())
    rates = con.execute(
        "select release, min(sample_rate), max(sample_rate) from raw.sessions"
        " where kind = 'start' group by all order by all"
    ).fetchall()
    assert rates == [("1.0.0", 1.0, 1.0), ("1.1.0", 0.1, 0.1), ("1.2.0", 1.0, 1.0)]
    con.close()


def test_the_generator_registers_what_it_writes_so_a_key_reads_it(tmp_path, capsys) -> None:
    layout = Layout(tmp_path / "data")
    arguments = ["--events", "400", "--sessions", "40", "--days", "0.2", "--orgs", "2"]
    generate_main([*arguments, "--data-dir", str(layout.data_dir), "--rw-key"])

    printed = capsys.readouterr().out
    keys = re.findall(r"org (org_\w+), project (\d+): rw key (loom_analytics_rw_\w+)", printed)
    assert len(keys) == 2
    written = {
        (record["org_id"], record["project_id"])
        for lines in landed(layout).values()
        for record in map(orjson.loads, lines)
    }
    with Registry.open(layout) as registry:
        readers = {key: registry.lookup(key) for _, _, key in keys}
        # `loom keys create --org <org id>` adds a key to that org instead of a new org
        another = registry.create_key(keys[0][0], "app", "rw").record
    assert written == {(org_id, int(project_id)) for org_id, project_id, _ in keys}
    assert {(r.org_id, r.project_id, r.kind) for r in readers.values()} == {
        (org_id, int(project_id), "rw") for org_id, project_id, _ in keys
    }
    assert (another.org_id, another.project_id) == (keys[0][0], int(keys[0][1]))

    # The same traffic as with made-up ids, to the record
    unregistered = Layout(tmp_path / "unregistered")
    generate(unregistered, events=400, sessions=40, days=0.2, orgs=2, progress=False)
    counts = {stream: len(lines) for stream, lines in landed(layout).items()}
    assert {stream: len(lines) for stream, lines in landed(unregistered).items()} == counts

    # The same seed again adds to the same orgs
    generate_main([*arguments, "--data-dir", str(layout.data_dir)])
    assert "loom keys create --org <org id>" in capsys.readouterr().out
    with Registry.open(layout) as registry:
        records = registry.keys()
    assert len({record.org_id for record in records}) == 2


def test_from_the_command_line_nothing_is_received_in_the_future(tmp_path) -> None:
    """`python -m bench.generate --days 1` ends its span as late as every record allows: all are
    received by now, the latest within the last LATEST_RECEIPT and an hour."""
    layout = Layout(tmp_path / "data")
    arguments = ["--events", "2000", "--sessions", "200", "--days", "1"]
    generate_main([*arguments, "--data-dir", str(layout.data_dir)])

    now = datetime.now(UTC).replace(tzinfo=None)
    received = [
        datetime.strptime(orjson.loads(line)["received_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        for lines in landed(layout).values()
        for line in lines
    ]
    assert max(received) <= now
    assert max(received) > now - LATEST_RECEIPT - timedelta(hours=1, days=1)


def test_a_start_that_would_receive_records_after_now_is_refused(tmp_path, capsys) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    arguments = ["--start", tomorrow, "--data-dir", str(tmp_path / "data")]
    with pytest.raises(SystemExit) as exited:
        generate_main([*arguments, "--events", "10", "--sessions", "1", "--days", "1"])

    assert exited.value.code == 2
    assert "would receive records after now" in capsys.readouterr().err
    assert not (tmp_path / "data" / "landing").exists()
