"""The registry of orgs, projects and API keys.

Tenancy comes from here: a request's ``org_id`` and ``project_id`` are those of the key that sent
it. Keys are stored only as SHA-256 hashes. A plain hash (not a slow KDF) is enough because keys
are 128 random bits, not passwords a person chose: there is nothing to brute-force, and a fast
hash keeps the per-request lookup to one indexed read.

It lives where the lake's catalog lives, so every host that reads the lake knows the same keys:
a SQLite file in the data directory beside a SQLite catalog (``Layout.registry_path``), or
schema ``loom`` of the PostgreSQL database of a PostgreSQL catalog (``LOOM_LAKE_CATALOG``).

Org ids are generated strings (``org_<12 hex>``); project ids are global integers, because Sentry
DSNs and the release-health routes address a project by a number.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from warehouse.layout import Layout

KeyKind = Literal["write", "rw"]
KEY_KINDS: tuple[str, ...] = get_args(KeyKind)
KEY_PREFIX = "loom_analytics_"


def _schema(project_id_column: str) -> list[str]:
    return [
        """
        CREATE TABLE IF NOT EXISTS orgs (
            org_id      TEXT PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            created_at  TEXT NOT NULL
        )""",
        f"""
        CREATE TABLE IF NOT EXISTS projects (
            project_id  {project_id_column},
            org_id      TEXT NOT NULL REFERENCES orgs (org_id),
            name        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            UNIQUE (org_id, name)
        )""",
        """
        CREATE TABLE IF NOT EXISTS api_keys (
            key_id      TEXT PRIMARY KEY,
            key_hash    TEXT NOT NULL UNIQUE,
            hint        TEXT NOT NULL,
            kind        TEXT NOT NULL CHECK (kind IN ('write', 'rw')),
            project_id  INTEGER NOT NULL REFERENCES projects (project_id),
            created_at  TEXT NOT NULL,
            revoked_at  TEXT
        )""",
    ]


SQLITE_SCHEMA = _schema("INTEGER PRIMARY KEY AUTOINCREMENT")
POSTGRES_SCHEMA = ["CREATE SCHEMA IF NOT EXISTS loom", *_schema("BIGSERIAL PRIMARY KEY")]


class RegistryUnavailable(RuntimeError):
    """The registry's database cannot be reached (its PostgreSQL server is down)."""


class Database(Protocol):
    """The little of a database the registry needs; statements use ``?`` placeholders."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]: ...

    def transaction(self) -> Any: ...  # a context manager

    def close(self) -> None: ...


class SqliteDatabase:
    """One SQLite connection. WAL mode lets the API read while ``loom keys`` writes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The API opens it once at startup and uses it from the event loop only.
        self._con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA busy_timeout = 5000")
        self._con.execute("PRAGMA foreign_keys = ON")
        for statement in SQLITE_SCHEMA:
            self._con.execute(statement)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._con.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def close(self) -> None:
        self._con.close()


class PostgresDatabase:
    """One PostgreSQL connection (psycopg), opened on first use and reopened when the server
    dropped it; while the server cannot be reached, :class:`RegistryUnavailable`."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._con: Any = None

    def _connection(self) -> Any:
        import psycopg  # imported here: only a PostgreSQL catalog needs it

        if self._con is None or self._con.closed:
            try:
                self._con = psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    options="-c search_path=loom",
                    connect_timeout=5,
                )
                with self._con.transaction():
                    for statement in POSTGRES_SCHEMA:
                        self._con.execute(statement)
            except psycopg.OperationalError as error:
                self._con = None
                raise RegistryUnavailable(
                    f"the key registry (PostgreSQL) cannot be reached: {error}".strip()
                ) from None
        return self._con

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        import psycopg

        statement = sql.replace("?", "%s")
        try:
            return self._run(statement, params)
        except psycopg.OperationalError:
            self.close()  # the server dropped the connection (a restart): reopen it once
        try:
            return self._run(statement, params)
        except psycopg.OperationalError as error:
            self.close()
            raise RegistryUnavailable(
                f"the key registry (PostgreSQL) cannot be reached: {error}".strip()
            ) from None

    def _run(self, statement: str, params: Sequence[Any]) -> list[tuple]:
        cursor = self._connection().execute(statement, params)
        return cursor.fetchall() if cursor.description else []

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._connection().transaction():
            yield

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


KEY_COLUMNS = """
    k.key_id, k.hint, k.kind, k.created_at, k.revoked_at,
    p.project_id, p.name, o.org_id, o.name
"""
KEY_JOIN = """
    api_keys k JOIN projects p USING (project_id) JOIN orgs o USING (org_id)
"""


@dataclass(frozen=True)
class Org:
    org_id: str
    name: str


@dataclass(frozen=True)
class Project:
    project_id: int
    org_id: str
    name: str


@dataclass(frozen=True)
class ApiKey:
    """A registered key as the API sees it once authenticated; never holds the key itself."""

    key_id: str
    hint: str  # the key's last characters, to tell keys apart in listings
    kind: KeyKind
    org_id: str
    org_name: str
    project_id: int
    project_name: str
    created_at: str
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def can_read(self) -> bool:
        return self.kind == "rw"


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once, never stored
    record: ApiKey


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(kind: KeyKind) -> str:
    return f"{KEY_PREFIX}{kind}_{secrets.token_hex(16)}"


def _now() -> str:
    # Microseconds: keys are listed in the order they were created.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _api_key(row: tuple) -> ApiKey:
    key_id, hint, kind, created_at, revoked_at, project_id, project_name, org_id, org_name = row
    return ApiKey(
        key_id, hint, kind, org_id, org_name, project_id, project_name, created_at, revoked_at
    )


class Registry:
    def __init__(self, database: Database) -> None:
        self._db = database

    @classmethod
    def open(cls, layout: Layout | None = None) -> Registry:
        """The registry beside ``layout``'s lake catalog."""
        layout = layout or Layout.from_settings()
        lake = layout.lake
        if lake.catalog_kind == "postgres":
            return cls(PostgresDatabase(lake.catalog.removeprefix("postgres:")))
        return cls(SqliteDatabase(layout.registry_path))

    def close(self) -> None:
        self._db.close()

    @property
    def database(self) -> Database:
        """The database it lives in, for the other shared state kept beside it (alert rules)."""
        return self._db

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def ensure_org(self, name: str) -> Org:
        with self._db.transaction():
            return self._ensure_org(name)

    def ensure_project(self, org_name: str, project_name: str) -> Project:
        """The project ``project_name`` of org ``org_name``, creating either when new."""
        with self._db.transaction():
            return self._ensure_project(self._ensure_org(org_name), project_name)

    def project(self, project_id: int) -> Project | None:
        rows = self._db.query(
            "SELECT project_id, org_id, name FROM projects WHERE project_id = ?", [project_id]
        )
        return Project(*rows[0]) if rows else None

    def projects(self, org_id: str) -> list[Project]:
        rows = self._db.query(
            "SELECT project_id, org_id, name FROM projects WHERE org_id = ? ORDER BY project_id",
            [org_id],
        )
        return [Project(*row) for row in rows]

    def create_key(self, org_name: str, project_name: str, kind: KeyKind) -> NewKey:
        if kind not in KEY_KINDS:
            raise ValueError(f"unknown key kind {kind!r}; expected one of {', '.join(KEY_KINDS)}")
        key = generate_key(kind)
        key_id = f"key_{secrets.token_hex(6)}"
        with self._db.transaction():
            project = self._ensure_project(self._ensure_org(org_name), project_name)
            self._db.query(
                "INSERT INTO api_keys (key_id, key_hash, hint, kind, project_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [key_id, hash_key(key), key[-4:], kind, project.project_id, _now()],
            )
        record = self.key(key_id)
        assert record is not None
        return NewKey(key, record)

    def lookup(self, key: str) -> ApiKey | None:
        """The registered key, revoked or not; ``None`` when unknown."""
        rows = self._db.query(
            f"SELECT {KEY_COLUMNS} FROM {KEY_JOIN} WHERE k.key_hash = ?", [hash_key(key)]
        )
        return _api_key(rows[0]) if rows else None

    def key(self, key_id: str) -> ApiKey | None:
        rows = self._db.query(f"SELECT {KEY_COLUMNS} FROM {KEY_JOIN} WHERE k.key_id = ?", [key_id])
        return _api_key(rows[0]) if rows else None

    def keys(self) -> list[ApiKey]:
        rows = self._db.query(
            f"SELECT {KEY_COLUMNS} FROM {KEY_JOIN} ORDER BY k.created_at, k.key_id"
        )
        return [_api_key(row) for row in rows]

    def revoked_among(self, key_ids: Iterable[str]) -> dict[str, str]:
        """Which of ``key_ids`` are revoked, with when: one indexed read however many."""
        ids = sorted(set(key_ids))
        if not ids:
            return {}
        marks = ", ".join("?" * len(ids))
        rows = self._db.query(
            f"SELECT key_id, revoked_at FROM api_keys"
            f" WHERE key_id IN ({marks}) AND revoked_at IS NOT NULL",
            ids,
        )
        return dict(rows)

    def revoke(self, key_id_or_key: str) -> ApiKey | None:
        """Revoke by key id (as listed) or by the key itself; ``None`` when no such key."""
        record = self.key(key_id_or_key) or self.lookup(key_id_or_key)
        if record is None:
            return None
        with self._db.transaction():
            self._db.query(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
                [_now(), record.key_id],
            )
        return self.key(record.key_id)

    def _ensure_org(self, name: str) -> Org:
        """The org named ``name``, or whose id is ``name`` (data generated or landed for an
        org id must be readable with a key of that org), created under that name when new."""
        if not name.strip():
            raise ValueError("org name must not be empty")
        rows = self._db.query(
            "SELECT org_id, name FROM orgs WHERE org_id = ? UNION ALL"
            " SELECT org_id, name FROM orgs WHERE name = ?",
            [name, name],
        )
        if rows:
            return Org(*rows[0])
        org = Org(f"org_{secrets.token_hex(6)}", name)
        self._db.query("INSERT INTO orgs VALUES (?, ?, ?)", [org.org_id, org.name, _now()])
        return org

    def _ensure_project(self, org: Org, name: str) -> Project:
        if not name.strip():
            raise ValueError("project name must not be empty")
        rows = self._db.query(
            "SELECT project_id, org_id, name FROM projects WHERE org_id = ? AND name = ?",
            [org.org_id, name],
        )
        if rows:
            return Project(*rows[0])
        [(project_id,)] = self._db.query(
            "INSERT INTO projects (org_id, name, created_at) VALUES (?, ?, ?) RETURNING project_id",
            [org.org_id, name, _now()],
        )
        return Project(project_id, org.org_id, name)
