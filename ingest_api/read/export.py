"""Event export as NDJSON, CSV or Parquet, streamed.

The range is read one UTC day at a time (only the days that have events), ordered by time, and
each day in record batches of :data:`BATCH_ROWS`; every batch is encoded and handed to the
response as soon as it is read. The server therefore holds at most one day's sort and one batch,
never the whole range, and the client receives a chunked response that starts before the range
has been read.

A read that fails before the first chunk is an ordinary error response (503). One that fails
after it cannot change the 200 already sent, so the export ends broken where every client sees
it: NDJSON gets a last line ``{"error": {"status": 503, "detail": …}}``, and every format ends
without the chunked encoding's last chunk, which ``curl`` (exit 18), httpx, requests and browsers
report as an incomplete body (a Parquet file cut off there has no footer either, so no reader
opens it). An HTTP trailer cannot carry the error: uvicorn sends none over HTTP/1.1, and a
trailer would need the body to end properly."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from fastapi.responses import StreamingResponse
from starlette.types import Send

from ingest_api.errors import unreadable_detail
from ingest_api.read.events import EventFilter
from ingest_api.read.rendering import OPTIONS, dumps
from warehouse.published import CatalogUnavailable, LakeFileDamaged, Publish, PublishedMarts

ExportFormat = Literal["ndjson", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
BATCH_ROWS = 10_000
log = logging.getLogger(__name__)
COLUMNS = (
    "uuid, event, event_display_name, distinct_id, person_id, properties::VARCHAR AS properties,"
    " timestamp, environment, project_id, session_id, device_id, received_at"
)


class _Sink:
    """A write-only file object whose bytes are taken out after each batch."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


class _Ndjson:
    def __init__(self, schema: pa.Schema) -> None:
        del schema  # every line carries its own keys

    def encode(self, batch: pa.RecordBatch) -> bytes:
        lines = []
        for row in batch.to_pylist():
            row["properties"] = orjson.Fragment(row["properties"] or "null")
            lines.append(orjson.dumps(row, option=OPTIONS))
        return b"\n".join(lines) + b"\n" if lines else b""

    def finish(self) -> bytes:
        return b""


def _iso_utc(column: pa.Array) -> pa.Array:
    """Naive UTC timestamps as the JSON responses and NDJSON write them: ISO 8601 with ``Z``,
    microseconds only when there are some (``2026-01-18T12:00:00Z``, ``…:00.250000Z``). Arrow's
    ``%S`` always writes the six digits."""
    text = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
    return pc.replace_substring_regex(text, pattern=r"\.000000Z$", replacement="Z")


def _utc_schema(schema: pa.Schema) -> pa.Schema:
    """The schema with every (naive UTC) timestamp column marked as UTC."""
    return pa.schema(
        field.with_type(pa.timestamp(field.type.unit, tz="UTC"))
        if pa.types.is_timestamp(field.type)
        else field
        for field in schema
    )


class _Csv:
    """One header line; timestamps as ISO 8601 with ``Z`` (as NDJSON), properties as JSON text."""

    def __init__(self, schema: pa.Schema) -> None:
        self._sink = _Sink()
        self._timestamps = [pa.types.is_timestamp(field.type) for field in schema]
        text_schema = pa.schema(
            pa.field(field.name, pa.string()) if is_time else field
            for field, is_time in zip(schema, self._timestamps, strict=True)
        )
        self._writer = pa_csv.CSVWriter(self._sink, text_schema)

    def encode(self, batch: pa.RecordBatch) -> bytes:
        columns = [
            _iso_utc(column) if is_time else column
            for column, is_time in zip(batch.columns, self._timestamps, strict=True)
        ]
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, names=batch.schema.names))
        return self._sink.take()

    def finish(self) -> bytes:
        self._writer.close()
        return self._sink.take()


class _Parquet:
    """One row group per batch; the footer goes out when the range ends. Timestamps are
    ``timestamp with time zone`` (UTC), so no reader takes them for local times."""

    def __init__(self, schema: pa.Schema) -> None:
        self._sink = _Sink()
        self._schema = _utc_schema(schema)
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")

    def encode(self, batch: pa.RecordBatch) -> bytes:
        self._writer.write_batch(batch.cast(self._schema))
        return self._sink.take()

    def finish(self) -> bytes:
        self._writer.close()
        return self._sink.take()


ENCODERS: dict[str, type[_Ndjson | _Csv | _Parquet]] = {
    "ndjson": _Ndjson,
    "csv": _Csv,
    "parquet": _Parquet,
}


def _day_windows(
    cur: duckdb.DuckDBPyConnection, where: EventFilter
) -> list[tuple[datetime, datetime]]:
    """The UTC days of the range that have events, clipped to it; the whole range when none do
    (one empty read still gives the encoder its columns)."""
    assert where.start is not None and where.end is not None
    sql, params = where.where()
    days = cur.execute(
        f"SELECT DISTINCT date_trunc('day', timestamp) AS day FROM warehouse.analytics.fct_events"
        f" WHERE {sql} ORDER BY day",
        params,
    ).fetchall()
    windows = [(max(day, where.start), min(day + timedelta(days=1), where.end)) for (day,) in days]
    return windows or [(where.start, where.end)]


class ExportAborted(Exception):
    """The export failed after its first chunk was sent; its error tail is out."""


def export_events(
    marts: PublishedMarts,
    where: EventFilter,
    fmt: ExportFormat,
    batch_rows: int = BATCH_ROWS,
    publish: Publish | None = None,
) -> Iterator[bytes]:
    """The encoded export, chunk by chunk (``where.start`` and ``where.end`` are required), read
    from ``publish`` (default: the newest).

    A failure before the first chunk is raised as it is; after it, the format's error tail is
    yielded and :class:`ExportAborted` raised."""
    sent = False
    try:
        for chunk in _encoded(marts, where, fmt, batch_rows, publish):
            yield chunk
            sent = True
    except (LakeFileDamaged, CatalogUnavailable) as failure:
        if not sent:
            raise
        log.error("export of %s aborted after its first chunk: %s", where.org_id, failure)
        if fmt == "ndjson":
            yield dumps({"error": {"status": 503, "detail": unreadable_detail(failure)}}) + b"\n"
        raise ExportAborted(str(failure)) from failure


def _encoded(
    marts: PublishedMarts,
    where: EventFilter,
    fmt: ExportFormat,
    batch_rows: int,
    publish: Publish | None,
) -> Iterator[bytes]:
    encoder: _Ndjson | _Csv | _Parquet | None = None
    with marts.cursor(publish=publish) as cur:
        for day_start, day_end in _day_windows(cur, where):
            sql, params = replace(where, start=day_start, end=day_end).where()
            # A relation's reader streams; a DB-API result would be copied whole first.
            query = (
                f"SELECT {COLUMNS} FROM warehouse.analytics.fct_events"
                f" WHERE {sql} ORDER BY timestamp, uuid"
            )
            batches = cur.sql(query, params=params).to_arrow_reader(batch_rows)
            if encoder is None:
                encoder = ENCODERS[fmt](batches.schema)
            for batch in batches:
                chunk = encoder.encode(batch)
                if chunk:
                    yield chunk
    if encoder is not None and (tail := encoder.finish()):
        yield tail


class ExportResponse(StreamingResponse):
    """A streamed export that, when :class:`ExportAborted` ends it, leaves its chunked body
    without the last chunk: uvicorn then closes the connection, and the client sees the body is
    incomplete instead of taking a cut export for a whole one."""

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except ExportAborted:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
