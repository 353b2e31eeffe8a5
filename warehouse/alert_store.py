"""Alert rules, their state and history, kept beside the API keys (:mod:`warehouse.registry`).

They live where the keys live, so every host sees the same: a SQLite file in the data directory,
or schema ``loom`` of a PostgreSQL catalog's database. Three tables:

* ``alert_rules``: each rule, its current state and the value it was last judged on;
* ``alert_events``: every change of state (``alert.triggered`` / ``alert.resolved``) with the
  body its webhook and its Server-Sent Event carry; the read API relays new ones to the project's
  live stream by their growing ``event_id``;
* ``alert_deliveries``: one per event with a webhook, with its attempts and their outcome.

A state change is recorded in one transaction with its event and its delivery, and only if the
rule still had the state it was judged from: judging the same publish twice, or two evaluators at
once, notify once.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from warehouse.alert_rules import MAX_RULES_PER_PROJECT, AlertRule
from warehouse.layout import Layout
from warehouse.registry import Database, PostgresDatabase, Registry


def _schema(serial: str) -> list[str]:
    return [
        """
        CREATE TABLE IF NOT EXISTS alert_rules (
            rule_id         TEXT PRIMARY KEY,
            org_id          TEXT NOT NULL,
            project_id      BIGINT NOT NULL REFERENCES projects (project_id),
            definition      TEXT NOT NULL,
            state           TEXT NOT NULL,
            value           DOUBLE PRECISION,
            release         TEXT,
            environment     TEXT,
            total_sessions  BIGINT,
            snapshot_id     BIGINT,
            evaluated_at    TEXT,
            changed_at      TEXT,
            created_at      TEXT NOT NULL,
            deleted_at      TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS alert_rules_by_project ON alert_rules (project_id)",
        f"""
        CREATE TABLE IF NOT EXISTS alert_events (
            event_id        {serial},
            rule_id         TEXT NOT NULL REFERENCES alert_rules (rule_id),
            org_id          TEXT NOT NULL,
            project_id      BIGINT NOT NULL,
            name            TEXT NOT NULL,
            previous_state  TEXT NOT NULL,
            state           TEXT NOT NULL,
            payload         TEXT NOT NULL,
            created_at      TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS alert_events_by_project ON alert_events (project_id, event_id)",
        f"""
        CREATE TABLE IF NOT EXISTS alert_deliveries (
            delivery_id     {serial},
            event_id        BIGINT NOT NULL REFERENCES alert_events (event_id),
            url             TEXT NOT NULL,
            status          TEXT NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_outcome    TEXT,
            delivered_at    TEXT,
            created_at      TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS alert_deliveries_due"
        " ON alert_deliveries (status, next_attempt_at)",
        "CREATE INDEX IF NOT EXISTS alert_deliveries_by_event ON alert_deliveries (event_id)",
    ]


SQLITE_SCHEMA = _schema("INTEGER PRIMARY KEY AUTOINCREMENT")
POSTGRES_SCHEMA = _schema("BIGSERIAL PRIMARY KEY")
# A delivery is attempted this many times (then ``failed``), the waits growing threefold.
MAX_ATTEMPTS = 5
BACKOFF_FACTOR = 3
RULE_COLUMNS = (
    "rule_id, org_id, project_id, definition, state, value, release, environment, total_sessions,"
    " snapshot_id, evaluated_at, changed_at, created_at"
)
DELIVERY_COLUMNS = (
    "d.delivery_id, d.event_id, d.url, d.status, d.attempts, d.next_attempt_at, d.last_outcome,"
    " d.delivered_at"
)


def timestamp(moment: datetime) -> str:
    """Stored times: UTC ISO 8601 with microseconds, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoredRule:
    rule_id: str
    org_id: str
    project_id: int
    rule: AlertRule
    state: str
    value: float | None  # None: not judged yet, or no release had enough sessions
    release: str | None
    environment: str | None
    total_sessions: int | None
    snapshot_id: int | None  # the publish it was last evaluated on
    evaluated_at: str | None
    changed_at: str | None
    created_at: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            "project_id": self.project_id,
            **self.rule.model_dump(),
            "state": self.state,
            "value": self.value,
            "value_release": self.release,
            "value_environment": self.environment,
            "value_sessions": self.total_sessions,
            "evaluated_snapshot_id": self.snapshot_id,
            "evaluated_at": self.evaluated_at,
            "state_changed_at": self.changed_at,
            "created_at": self.created_at,
        }


def _rule(row: tuple) -> StoredRule:
    rule_id, org_id, project_id, definition, *rest = row
    return StoredRule(rule_id, org_id, project_id, AlertRule.model_validate_json(definition), *rest)


@dataclass(frozen=True)
class Judgement:
    """A rule's evaluation on one publish: its value (None when not judged) and new state."""

    state: str
    value: float | None
    release: str | None
    environment: str | None
    total_sessions: int | None


@dataclass(frozen=True)
class AlertEvent:
    event_id: int
    org_id: str
    project_id: int
    name: str  # alert.triggered | alert.resolved
    payload: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    delivery_id: int
    event_id: int
    url: str
    status: str  # pending | delivered | failed | canceled
    attempts: int
    next_attempt_at: str | None
    last_outcome: str | None
    delivered_at: str | None
    payload: dict[str, Any] | None = None  # with due deliveries: what to post

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_outcome": self.last_outcome,
            "delivered_at": self.delivered_at,
        }


class AlertStore:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._created = False

    @property
    def _db(self) -> Database:
        """The registry's database, with the alert tables (created on first use: a PostgreSQL
        server down when the API starts must not stop it from starting)."""
        db = self._registry.database
        if not self._created:
            postgres = isinstance(db, PostgresDatabase)
            with db.transaction():
                for statement in POSTGRES_SCHEMA if postgres else SQLITE_SCHEMA:
                    db.query(statement)
            self._created = True
        return db

    @classmethod
    @contextmanager
    def open(cls, layout: Layout) -> Iterator[AlertStore]:
        """The store of ``layout``'s registry, for a process that does not keep one open."""
        with Registry.open(layout) as registry:
            yield cls(registry)

    # Rules.

    def create_rule(self, org_id: str, project_id: int, rule: AlertRule) -> StoredRule:
        """Store ``rule``; ValueError when the project has as many rules as it may."""
        rule_id = f"alr_{secrets.token_hex(6)}"
        with self._db.transaction():
            [(count,)] = self._db.query(
                "SELECT count(*) FROM alert_rules WHERE project_id = ? AND deleted_at IS NULL",
                [project_id],
            )
            if count >= MAX_RULES_PER_PROJECT:
                raise ValueError(
                    f"the project has {count} alert rules, the most it may have; delete one first"
                )
            self._db.query(
                "INSERT INTO alert_rules (rule_id, org_id, project_id, definition, state,"
                " created_at) VALUES (?, ?, ?, ?, 'ok', ?)",
                [rule_id, org_id, project_id, rule.model_dump_json(), timestamp(now())],
            )
        stored = self.rule(project_id, rule_id)
        assert stored is not None
        return stored

    def rule(self, project_id: int, rule_id: str) -> StoredRule | None:
        rows = self._db.query(
            f"SELECT {RULE_COLUMNS} FROM alert_rules"
            " WHERE project_id = ? AND rule_id = ? AND deleted_at IS NULL",
            [project_id, rule_id],
        )
        return _rule(rows[0]) if rows else None

    def rules(self, project_id: int) -> list[StoredRule]:
        rows = self._db.query(
            f"SELECT {RULE_COLUMNS} FROM alert_rules"
            " WHERE project_id = ? AND deleted_at IS NULL ORDER BY created_at, rule_id",
            [project_id],
        )
        return [_rule(row) for row in rows]

    def rules_behind(self, snapshot_id: int) -> list[StoredRule]:
        """Every rule not yet evaluated on publish ``snapshot_id``."""
        rows = self._db.query(
            f"SELECT {RULE_COLUMNS} FROM alert_rules WHERE deleted_at IS NULL"
            " AND (snapshot_id IS NULL OR snapshot_id < ?) ORDER BY project_id, rule_id",
            [snapshot_id],
        )
        return [_rule(row) for row in rows]

    def delete_rule(self, project_id: int, rule_id: str) -> bool:
        """Delete a rule (its history stays) and cancel its pending deliveries."""
        with self._db.transaction():
            deleted = self._db.query(
                "UPDATE alert_rules SET deleted_at = ? WHERE project_id = ? AND rule_id = ?"
                " AND deleted_at IS NULL RETURNING rule_id",
                [timestamp(now()), project_id, rule_id],
            )
            self._db.query(
                "UPDATE alert_deliveries SET status = 'canceled', next_attempt_at = NULL"
                " WHERE status = 'pending' AND event_id IN"
                " (SELECT event_id FROM alert_events WHERE rule_id = ?)",
                [rule_id],
            )
        return bool(deleted)

    # Evaluations and their events.

    def record(
        self,
        stored: StoredRule,
        snapshot_id: int,
        judgement: Judgement,
        payload: dict[str, Any] | None,
    ) -> AlertEvent | None:
        """Record ``stored``'s evaluation on ``snapshot_id``; with ``payload`` (a change of
        state) also its event and webhook delivery. Nothing, and None, when the rule changed
        state or was deleted since it was read."""
        at = timestamp(now())
        changed = judgement.state != stored.state
        with self._db.transaction():
            updated = self._db.query(
                "UPDATE alert_rules SET state = ?, value = ?, release = ?, environment = ?,"
                " total_sessions = ?, snapshot_id = ?, evaluated_at = ?,"
                " changed_at = CASE WHEN ? THEN ? ELSE changed_at END"
                " WHERE rule_id = ? AND state = ? AND deleted_at IS NULL RETURNING rule_id",
                [
                    judgement.state,
                    judgement.value,
                    judgement.release,
                    judgement.environment,
                    judgement.total_sessions,
                    snapshot_id,
                    at,
                    changed,
                    at,
                    stored.rule_id,
                    stored.state,
                ],
            )
            if not updated or not changed or payload is None:
                return None
            name = "alert.resolved" if judgement.state == "resolved" else "alert.triggered"
            [(event_id,)] = self._db.query(
                "INSERT INTO alert_events (rule_id, org_id, project_id, name, previous_state,"
                " state, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
                [
                    stored.rule_id,
                    stored.org_id,
                    stored.project_id,
                    name,
                    stored.state,
                    judgement.state,
                    orjson.dumps(payload).decode(),
                    at,
                ],
            )
            if stored.rule.webhook_url is not None:
                self._db.query(
                    "INSERT INTO alert_deliveries (event_id, url, status, next_attempt_at,"
                    " created_at) VALUES (?, ?, 'pending', ?, ?)",
                    [event_id, stored.rule.webhook_url, at, at],
                )
        return AlertEvent(event_id, stored.org_id, stored.project_id, name, payload)

    def last_event_id(self) -> int:
        [(newest,)] = self._db.query("SELECT coalesce(max(event_id), 0) FROM alert_events")
        return newest

    def events_after(self, event_id: int, limit: int = 500) -> list[AlertEvent]:
        rows = self._db.query(
            "SELECT event_id, org_id, project_id, name, payload FROM alert_events"
            " WHERE event_id > ? ORDER BY event_id LIMIT ?",
            [event_id, limit],
        )
        return [AlertEvent(*row[:4], orjson.loads(row[4])) for row in rows]

    def history(
        self, project_id: int, rule_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The project's changes of state, newest first, each with its webhook delivery."""
        clauses, params = ["e.project_id = ?"], [project_id]
        if rule_id is not None:
            clauses.append("e.rule_id = ?")
            params.append(rule_id)
        events = self._db.query(
            f"SELECT e.event_id, e.rule_id, e.name, e.previous_state, e.state, e.payload,"
            f" e.created_at FROM alert_events e WHERE {' AND '.join(clauses)}"
            " ORDER BY e.event_id DESC LIMIT ?",
            [*params, limit],
        )
        ids = [row[0] for row in events]
        deliveries: dict[int, Delivery] = {}
        if ids:
            marks = ", ".join("?" * len(ids))
            for row in self._db.query(
                f"SELECT {DELIVERY_COLUMNS} FROM alert_deliveries d WHERE d.event_id IN ({marks})",
                ids,
            ):
                deliveries[row[1]] = Delivery(*row)
        return [
            {
                "event_id": event_id,
                "rule_id": rule,
                "event": name,
                "previous_state": previous,
                "state": state,
                "at": created_at,
                "body": orjson.loads(payload),
                "webhook": deliveries[event_id].as_json() if event_id in deliveries else None,
            }
            for event_id, rule, name, previous, state, payload, created_at in events
        ]

    # Webhook deliveries.

    def due_deliveries(self, limit: int) -> list[Delivery]:
        rows = self._db.query(
            f"SELECT {DELIVERY_COLUMNS}, e.payload FROM alert_deliveries d"
            " JOIN alert_events e USING (event_id)"
            " WHERE d.status = 'pending' AND d.next_attempt_at <= ?"
            " ORDER BY d.next_attempt_at, d.delivery_id LIMIT ?",
            [timestamp(now()), limit],
        )
        return [Delivery(*row[:8], payload=orjson.loads(row[8])) for row in rows]

    def record_attempt(
        self, delivery: Delivery, outcome: str, delivered: bool, retry: bool, retry_base_s: float
    ) -> Delivery:
        """Record one attempt's outcome: delivered, retried later (the wait grows threefold each
        time), or given up after :data:`MAX_ATTEMPTS` or an answer retrying cannot change."""
        attempts = delivery.attempts + 1
        at = now()
        next_attempt_at = None
        if delivered:
            status = "delivered"
        elif retry and attempts < MAX_ATTEMPTS:
            status = "pending"
            wait = retry_base_s * BACKOFF_FACTOR ** (attempts - 1)
            next_attempt_at = timestamp(at + timedelta(seconds=wait))
        else:
            status = "failed"
        delivered_at = timestamp(at) if delivered else None
        self._db.query(
            "UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
            " last_outcome = ?, delivered_at = ? WHERE delivery_id = ? AND status = 'pending'",
            [status, attempts, next_attempt_at, outcome, delivered_at, delivery.delivery_id],
        )
        return Delivery(
            delivery.delivery_id,
            delivery.event_id,
            delivery.url,
            status,
            attempts,
            next_attempt_at,
            outcome,
            delivered_at,
            delivery.payload,
        )
