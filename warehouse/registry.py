"""The registry of orgs, projects and API keys (SQLite at ``Layout.registry_path``).

Tenancy comes from here: a request's ``org_id`` and ``project_id`` are those of the key that sent
it. Keys are stored only as SHA-256 hashes. A plain hash (not a slow KDF) is enough because keys
are 128 random bits, not passwords a person chose: there is nothing to brute-force, and a fast
hash keeps the per-request lookup to one indexed read.

Org ids are generated strings (``org_<12 hex>``); project ids are global integers, because Sentry
DSNs and the release-health routes address a project by a number.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from warehouse.layout import Layout

KeyKind = Literal["write", "rw"]
KEY_KINDS: tuple[str, ...] = get_args(KeyKind)
KEY_PREFIX = "loom_analytics_"

SCHEMA = """
CREATE TABLE IF NOT EXISTS orgs (
    org_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    project_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      TEXT NOT NULL REFERENCES orgs (org_id),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL UNIQUE,
    hint        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('write', 'rw')),
    project_id  INTEGER NOT NULL REFERENCES projects (project_id),
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
"""

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
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _api_key(row: tuple) -> ApiKey:
    key_id, hint, kind, created_at, revoked_at, project_id, project_name, org_id, org_name = row
    return ApiKey(
        key_id, hint, kind, org_id, org_name, project_id, project_name, created_at, revoked_at
    )


class Registry:
    """One SQLite connection. WAL mode lets the API read while ``loom keys`` writes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The API opens it once at startup and uses it from the event loop only.
        self._con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA busy_timeout = 5000")
        self._con.execute("PRAGMA foreign_keys = ON")
        self._con.executescript(SCHEMA)

    @classmethod
    def open(cls, layout: Layout | None = None) -> Registry:
        return cls((layout or Layout.from_settings()).registry_path)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def ensure_org(self, name: str) -> Org:
        with self._transaction() as con:
            return self._ensure_org(con, name)

    def ensure_project(self, org_name: str, project_name: str) -> Project:
        """The project ``project_name`` of org ``org_name``, creating either when new."""
        with self._transaction() as con:
            return self._ensure_project(con, self._ensure_org(con, org_name), project_name)

    def project(self, project_id: int) -> Project | None:
        row = self._con.execute(
            "SELECT project_id, org_id, name FROM projects WHERE project_id = ?", [project_id]
        ).fetchone()
        return Project(*row) if row else None

    def projects(self, org_id: str) -> list[Project]:
        rows = self._con.execute(
            "SELECT project_id, org_id, name FROM projects WHERE org_id = ? ORDER BY project_id",
            [org_id],
        ).fetchall()
        return [Project(*row) for row in rows]

    def create_key(self, org_name: str, project_name: str, kind: KeyKind) -> NewKey:
        if kind not in KEY_KINDS:
            raise ValueError(f"unknown key kind {kind!r}; expected one of {', '.join(KEY_KINDS)}")
        key = generate_key(kind)
        key_id = f"key_{secrets.token_hex(6)}"
        with self._transaction() as con:
            project = self._ensure_project(con, self._ensure_org(con, org_name), project_name)
            con.execute(
                "INSERT INTO api_keys (key_id, key_hash, hint, kind, project_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [key_id, hash_key(key), key[-4:], kind, project.project_id, _now()],
            )
        record = self.key(key_id)
        assert record is not None
        return NewKey(key, record)

    def lookup(self, key: str) -> ApiKey | None:
        """The registered key, revoked or not; ``None`` when unknown."""
        row = self._con.execute(
            f"SELECT {KEY_COLUMNS} FROM {KEY_JOIN} WHERE k.key_hash = ?", [hash_key(key)]
        ).fetchone()
        return _api_key(row) if row else None

    def key(self, key_id: str) -> ApiKey | None:
        row = self._con.execute(
            f"SELECT {KEY_COLUMNS} FROM {KEY_JOIN} WHERE k.key_id = ?", [key_id]
        ).fetchone()
        return _api_key(row) if row else None

    def keys(self) -> list[ApiKey]:
        rows = self._con.execute(
            f"SELECT {KEY_COLUMNS} FROM {KEY_JOIN} ORDER BY k.rowid"
        ).fetchall()
        return [_api_key(row) for row in rows]

    def revoke(self, key_id_or_key: str) -> ApiKey | None:
        """Revoke by key id (as listed) or by the key itself; ``None`` when no such key."""
        record = self.key(key_id_or_key) or self.lookup(key_id_or_key)
        if record is None:
            return None
        with self._transaction() as con:
            con.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
                [_now(), record.key_id],
            )
        return self.key(record.key_id)

    @staticmethod
    def _ensure_org(con: sqlite3.Connection, name: str) -> Org:
        if not name.strip():
            raise ValueError("org name must not be empty")
        row = con.execute("SELECT org_id, name FROM orgs WHERE name = ?", [name]).fetchone()
        if row:
            return Org(*row)
        org = Org(f"org_{secrets.token_hex(6)}", name)
        con.execute("INSERT INTO orgs VALUES (?, ?, ?)", [org.org_id, org.name, _now()])
        return org

    @staticmethod
    def _ensure_project(con: sqlite3.Connection, org: Org, name: str) -> Project:
        if not name.strip():
            raise ValueError("project name must not be empty")
        row = con.execute(
            "SELECT project_id, org_id, name FROM projects WHERE org_id = ? AND name = ?",
            [org.org_id, name],
        ).fetchone()
        if row:
            return Project(*row)
        cursor = con.execute(
            "INSERT INTO projects (org_id, name, created_at) VALUES (?, ?, ?)",
            [org.org_id, name, _now()],
        )
        return Project(cursor.lastrowid, org.org_id, name)
