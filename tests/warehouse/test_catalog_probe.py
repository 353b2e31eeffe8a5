"""The catalog probe on a SQLite catalog: it says yes for every commit of a DuckLake writer, in the
same process too (where a ``sqlite3`` connection kept answering the state it first saw), and no
while nothing is written."""

from __future__ import annotations

from warehouse.catalog_probe import CatalogProbe
from warehouse.duck import connect_pipeline
from warehouse.layout import Layout
from warehouse.published import publish


def test_every_commit_is_seen_and_quiet_is_quiet(layout: Layout) -> None:
    probe = CatalogProbe(layout.lake)

    def looks() -> list[bool]:
        # After a change the next look says yes too: two commits within one tick of the files'
        # clock look alike.
        return [probe.changed() for _ in range(3)]

    assert looks() == [True, True, False]  # the first look; then no lake, and still none
    with connect_pipeline(layout) as pipeline:  # creates the lake
        assert looks() == [True, True, False]
        pipeline.execute("CREATE TABLE t AS SELECT 1 AS n")
        assert looks() == [True, True, False]
        for _ in range(3):
            publish(pipeline)
            assert looks() == [True, True, False]
    probe.close()
