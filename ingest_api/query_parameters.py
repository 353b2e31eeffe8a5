"""Unknown query parameters on GET routes are a 400 naming them.

A typo (``evironment=staging``) would otherwise be ignored and answer for every environment, as if
the filter had been applied. :func:`known_query_parameters_only` is a dependency of the whole app
(``create_app``), so every GET route has it, a route added later included: each route's
parameters are read from its own signature and dependencies. POST routes keep ignoring what they
do not read: PostHog SDKs add query parameters of their own (``ver``, ``_``, ``compression``)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


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
