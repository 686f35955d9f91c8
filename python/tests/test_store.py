"""`usersync.open`: directories and tokens, users and groups read lazily, counts and the
change feed, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest

import usersync


def provision(db: Path, directory: str, users: int) -> usersync.Service:
    service = usersync.Service(db, require_token=False)
    for i in range(users):
        made = service.handle(
            "POST",
            f"/scim/v2/{directory}/Users",
            body={"userName": f"user{i:03}", "active": i % 4 != 0, "emails": [{"value": f"u{i}@example.com", "type": "work"}]},
        )
        assert made.status == 201, made.json()
    return service


def test_directories_and_their_tokens(db: Path) -> None:
    store = usersync.open(db)
    created = store.create_directory("acme")
    assert created["kind"] == "scim" and created["endpoint"] == "/scim/v2/acme"
    first = created["token"]
    assert first and first.startswith("usersync_")
    assert store.create_directory("corp", "ldap")["token"] is None
    assert [d["name"] for d in store.directories()] == ["acme", "corp"]
    with pytest.raises(usersync.UniquenessError):
        store.create_directory("acme")
    with pytest.raises(usersync.ArgumentError, match="unknown directory kind"):
        store.create_directory("x", "okta")

    service = usersync.Service(store)
    def status(token: str) -> int:
        return service.handle(
            "GET", "/scim/v2/acme/Users", headers={"Authorization": f"Bearer {token}"}
        ).status

    rotated = store.rotate_token("acme")
    assert rotated["token"] != first
    assert status(first) == status(rotated["token"]) == 200
    old = min(t["id"] for t in store.tokens("acme"))
    store.revoke_token("acme", old)
    assert (status(first), status(rotated["token"])) == (401, 200)
    # Tokens are kept as hashes only.
    assert all("token" not in t for t in store.tokens("acme"))


def test_a_directory_that_keeps_password_hashes_checks_sign_ins(db: Path) -> None:
    store = usersync.open(db)
    token = store.create_directory(
        "okta", keep_password_hashes=True, user_name_scope="directory", retention_days=7, strict=True
    )["token"]
    store.create_directory("entra")
    settings = {d["name"]: d for d in store.directories()}
    assert (settings["okta"]["keepPasswordHashes"], settings["okta"]["userNameScope"], settings["okta"]["strict"]) == (True, "directory", True)
    assert (settings["entra"]["keepPasswordHashes"], settings["entra"]["retentionDays"]) == (False, 30)
    with pytest.raises(usersync.ArgumentError, match="unknown user_name_scope"):
        store.create_directory("x", user_name_scope="world")

    service = usersync.Service(store)
    made = service.handle(
        "POST",
        "/scim/v2/okta/Users",
        headers={"Authorization": f"Bearer {token}"},
        body={"userName": "jdoe", "password": "s3cret Pa55"},
    )
    assert made.status == 201 and "password" not in made.json()
    assert store.verify_password("okta", "JDoe", "s3cret Pa55") == made.json()["id"]
    assert store.verify_password("okta", "jdoe", "s3cret pa55") is None
    assert store.verify_password("okta", "nobody", "s3cret Pa55") is None
    with pytest.raises(usersync.NotFoundError):
        store.verify_password("nowhere", "jdoe", "x")
    with pytest.raises(usersync.ArgumentError, match="does not keep password hashes"):
        store.verify_password("entra", "jdoe", "x")


def test_users_are_read_lazily_in_pages(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    service = provision(db, "acme", 7)
    pages = store.users("acme", page_size=3)
    assert pages.total() == 7
    first = next(pages)
    # A change between pages neither repeats nor skips what is left (RFC 9865 cursors).
    doomed = next(store.users("acme", 'userName eq "user005"'))
    service.handle("DELETE", f"/scim/v2/acme/Users/{doomed['id']}")
    rest = [u["userName"] for u in pages]
    assert [first["userName"], *rest] == [f"user{i:03}" for i in (0, 1, 2, 3, 4, 6)]


def test_searching_with_a_scim_filter(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    provision(db, "acme", 12)
    active = [u["userName"] for u in store.users("acme", "active eq true", page_size=5)]
    assert len(active) == 9 and "user000" not in active
    assert [u["userName"] for u in store.users("acme", 'emails.value sw "u11@"')] == ["user011"]
    with pytest.raises(usersync.FilterError) as caught:
        store.users("acme", "active gt true")
    assert caught.value.position == 0
    with pytest.raises(usersync.NotFoundError):
        store.users("nowhere")
    with pytest.raises(usersync.ArgumentError):
        store.users("acme", page_size=0)
    assert list(store.groups("acme")) == []


def test_get_counts_and_the_change_feed(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    service = provision(db, "acme", 4)
    user = next(store.users("acme", 'userName eq "user001"'))
    assert store.get_user("acme", user["id"]) == user
    assert "password" not in user and user["meta"]["resourceType"] == "User"
    assert store.get_user("acme", "no-such-id") is None
    with pytest.raises(usersync.NotFoundError):
        store.get_user("nowhere", user["id"])
    group = service.handle(
        "POST", "/scim/v2/acme/Groups", body={"displayName": "staff", "members": [{"value": user["id"]}]}
    ).json()
    read = store.get_group("acme", group["id"])
    assert read is not None and read["members"][0]["value"] == user["id"]
    assert store.user_counts("acme") == {"active": 3, "inactive": 1}

    events = store.events_after(0)
    assert [e["seq"] for e in events] == list(range(1, 6))
    assert [e["type"] for e in events] == ["User"] * 4 + ["Group"]
    assert {e["directory"] for e in events} == {"acme"}
    assert store.events_after(events[2]["seq"], limit=1)[0]["seq"] == events[3]["seq"]
    assert store.events_after(events[-1]["seq"]) == []
    with pytest.raises(usersync.ArgumentError):
        store.events_after(0, limit=0)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(usersync.StoreError) as caught:
        usersync.open(bad)
    assert isinstance(caught.value, OSError) and caught.value.kind == "storeBackend"
    assert bad.read_text().startswith("these are my notes")


def test_an_in_memory_database() -> None:
    # SQLite's `:memory:`: one private database for the handle, reads included.
    store = usersync.open(":memory:")
    store.create_directory("acme")
    made = usersync.Service(store, require_token=False).handle(
        "POST", "/scim/v2/acme/Users", body={"userName": "ann"}
    )
    assert made.status == 201
    assert [u["userName"] for u in store.users("acme")] == ["ann"]
    assert usersync.open(":memory:").directories() == []


def test_users_past_the_retention_are_purged(tmp_path: Path) -> None:
    store = usersync.open(tmp_path / "purge.db")
    store.create_directory("gone", retention_days=0)
    store.create_directory("kept", retention_days=30)
    service = usersync.Service(store, require_token=False)
    for directory in ("gone", "kept"):
        made = service.handle(
            "POST", f"/scim/v2/{directory}/Users", body={"userName": f"{directory}-1", "active": False}
        )
        assert made.status == 201, made.json()
    assert store.purge_inactive("kept") == {}
    assert store.purge_inactive() == {"gone": 1}
    assert store.user_counts("gone") == {"active": 0, "inactive": 0}
    assert store.user_counts("kept") == {"active": 0, "inactive": 1}
    with pytest.raises(usersync.NotFoundError):
        store.purge_inactive("nowhere")


def test_an_id_that_is_not_one_path_segment_names_nothing(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    service = provision(db, "acme", 1)
    made = service.handle("POST", "/scim/v2/acme/Groups", body={"displayName": "staff"})
    assert made.status == 201, made.json()
    # Not the collection (""), nor the search endpoint, nor a path resolved elsewhere.
    for not_an_id in ["", ".", "..", ".search", "a/b", "a?b", "a#b", "a\0b"]:
        assert store.get_user("acme", not_an_id) is None, not_an_id
        assert store.get_group("acme", not_an_id) is None, not_an_id


def test_integers_out_of_range_are_argument_errors(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    calls: List[Tuple[str, Callable[[], object]]] = [
        ("page_size", lambda: store.users("acme", page_size=-1)),
        ("page_size", lambda: store.groups("acme", page_size=2**64)),
        ("seq", lambda: store.events_after(-1)),
        ("seq", lambda: store.events_after(2**64)),
        ("limit", lambda: store.events_after(0, limit=2**200)),
        ("limit", lambda: store.runs("acme", limit=-(2**200))),
        ("retention_days", lambda: store.create_directory("x", retention_days=-1)),
        ("retention_days", lambda: store.create_directory("x", retention_days=2**32)),
        ("token_id", lambda: store.revoke_token("acme", 2**63)),
        ("max_results", lambda: usersync.Service(store, max_results=-1)),
        ("max_payload", lambda: usersync.Service(store, max_payload=2**64)),
    ]
    for name, call in calls:
        with pytest.raises(usersync.ArgumentError, match=f"`{name}` must be an integer from"):
            call()
    assert [d["name"] for d in store.directories()] == ["acme"]
    # What is no integer at all is still a TypeError.
    not_an_int: Any = 2.5
    with pytest.raises(TypeError):
        store.users("acme", page_size=not_an_int)
