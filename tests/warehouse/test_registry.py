import sqlite3

import pytest

from warehouse.layout import Layout
from warehouse.registry import Registry, hash_key


def test_create_key_creates_org_and_project_by_name_and_reuses_them(layout: Layout) -> None:
    with Registry.open(layout) as registry:
        first = registry.create_key("acme", "web", "write")
        second = registry.create_key("acme", "web", "rw")
        other = registry.create_key("acme", "mobile", "write")
        foreign = registry.create_key("globex", "web", "write")

    assert first.key.startswith("loom_analytics_write_")
    assert second.key.startswith("loom_analytics_rw_")
    assert first.record.org_id == second.record.org_id == other.record.org_id
    assert first.record.org_id.startswith("org_") and len(first.record.org_id) == 16
    assert first.record.project_id == second.record.project_id
    # Project ids are global integers, distinct across orgs and projects.
    ids = [first.record.project_id, other.record.project_id, foreign.record.project_id]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 3
    assert foreign.record.org_id != first.record.org_id


def test_only_a_hash_of_each_key_is_stored(layout: Layout) -> None:
    with Registry.open(layout) as registry:
        new = registry.create_key("acme", "web", "rw")
        assert registry.lookup(new.key) == new.record

    stored = sqlite3.connect(layout.registry_path).execute("SELECT * FROM api_keys").fetchall()
    flat = [str(value) for row in stored for value in row]
    assert hash_key(new.key) in flat
    assert not any(new.key in value for value in flat)
    for path in layout.data_dir.glob("registry.sqlite3*"):
        assert new.key.encode() not in path.read_bytes()


def test_lookup_of_unknown_key_and_revocation(layout: Layout) -> None:
    with Registry.open(layout) as registry:
        new = registry.create_key("acme", "web", "write")
        assert registry.lookup("loom_analytics_write_nope") is None
        assert not registry.lookup(new.key).revoked

        revoked = registry.revoke(new.record.key_id)

        assert revoked is not None and revoked.revoked
        assert registry.lookup(new.key).revoked
        assert registry.revoke("key_missing") is None
        # Revoking by the key itself works too and keeps the first revocation time.
        assert registry.revoke(new.key).revoked_at == revoked.revoked_at


def test_keys_lists_every_key_and_kinds_decide_reading(layout: Layout) -> None:
    with Registry.open(layout) as registry:
        write = registry.create_key("acme", "web", "write")
        rw = registry.create_key("acme", "web", "rw")
        listed = registry.keys()

    assert [record.key_id for record in listed] == [write.record.key_id, rw.record.key_id]
    assert [record.hint for record in listed] == [write.key[-4:], rw.key[-4:]]
    assert (write.record.can_read, rw.record.can_read) == (False, True)


def test_invalid_kind_and_names_are_rejected(layout: Layout) -> None:
    with Registry.open(layout) as registry:
        with pytest.raises(ValueError, match="unknown key kind"):
            registry.create_key("acme", "web", "admin")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="org name"):
            registry.create_key(" ", "web", "write")
        assert registry.keys() == []


def test_projects_of_an_org(layout: Layout) -> None:
    with Registry.open(layout) as registry:
        web = registry.ensure_project("acme", "web")
        mobile = registry.ensure_project("acme", "mobile")
        registry.ensure_project("globex", "web")

        assert registry.projects(web.org_id) == [web, mobile]
        assert registry.project(mobile.project_id) == mobile
        assert registry.project(999) is None
        assert registry.ensure_org("acme").org_id == web.org_id
