"""Unknown query parameters on GET routes are a 400 naming them, and so is text holding a control
character in a GET route's query or path.

A typo (``evironment=staging``) would otherwise be ignored and answer for every environment, as if
the filter had been applied. :func:`known_query_parameters_only` is a dependency of the whole app
(``create_app``), so every GET route has it, a route added later included: each route's
parameters are read from its own signature and dependencies. POST routes keep ignoring what they
do not read: PostHog SDKs add query parameters of their own (``ver``, ``_``, ``compression``).

A control character can match no stored value (warehouse/streams.py), and a NUL in a filter
constant fails DuckLake's file pruning (a 500): :func:`no_control_characters`, also app-wide,
refuses them, and :func:`stating_text_rules` says so in the OpenAPI of every text parameter."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from warehouse.streams import CONTROL_CHARACTERS, TEXT_PATTERN

CONTROL_CHARACTER = re.compile(f"[{CONTROL_CHARACTERS}]")


def query_parameter_names(dependant: Dependant) -> frozenset[str]:
    """The names of the query parameters a route reads, through all its dependencies."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


# By route object (routes are not hashable), holding the route so that its id is never reused.
_KNOWN: dict[int, tuple[APIRoute, frozenset[str]]] = {}


def _known(route: APIRoute) -> frozenset[str]:
    entry = _KNOWN.get(id(route))
    if entry is None:
        entry = _KNOWN[id(route)] = (route, query_parameter_names(route.dependant))
    return entry[1]


def unknown_parameter_errors(sent: Iterable[str], known: frozenset[str]) -> list[dict]:
    """Validation errors as pydantic reports them (errors.py words them), one per unknown name."""
    takes = ", ".join(sorted(known)) or "none"
    return [
        {
            "type": "unknown_parameter",
            "loc": ("query", name),
            "msg": f"unknown query parameter {name!r}; this route takes: {takes}",
            "input": None,
        }
        for name in dict.fromkeys(sent)  # each once, in the order sent
        if name not in known
    ]


async def known_query_parameters_only(request: Request) -> None:
    if request.method != "GET" or not request.query_params:
        return
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        errors = unknown_parameter_errors(request.query_params.keys(), _known(route))
        if errors:
            raise RequestValidationError(errors)


async def no_control_characters(request: Request) -> None:
    if request.method != "GET":
        return
    sent = [
        *(("path", name, value) for name, value in request.path_params.items()),
        *(("query", name, value) for name, value in request.query_params.multi_items()),
    ]
    errors = []
    for where, name, value in sent:
        found = CONTROL_CHARACTER.search(str(value))
        if found:
            errors.append(
                {
                    "type": "control_character",
                    "loc": (where, name),
                    "msg": f"holds the control character U+{ord(found.group()):04X}, which no "
                    "stored value holds",
                    "input": None,
                }
            )
    if errors:
        raise RequestValidationError(errors)


def stating_text_rules(openapi: dict[str, Any]) -> dict[str, Any]:
    """``openapi`` with :data:`TEXT_PATTERN` on every text parameter of a GET route that states
    no pattern, format or values of its own (in place, and idempotent)."""
    for operations in openapi.get("paths", {}).values():
        for parameter in operations.get("get", {}).get("parameters", []):
            for schema in _schemas_within(parameter.get("schema", {})):
                plain_text = schema.get("type") == "string" and not (
                    {"pattern", "format", "enum", "const"} & schema.keys()
                )
                if plain_text:
                    schema["pattern"] = TEXT_PATTERN
    return openapi


def _schemas_within(schema: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """A parameter's schema and those of its alternatives and list items, where text may be."""
    yield schema
    for alternative in schema.get("anyOf", []):
        yield from _schemas_within(alternative)
    if isinstance(schema.get("items"), dict):
        yield from _schemas_within(schema["items"])
