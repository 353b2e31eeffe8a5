"""Load received hours of landing files into the warehouse's ``raw`` tables.

A load replaces its hours: it deletes the rows previously loaded for them and inserts their files
again, in one transaction, so rerunning it never duplicates a row and a failed load leaves the
previous state intact. dbt's staging models read ``raw.<stream>``.

**No record stops the load for the others.** A line that is not JSON, a value of another JSON
type than its column's (an object for a ``distinct_id``, ``true`` or ``"7"`` for an integer) or
that does not fit it (an ``error_count`` of 2^31), or a record that breaks the stream's rules
(:data:`warehouse.streams.RECORD_RULES`, the API's own: e.g. a ``distinct_id`` holding a NUL, a
``sample_rate`` of 1e-320 whose weight would be infinite) is moved to ``raw.quarantined_records``
with its file, line number and reason, and the rest of the hour loads. The common case costs one
``read_json`` over all the files; only a file that fails it, or holds a record that breaks a
rule, is read again line by line to find out which lines to quarantine. Quarantined rows of an
hour are replaced with the hour, so fixing a file and reloading its hour clears them
(docs/pipeline.md, "Quarantine").

**Every file read is in a ledger**, ``ops.loaded_files``, with its rows and received times. An
hourly load rewrites its hours' entries with the rows it replaces; a micro-batch
(:func:`load_new_files`) appends only the files of its hours that the ledger does not hold yet.
An entry stays *unbuilt* until a dbt build over a window holding its rows succeeds
(:func:`mark_built`): a micro-batch builds the window of every unbuilt entry
(:func:`unbuilt_window`), so rows a failed or killed batch loaded are built by the next one.

**Read as JSON, then typed.** Given a column type, ``read_json`` converts what it finds: an object
becomes its JSON text in a VARCHAR column, ``true`` becomes 1 and ``"7"`` 7 in an integer column,
and a timestamp's offset is dropped. So the load reads every column as JSON (timestamps as
TIMESTAMPTZ, which keeps their offsets) and types each value itself (:func:`_typed`), a value of
another JSON type being a misfit; both the fast path and the line-by-line one type values so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from warehouse.duck import connect_pipeline, transaction
from warehouse.layout import STREAMS, Layout, floor_hour, hour_of_dir, naive_utc
from warehouse.maintenance import ensure_lake_options
from warehouse.streams import (
    EVENT_TIME,
    RECORD_RULES,
    STREAM_COLUMNS,
    STREAM_KINDS,
    Choice,
    Integer,
    JsonObject,
    Kind,
    Number,
    Text,
    Timestamp,
)

LOAD_COLUMNS = {"_received_hour": "TIMESTAMP", "_file": "VARCHAR"}
# Of a batch row: whether every value fitted its column (else its file is read line by line), and
# whether the JSON of its text columns, and of its JSON columns, was printable ASCII without
# escapes (so it holds no control character).
CHECK_COLUMNS = {"_fits": "BOOLEAN", "_plain_text": "BOOLEAN", "_plain_json": "BOOLEAN"}
QUARANTINE_TABLE = "raw.quarantined_records"
QUARANTINE_COLUMNS = {
    "stream": "VARCHAR",
    "_received_hour": "TIMESTAMP",
    "_file": "VARCHAR",
    "line_number": "BIGINT",  # 1-based line of the landing file
    "reason": "VARCHAR",
    "record": "VARCHAR",  # the line as it was (undecodable bytes replaced), to fix and replay
    "quarantined_at": "TIMESTAMP",
}
SHOWN_VALUE_CHARS = 60
LEDGER_TABLE = "ops.loaded_files"
LEDGER_COLUMNS = {
    "stream": "VARCHAR",
    "_received_hour": "TIMESTAMP",
    "_file": "VARCHAR",
    "rows_loaded": "BIGINT",
    "records_quarantined": "BIGINT",
    "first_received_at": "TIMESTAMP",  # of its loaded rows; NULL when none loaded
    "last_received_at": "TIMESTAMP",
    "load_id": "VARCHAR",  # the run that read it
    "loaded_at": "TIMESTAMP",
    "built_at": "TIMESTAMP",  # when a dbt build covering its rows succeeded; NULL until then
}


@dataclass(frozen=True)
class StreamLoad:
    stream: str
    hours: tuple[datetime, ...]
    files_read: int
    rows_loaded: int
    rows_replaced: int
    late_records: int  # records whose own time lies before their received hour
    records_quarantined: int
    duration_s: float
    rows_by_hour: dict[datetime, int] = field(default_factory=dict)  # hours with rows only
    # The received times of the rows loaded (None when none were).
    first_received_at: datetime | None = None
    last_received_at: datetime | None = None
    # Files read again line by line (see the module's docstring): only those with a bad record.
    files_reread: int = 0


def ensure_raw_table(con: duckdb.DuckDBPyConnection, stream: str) -> None:
    """``raw.<stream>`` and the quarantine table, empty where nothing was loaded yet."""
    ensure_raw_tables(con, (stream,))


def ensure_raw_tables(con: duckdb.DuckDBPyConnection, streams: Iterable[str] = STREAMS) -> None:
    """The raw tables dbt's sources name (every stream's by default) and the quarantine table,
    empty where nothing was loaded yet, and the lake's write options (every run starts here).

    A backfill inserts millions of rows into a raw table at once, so raw tables are written one
    Parquet file per thread; the models' tables are not, as it made their inserts slower."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for stream in streams:
        columns = {**STREAM_COLUMNS[stream], **LOAD_COLUMNS}
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{stream} ({_ddl(columns)})")
    _add_new_columns(con, streams)
    con.execute(f"CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} ({_ddl(QUARANTINE_COLUMNS)})")
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ({_ddl(LEDGER_COLUMNS)})")
    ensure_lake_options(con, parallel_write_tables=[f"raw.{stream}" for stream in streams])


def _add_new_columns(con: duckdb.DuckDBPyConnection, streams: Iterable[str]) -> None:
    """Columns a stream gained since its raw table was created (streams only ever gain them),
    added empty; one catalog read, and a DDL commit only when one is missing."""
    existing: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'raw' AND table_catalog = current_database()"
    ).fetchall():
        existing.setdefault(table, set()).add(column)
    for stream in streams:
        for name, kind in STREAM_COLUMNS[stream].items():
            if name not in existing.get(stream, {name}):
                con.execute(f'ALTER TABLE raw.{stream} ADD COLUMN "{name}" {kind}')


def load_landed(layout: Layout) -> list[StreamLoad]:
    """Load every landed hour of every stream (a backfill of all there is), one read a stream."""
    with connect_pipeline(layout) as con:
        return [load_hours(con, layout, stream, layout.landed_hours(stream)) for stream in STREAMS]


def load_hour(
    con: duckdb.DuckDBPyConnection, layout: Layout, stream: str, hour: datetime
) -> StreamLoad:
    return load_hours(con, layout, stream, [hour])


def load_hours(
    con: duckdb.DuckDBPyConnection,
    layout: Layout,
    stream: str,
    hours: Iterable[datetime],
    load_id: str = "",
) -> StreamLoad:
    """Replace ``hours`` of ``raw.<stream>`` with their visible landing files, in one read."""
    started = time.perf_counter()
    hours = tuple(sorted({floor_hour(hour) for hour in hours}))
    files = [path for hour in hours for path in layout.hour_files(stream, hour)]
    ensure_raw_table(con, stream)
    quarantined, reread = _read_into_batch(con, stream, files)
    try:
        with transaction(con):
            # DuckDB answers a DELETE with the number of rows it deleted.
            (replaced,) = con.execute(
                f"DELETE FROM raw.{stream} WHERE _received_hour IN (SELECT unnest(?))",
                [list(hours)],
            ).fetchone()
            for table in (QUARANTINE_TABLE, LEDGER_TABLE):
                con.execute(
                    f"DELETE FROM {table}"
                    " WHERE stream = ? AND _received_hour IN (SELECT unnest(?))",
                    [stream, list(hours)],
                )
            load = _insert_batch(con, stream, files, load_id)
    finally:
        _drop_batch(con)
    return StreamLoad(
        stream,
        hours,
        len(files),
        rows_replaced=replaced,
        records_quarantined=quarantined,
        duration_s=time.perf_counter() - started,
        files_reread=reread,
        **load,
    )


def load_new_files(
    con: duckdb.DuckDBPyConnection,
    layout: Layout,
    stream: str,
    hours: Iterable[datetime],
    load_id: str,
) -> StreamLoad:
    """Append the visible landing files of ``hours`` that the ledger does not hold yet (a
    micro-batch), in one read; nothing loaded before is read or replaced again."""
    started = time.perf_counter()
    hours = tuple(sorted({floor_hour(hour) for hour in hours}))
    ensure_raw_table(con, stream)
    loaded = {
        name
        for (name,) in con.execute(
            f"SELECT _file FROM {LEDGER_TABLE}"
            " WHERE stream = ? AND _received_hour IN (SELECT unnest(?))",
            [stream, list(hours)],
        ).fetchall()
    }
    visible = [path for hour in hours for path in layout.hour_files(stream, hour)]
    files = [path for path in visible if str(path) not in loaded]
    quarantined, reread = _read_into_batch(con, stream, files)
    try:
        with transaction(con):
            load = _insert_batch(con, stream, files, load_id)
    finally:
        _drop_batch(con)
    return StreamLoad(
        stream,
        hours,
        len(files),
        rows_replaced=0,
        records_quarantined=quarantined,
        duration_s=time.perf_counter() - started,
        files_reread=reread,
        **load,
    )


def unbuilt_window(con: duckdb.DuckDBPyConnection) -> tuple[datetime, datetime] | None:
    """The received-time window, in whole seconds, holding every loaded row no dbt build has
    covered yet; None when there is none."""
    [(first, last)] = con.execute(
        f"SELECT min(first_received_at), max(last_received_at) FROM {LEDGER_TABLE}"
        " WHERE built_at IS NULL AND rows_loaded > 0"
    ).fetchall()
    if first is None:
        return None
    return first.replace(microsecond=0), last.replace(microsecond=0) + timedelta(seconds=1)


def mark_built(con: duckdb.DuckDBPyConnection, window: tuple[datetime, datetime]) -> None:
    """Record that a dbt build over ``window`` succeeded: the entries whose rows all lie in it
    (and those without rows) are built."""
    con.execute(
        f"""
        UPDATE {LEDGER_TABLE} SET built_at = now()::TIMESTAMP
        WHERE built_at IS NULL
            AND (rows_loaded = 0 OR (first_received_at >= ? AND last_received_at < ?))
        """,
        [naive_utc(window[0]), naive_utc(window[1])],
    )


def record_raw_rows(con: duckdb.DuckDBPyConnection, stream: str, load_id: str) -> None:
    """Ledger entries, built, for the files of ``raw.<stream>`` rows that came in another way
    than a load (``loom upgrade`` copies raw tables whole and builds them), so a later
    micro-batch neither loads those files nor builds their rows again."""
    con.execute(
        f"""
        INSERT INTO {LEDGER_TABLE}
        SELECT ?, _received_hour, _file, count(*), 0, min(received_at), max(received_at), ?,
            now()::TIMESTAMP, now()::TIMESTAMP
        FROM raw.{stream}
        WHERE _file NOT IN (SELECT _file FROM {LEDGER_TABLE} WHERE stream = ?)
        GROUP BY _received_hour, _file
        """,
        [stream, load_id, stream],
    )


def newest_built(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest received time of the rows dbt has built: what a publish reflects."""
    [(newest,)] = con.execute(
        f"SELECT max(last_received_at) FROM {LEDGER_TABLE} WHERE built_at IS NOT NULL"
    ).fetchall()
    return newest


def _insert_batch(
    con: duckdb.DuckDBPyConnection, stream: str, files: Sequence[Path], load_id: str
) -> dict[str, object]:
    """Insert ``loom_batch`` and ``loom_quarantine`` and the ledger entries of ``files`` (within
    the caller's transaction); what was loaded, for :class:`StreamLoad`."""
    names = ", ".join(f'"{name}"' for name in {**STREAM_COLUMNS[stream], **LOAD_COLUMNS})
    event_time = EVENT_TIME[stream]
    loaded, late, first, last = con.execute(
        f'SELECT count(*), count(*) FILTER (WHERE "{event_time}" < _received_hour),'
        " min(received_at), max(received_at) FROM loom_batch"
    ).fetchone()
    # Only what has rows: an INSERT of none still writes an empty Parquet file into a table with
    # per-thread output (DuckLake 1.5.5), one a micro-batch for every quiet stream.
    if loaded:
        con.execute(f"INSERT INTO raw.{stream} ({names}) SELECT {names} FROM loom_batch")
    if con.execute("SELECT count(*) FROM loom_quarantine").fetchone()[0]:
        con.execute(f"INSERT INTO {QUARANTINE_TABLE} SELECT * FROM loom_quarantine")
    if files:
        _record_files(con, stream, files, load_id)
    rows_by_hour = dict(
        con.execute("SELECT _received_hour, count(*) FROM loom_batch GROUP BY ALL").fetchall()
    )
    return {
        "rows_loaded": loaded,
        "late_records": late,
        "rows_by_hour": rows_by_hour,
        "first_received_at": first,
        "last_received_at": last,
    }


def _record_files(
    con: duckdb.DuckDBPyConnection, stream: str, files: Sequence[Path], load_id: str
) -> None:
    """The ledger entries of ``files``, read into ``loom_batch``/``loom_quarantine``: one per
    file, those with no loadable row included."""
    con.execute(
        f"""
        INSERT INTO {LEDGER_TABLE}
        WITH read AS (SELECT unnest($files) AS _file, unnest($hours) AS _received_hour),
        loaded AS (
            SELECT _file, count(*) AS rows_loaded, min(received_at) AS first_received_at,
                max(received_at) AS last_received_at
            FROM loom_batch GROUP BY _file
        ),
        quarantined AS (SELECT _file, count(*) AS records FROM loom_quarantine GROUP BY _file)
        SELECT $stream, read._received_hour, read._file, coalesce(loaded.rows_loaded, 0),
            coalesce(quarantined.records, 0), loaded.first_received_at, loaded.last_received_at,
            $load_id, now()::TIMESTAMP, NULL
        FROM read
        LEFT JOIN loaded USING (_file)
        LEFT JOIN quarantined USING (_file)
        """,
        {
            "files": [str(path) for path in files],
            "hours": [hour_of_dir(path.parent) for path in files],
            "stream": stream,
            "load_id": load_id,
        },
    )


def _drop_batch(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS loom_batch")
    con.execute("DROP TABLE IF EXISTS loom_quarantine")


def _read_into_batch(
    con: duckdb.DuckDBPyConnection, stream: str, files: Sequence[Path]
) -> tuple[int, int]:
    """Fill temp tables ``loom_batch`` (loadable rows) and ``loom_quarantine``; returns how many
    records were quarantined, and how many files were read again line by line."""
    columns = STREAM_COLUMNS[stream]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE loom_batch"
        f" ({_ddl({**columns, **LOAD_COLUMNS, **CHECK_COLUMNS})})"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE loom_quarantine ({_ddl(QUARANTINE_COLUMNS)})")
    if not files:
        return 0, 0
    suspects: list[Path] = []
    try:
        _append_files(con, stream, files)
    except duckdb.Error:
        # Some file does not parse or does not fit the columns: load the others whole, then
        # find the offending lines of the ones that fail.
        con.execute("DELETE FROM loom_batch")
        for path in files:
            try:
                _append_files(con, stream, [path])
            except duckdb.Error:
                suspects.append(path)
    broken_rules = [
        Path(name)
        for (name,) in con.execute(
            "SELECT DISTINCT _file FROM loom_batch"
            f" WHERE NOT _fits OR NOT ({_batch_rules_hold(stream)})"
        ).fetchall()
    ]
    if broken_rules:
        con.execute(
            "DELETE FROM loom_batch WHERE _file IN (SELECT unnest(?))",
            [[str(path) for path in broken_rules]],
        )
        suspects.extend(broken_rules)
    for path in suspects:
        _append_line_by_line(con, stream, path)
    (count,) = con.execute("SELECT count(*) FROM loom_quarantine").fetchone()
    return count, len(suspects)


def _append_files(con: duckdb.DuckDBPyConnection, stream: str, files: Sequence[Path]) -> None:
    kinds = STREAM_KINDS[stream]
    typed = ", ".join(f'{_typed(name, kind)} AS "{name}"' for name, kind in kinds.items())
    received_hours = {str(path): hour_of_dir(path.parent) for path in files}
    # Without hive_partitioning, the org_id a record holds is the one loaded, not its folder's
    # name (which DuckDB would otherwise read as a column and put in its place).
    con.execute(
        f"""
        INSERT INTO loom_batch
        SELECT {typed}, hours.received_hour, source.filename, {_all_fit(kinds)},
            {_all_plain(kinds, Text)}, {_all_plain(kinds, JsonObject)}
        FROM read_json(
            $files, format = 'newline_delimited', columns = $columns, filename = true,
            hive_partitioning = false
        ) AS source
        JOIN (SELECT unnest($files) AS path, unnest($hours) AS received_hour) AS hours
            ON hours.path = source.filename
        """,
        {
            "files": list(received_hours),
            "columns": _read_types(kinds),
            "hours": list(received_hours.values()),
        },
    )


def _read_types(kinds: dict[str, Kind]) -> dict[str, str]:
    """How ``read_json`` reads each column: as JSON, to check its JSON type, but timestamps,
    which it reads strictly (a number or a boolean fails) as TIMESTAMPTZ, keeping an offset, and
    choices, which it reads as text: any other JSON value then breaks their rule (not one of)."""
    return {name: _read_type(kind) for name, kind in kinds.items()}


def _read_type(kind: Kind) -> str:
    match kind:
        case Timestamp():
            return "TIMESTAMPTZ"
        case Choice():
            return "VARCHAR"
        case _:
            return "JSON"


def _typed(name: str, kind: Kind) -> str:
    """SQL: column ``name``, read as :func:`_read_types` reads it, as a value of ``kind``, when it
    fits (:func:`_fits`; else the value means nothing: its record is quarantined)."""
    value = f'"{name}"'
    match kind:
        case Text():
            return f"{value} ->> '$'"
        case Integer():
            return (
                f"CASE WHEN json_type({value}) IN ('BIGINT', 'UBIGINT')"
                f" THEN TRY_CAST({value}::VARCHAR AS {kind.sql_type}) END"
            )
        case Number():
            return (
                f"CASE WHEN json_type({value}) IN ('DOUBLE', 'BIGINT', 'UBIGINT')"
                f" THEN TRY_CAST({value}::VARCHAR AS DOUBLE) END"
            )
        case Timestamp():
            # The UTC time, by arithmetic: a cast would go through ICU's calendar for each value.
            # Infinities have no epoch: cast, they break the range rule.
            return (
                f"CASE WHEN isfinite({value}) THEN make_timestamp(epoch_us({value}))"
                f" ELSE {value}::TIMESTAMP END"
            )
        case Choice() | JsonObject():
            return value


def _fits(name: str, kind: Kind) -> str | None:
    """SQL: whether column ``name``'s value is of its JSON type and fits ``kind`` (NULL, missing
    or JSON null, fits); None where reading it tells already (a timestamp that does not fit fails
    ``read_json``, any JSON fits JSON, a choice's rule refuses any other value)."""
    value = f'"{name}"'
    match kind:
        case Text():
            return f"({value} IS NULL OR starts_with({value}, '\"'))"
        case Integer() | Number():
            return f"({value} IS NULL OR {_typed(name, kind)} IS NOT NULL)"
        case _:
            return None


def _all_fit(kinds: dict[str, Kind]) -> str:
    checked = [fits for name, kind in kinds.items() if (fits := _fits(name, kind)) is not None]
    return " AND ".join(checked) or "true"


def _all_plain(kinds: dict[str, Kind], of: type[Text | JsonObject]) -> str:
    """SQL: whether the JSON of every column ``of`` a kind is printable ASCII without escapes: a
    cheap proof that none holds a control character (JSON escapes every C0 one), which spares
    most rows the regular expressions that look. One text of them all: a function call per
    value costs more."""
    names = [f'"{name}"' for name, kind in kinds.items() if isinstance(kind, of)]
    if not names:
        return "true"
    text = f"concat({', '.join(names)})"
    return (
        f"(NOT contains({text}, '\\') AND NOT contains({text}, chr(127))"
        f" AND strlen({text}) = length({text}))"
    )


def _append_line_by_line(con: duckdb.DuckDBPyConnection, stream: str, path: Path) -> None:
    """Load what can be loaded of one file and quarantine each line that cannot, with why."""
    kinds = STREAM_KINDS[stream]
    lines = _split_lines(path.read_bytes())
    structure = orjson.dumps(_read_types(kinds)).decode()
    con.register("loom_lines", pa.Table.from_pylist(lines, schema=LINES_SCHEMA))
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE loom_parsed AS
            SELECT
                line_number,
                line,
                problem,
                -- functions see every row, whatever a surrounding if() says: feed them NULL
                json_transform(if(problem IS NULL, line, NULL), '{structure}') AS parsed
            FROM (
                SELECT
                    line_number,
                    line,
                    coalesce(
                        decode_error,
                        if(is_json, NULL, 'not valid JSON'),
                        if(json_type(if(is_json, line, NULL)) = 'OBJECT', NULL,
                            'not a JSON object but ' || lower(json_type(if(is_json, line, NULL))))
                    ) AS problem
                FROM (SELECT *, json_valid(line) AS is_json FROM loom_lines)
            )
            """,
        )
    finally:
        con.unregister("loom_lines")
    flattened = ", ".join(f'(parsed)."{name}" AS "{name}"' for name in kinds)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE loom_read AS
        SELECT line_number, line, {flattened} FROM loom_parsed WHERE problem IS NULL
        """
    )
    unfit = ", ".join(
        reason for name, kind in kinds.items() if (reason := _misfit_reason(name, kind))
    )
    typed = ", ".join(f'{_typed(name, kind)} AS "{name}"' for name, kind in kinds.items())
    received_hour = hour_of_dir(path.parent)
    # A line's problems, in order: it is no record at all; a value does not fit its column;
    # the record breaks a rule. Only the first kind found is reported.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE loom_fitted AS
        SELECT line_number, line, nullif(concat_ws('; ', {unfit}), '') AS unfit, {typed}
        FROM loom_read
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE loom_checked AS
        SELECT * EXCLUDE (unfit),
            coalesce(unfit, nullif(concat_ws('; ', {_rule_reasons(stream)}), '')) AS problem
        FROM loom_fitted
        UNION ALL BY NAME
        SELECT line_number, line, problem FROM loom_parsed WHERE problem IS NOT NULL
        """
    )
    names = ", ".join(f'"{name}"' for name in kinds)
    con.execute(
        f"INSERT INTO loom_batch SELECT {names}, ?::TIMESTAMP, ?, true, true, true"
        " FROM loom_checked"
        " WHERE problem IS NULL",
        [received_hour, str(path)],
    )
    con.execute(
        """
        INSERT INTO loom_quarantine
        SELECT ?, ?::TIMESTAMP, ?, line_number, problem, line, now()::TIMESTAMP
        FROM loom_checked WHERE problem IS NOT NULL
        """,
        [stream, received_hour, str(path)],
    )
    for table in ("loom_parsed", "loom_read", "loom_fitted", "loom_checked"):
        con.execute(f"DROP TABLE {table}")


def _misfit_reason(name: str, kind: Kind) -> str | None:
    """SQL over a line and its values read by ``json_transform``: why the value of ``name`` does
    not fit ``kind``, or NULL; None where the value fits whatever it is (JSON, a choice: its rule
    says what is wrong). ``json_transform`` gives NULL for a timestamp that does not fit."""
    path = f"'$.\"{name}\"'"
    if isinstance(kind, Timestamp):
        misfit = f"json_type(line, {path}) <> 'NULL' AND \"{name}\" IS NULL"
    elif (fits := _fits(name, kind)) is not None:
        misfit = f"NOT {fits}"
    else:
        return None
    shown = f"left(line -> {path}, {SHOWN_VALUE_CHARS})"
    return f"CASE WHEN {misfit} THEN '{name}: ' || {shown} || ' does not fit {kind.sql_type}' END"


LINES_SCHEMA = pa.schema(
    [("line_number", pa.int64()), ("line", pa.string()), ("decode_error", pa.string())]
)


def _split_lines(content: bytes) -> list[dict[str, object]]:
    """Every non-empty line with its 1-based number; bytes that are not UTF-8 are replaced and
    the line marked, since such a line cannot be a record."""
    lines = []
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            text, error = raw.decode(), None
        except UnicodeDecodeError as problem:
            text = raw.decode(errors="replace")
            error = f"not UTF-8 text (byte {problem.start})"
        lines.append({"line_number": number, "line": text, "decode_error": error})
    return lines


def _batch_rules_hold(stream: str) -> str:
    """SQL over a batch row: whether it meets every rule, those that refuse only control
    characters being looked at only when its text is not plain."""
    return " AND ".join(
        f"CASE WHEN _plain_{rule.control_characters_in} THEN true"
        f" ELSE coalesce({rule.predicate}, false) END"
        if rule.control_characters_in
        else f"coalesce({rule.predicate}, false)"
        for rule in RECORD_RULES[stream]
    )


def _rule_reasons(stream: str) -> str:
    """SQL expressions, one per rule, naming the rule when a row breaks it (else NULL)."""
    return ", ".join(
        f"CASE WHEN NOT coalesce({rule.predicate}, false) THEN '{rule.column}: {rule.reason}' END"
        for rule in RECORD_RULES[stream]
    )


def _ddl(columns: dict[str, str]) -> str:
    return ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
