"""The alert rule routes on a real uvicorn server: a rule round-trips; a bad rule (an unknown
metric, a threshold out of range, a URL that is not http(s) or is aimed at the API itself, at
loopback or at a metadata address) is a 400 naming the field, with nothing stored; keys and
tenancy as on every read route."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from ingest_api.main import create_app
from ingest_api.server import uvicorn_config
from tests.ingest_api.ingest.utils.server import wait_healthy
from tests.utils.alerts import CRASH_FREE_PRODUCTION
from tests.utils.network import free_port
from warehouse.layout import Layout
from warehouse.registry import Registry
from warehouse.settings import Settings

RULE = {**CRASH_FREE_PRODUCTION, "webhook_url": "http://10.20.30.40:8080/loom"}  # private: allowed


@dataclass(frozen=True)
class Api:
    base_url: str
    port: int
    project_id: int
    rw: dict[str, str]
    write: dict[str, str]
    other_org: dict[str, str]
    other_project_id: int

    def alerts(self, project_id: int | None = None) -> str:
        return f"{self.base_url}/api/projects/{project_id or self.project_id}/alerts"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("alerts") / "data", port=free_port())
    with Registry.open(Layout.from_settings(settings)) as registry:
        rw = registry.create_key("acme", "web", "rw")
        write = registry.create_key("acme", "web", "write")
        other = registry.create_key("globex", "shop", "rw")
    server = uvicorn.Server(uvicorn_config(settings, app=create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://{settings.host}:{settings.port}"
    wait_healthy(base_url)

    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    yield Api(
        base_url,
        settings.port,
        rw.record.project_id,
        bearer(rw.key),
        bearer(write.key),
        bearer(other.key),
        other.record.project_id,
    )
    server.should_exit = True
    thread.join(timeout=15)


def test_a_rule_is_created_listed_and_deleted(api: Api) -> None:
    created = httpx.post(api.alerts(), json=RULE, headers=api.rw)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["state"] == "ok" and rule["value"] is None and rule["id"].startswith("alr_")
    # Defaults filled in: crash-free rates alert below, and resolve at the last threshold.
    assert (rule["threshold_type"], rule["resolve_threshold"]) == ("below", 99.0)
    assert httpx.get(api.alerts(), headers=api.rw).json()["alerts"] == [rule]
    assert httpx.get(f"{api.alerts()}/history", headers=api.rw).json() == {"history": []}

    assert httpx.delete(f"{api.alerts()}/{rule['id']}", headers=api.rw).status_code == 204
    assert httpx.get(api.alerts(), headers=api.rw).json()["alerts"] == []
    assert httpx.delete(f"{api.alerts()}/{rule['id']}", headers=api.rw).status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"metric": "crash_rate"}, "metric", "literal_error"),
        ({"critical_threshold": 120}, "critical_threshold", "threshold_out_of_range"),
        ({"warning_threshold": 95}, "warning_threshold", "threshold_order"),
        ({"webhook_url": "ftp://hooks.example.com/x"}, "webhook_url", "webhook_url"),
        ({"webhook_url": "http://169.254.169.254/latest/meta-data"}, "webhook_url", "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:9/hook"}, "webhook_url", "webhook_url"),
        ({"webhook_url": "http://no-such-host.invalid/hook"}, "webhook_url", "webhook_url"),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_field_and_nothing_is_stored(
    api: Api, change: dict, field: str, kind: str
) -> None:
    response = httpx.post(api.alerts(), json={**RULE, **change}, headers=api.rw)
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == (field, kind)
    assert "nothing was stored" in response.json()["detail"]
    assert httpx.get(api.alerts(), headers=api.rw).json()["alerts"] == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_webhook_aimed_at_the_api_itself_is_refused(api: Api, host: str) -> None:
    url = f"http://{host}:{api.port}/api/projects/{api.project_id}/alerts"
    response = httpx.post(api.alerts(), json={**RULE, "webhook_url": url}, headers=api.rw)
    assert response.status_code == 400
    assert "Loom API itself" in response.json()["errors"][0]["reason"]
    assert httpx.get(api.alerts(), headers=api.rw).json()["alerts"] == []


def test_rules_need_an_rw_key_of_the_projects_org(api: Api) -> None:
    assert httpx.get(api.alerts()).status_code == 401
    assert httpx.post(api.alerts(), json=RULE, headers=api.write).status_code == 403
    assert httpx.get(api.alerts(), headers=api.other_org).status_code == 404
    assert httpx.post(api.alerts(), json=RULE, headers=api.other_org).status_code == 404
    created = httpx.post(api.alerts(), json=RULE, headers=api.rw).json()
    gone = httpx.delete(f"{api.alerts()}/{created['id']}", headers=api.other_org)
    assert gone.status_code == 404
    # Another org's rules are its own.
    assert httpx.get(api.alerts(api.other_project_id), headers=api.other_org).json() == {
        "alerts": []
    }
    assert httpx.delete(f"{api.alerts()}/{created['id']}", headers=api.rw).status_code == 204


def test_a_method_the_path_does_not_take_names_every_method_it_does(api: Api) -> None:
    response = httpx.request("PUT", api.alerts(), json=RULE, headers=api.rw)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, POST"
