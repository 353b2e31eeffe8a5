"""``/api/projects/{project_id}/alerts``: create, list and delete a project's alert rules, and
read their history. An rw key of the project's org, like every read route; another org's project
is a 404."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from ingest_api.read import READ_ERRORS
from ingest_api.read.deps import LiveProjectScope
from ingest_api.read.rendering import JsonResponse
from warehouse.alert_rules import AlertRule
from warehouse.alert_store import AlertStore
from warehouse.webhooks import WebhookPolicy, WebhookRefused


class SharedPathRoute(APIRoute):
    """``/alerts`` is two routes, GET and POST. For a method neither takes, Starlette answers
    405 with the first route's methods only (``Allow: POST``); this names every method the path
    takes, as HTTP asks (and the OpenAPI contract test checks)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            methods = {
                m for route in router.routes if route.path == self.path for m in route.methods
            }
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(methods))})
        await super().handle(scope, receive, send)


router = APIRouter(
    prefix="/api/projects", tags=["alerts"], responses=READ_ERRORS, route_class=SharedPathRoute
)


def _store(request: Request) -> AlertStore:
    return request.app.state.alerts


async def refuse_unsafe_webhook(request: Request, url: str) -> None:
    """A 400 naming ``webhook_url`` when it may not be posted to (warehouse/webhooks.py): not
    http(s), aimed at this API, or at loopback, link-local or metadata addresses."""
    policy = WebhookPolicy.from_settings(request.app.state.settings)
    if request.url.hostname:
        default = 443 if request.url.scheme == "https" else 80
        policy = policy.also_reached_at(request.url.hostname, request.url.port or default)
    try:
        # Resolving the host may wait on DNS: off the event loop.
        await asyncio.to_thread(policy.check, url)
    except WebhookRefused as refused:
        error = {
            "type": "webhook_url",
            "loc": ("body", "webhook_url"),
            "msg": f"webhook_url refused: {refused}",
            "input": url,
        }
        raise RequestValidationError([error]) from None


@router.post("/{project_id}/alerts", status_code=201)
async def create_alert(reader: LiveProjectScope, rule: AlertRule, request: Request) -> JsonResponse:
    """Create a rule; it is judged after the next publish. Bad rules are 400s naming the field,
    with nothing stored."""
    if rule.webhook_url is not None:
        await refuse_unsafe_webhook(request, rule.webhook_url)
    try:
        stored = _store(request).create_rule(reader.org_id, reader.project_id, rule)
    except ValueError as error:
        raise HTTPException(409, str(error)) from None
    return JsonResponse(stored.as_json(), status_code=201)


@router.get("/{project_id}/alerts")
async def list_alerts(reader: LiveProjectScope, request: Request) -> JsonResponse:
    """The project's rules, each with its state and the value it was last judged on."""
    rules = _store(request).rules(reader.project_id)
    return JsonResponse({"alerts": [rule.as_json() for rule in rules]})


@router.get("/{project_id}/alerts/history")
async def alert_history(
    reader: LiveProjectScope,
    request: Request,
    rule_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JsonResponse:
    """Changes of state, newest first, each with the body sent and its webhook delivery
    (attempts, outcome)."""
    history: list[dict[str, Any]] = _store(request).history(reader.project_id, rule_id, limit)
    return JsonResponse({"history": history})


@router.delete("/{project_id}/alerts/{rule_id}", status_code=204)
async def delete_alert(reader: LiveProjectScope, rule_id: str, request: Request) -> Response:
    """Delete a rule: it is judged no more and its pending deliveries are canceled; its history
    stays."""
    if not _store(request).delete_rule(reader.project_id, rule_id):
        raise HTTPException(404, f"alert rule {rule_id} not found")
    return Response(status_code=204)
