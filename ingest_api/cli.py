"""``loom serve``, ``loom keys …`` and ``loom bootstrap``."""

from __future__ import annotations

import json

import click

from ingest_api.server import serve as run_server
from warehouse.bootstrap import bootstrap_demo
from warehouse.layout import Layout
from warehouse.registry import KEY_KINDS, Registry
from warehouse.settings import get_settings


@click.command()
@click.option("--host", help="Interface to bind (default LOOM_HOST).")
@click.option("--port", type=int, help="Port (default LOOM_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the ingest API."""
    settings = get_settings()
    run_server(settings, host=host or settings.host, port=port or settings.port)


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--org", required=True, help="Org name or id; a new name creates the org.")
@click.option("--project", required=True, help="Project name; created in the org when new.")
@click.option(
    "--kind",
    type=click.Choice(KEY_KINDS),
    required=True,
    help="write: ingest only; rw: ingest and read.",
)
def create_key(org: str, project: str, kind: str) -> None:
    """Create a key. It is printed once and only its hash is stored."""
    with Registry.open() as registry:
        new = registry.create_key(org, project, kind)  # type: ignore[arg-type]
    record = new.record
    click.echo(f"key:        {new.key}")
    click.echo(f"key id:     {record.key_id}")
    click.echo(f"org:        {record.org_name} ({record.org_id})")
    click.echo(f"project:    {record.project_name} (project id {record.project_id})")
    click.echo("Store the key now: it cannot be shown again.", err=True)


@keys.command("list")
def list_keys() -> None:
    """List keys (ids and last characters only; keys themselves are not stored)."""
    with Registry.open() as registry:
        records = registry.keys()
    if not records:
        click.echo("no keys; create one with: loom keys create --org O --project P --kind write")
        return
    click.echo(
        f"{'key id':<17} {'kind':<5} {'key':<30} {'org':<24} {'project':<24} "
        f"{'created':<27} revoked"
    )
    for record in records:
        masked = f"{'loom_analytics_' + record.kind}_…{record.hint}"
        org = f"{record.org_name} ({record.org_id})"
        project = f"{record.project_name} ({record.project_id})"
        click.echo(
            f"{record.key_id:<17} {record.kind:<5} {masked:<30} {org:<24} {project:<24} "
            f"{record.created_at:<27} {record.revoked_at or '-'}"
        )


@keys.command("revoke")
@click.argument("key_id_or_key")
def revoke_key(key_id_or_key: str) -> None:
    """Revoke a key by its id (see `loom keys list`) or by the key itself."""
    with Registry.open() as registry:
        record = registry.revoke(key_id_or_key)
    if record is None:
        raise click.ClickException(f"no key {key_id_or_key!r}; see `loom keys list`")
    click.echo(f"revoked {record.key_id} at {record.revoked_at}")


@click.command()
def bootstrap() -> None:
    """Create (or reuse) the demo org, project and keys; print them and save them."""
    layout = Layout.from_settings()
    demo = bootstrap_demo(layout)
    click.echo(json.dumps(demo, indent=2))
    click.echo(f"saved to {layout.demo_keys_path}", err=True)
