"""The module on a PostgreSQL store that several nodes share (a private server started by the
testkit's harness): two handles on one database see each other's writes, a follower of the
change feed is woken by a commit on the other handle, and one sync per directory applies at
a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List

import pytest

import usersync

from conftest import Slapd


def test_two_handles_share_one_user_base_and_one_feed(postgres_url: str) -> None:
    a = usersync.open(postgres_url)
    b = usersync.open(postgres_url)
    a.create_directory("py-nodes")
    assert "py-nodes" in [d["name"] for d in b.directories()]
    service_a = usersync.Service(a, require_token=False)
    service_b = usersync.Service(b, require_token=False)
    made = service_a.handle("POST", "/scim/v2/py-nodes/Users", body={"userName": "ann"})
    assert made.status == 201, made.json()
    read = service_b.handle("GET", f"/scim/v2/py-nodes/Users/{made.json()['id']}")
    assert read.status == 200 and read.json()["userName"] == "ann"
    assert service_b.handle("POST", "/scim/v2/py-nodes/Users", body={"userName": "ANN"}).status == 409

    last = b.events_after(0, limit=10_000)[-1]["seq"]
    started = time.monotonic()
    assert b.events_after(last, wait=0.2) == []
    assert time.monotonic() - started >= 0.19, "it waited"

    # A follower on node B, woken by a commit on node A.
    seen: List[str] = []

    def follow() -> None:
        seen.extend(e["id"] for e in b.events_after(last, wait=30))

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.2)
    bob = service_a.handle("POST", "/scim/v2/py-nodes/Users", body={"userName": "bob"}).json()
    follower.join(timeout=30)
    assert not follower.is_alive() and seen == [bob["id"]]
    with pytest.raises(usersync.ArgumentError, match="wait"):
        b.events_after(0, wait=-1)


def test_a_urls_password_stays_out_of_reprs(postgres_url: str) -> None:
    # The test server trusts the role: any password is let in, and must not be shown.
    with_password = postgres_url.replace("postgres://usersync@", "postgres://usersync:s3cret@", 1)
    assert with_password != postgres_url, postgres_url
    store = usersync.open(with_password)
    assert store.path == with_password and isinstance(store.path, str)
    shown = repr(store) + repr(usersync.Service(store))
    assert "s3cret" not in shown and "usersync:***@" in shown, shown
    assert usersync.open(store.path).directories() == store.directories()


def test_one_sync_of_a_directory_at_a_time(
    postgres_url: str, slapd: Slapd, tmp_path: Path
) -> None:
    # Names of their own: user names are unique across the session's shared database.
    slapd.add_people("pgnodes", ["pgann", "pgbob"])
    config = usersync.SyncConfig.from_file(slapd.config("py-corp", "pgnodes", tmp_path))
    node_a = usersync.open(postgres_url)
    node_b = usersync.open(postgres_url)
    first = usersync.plan(config, node_a)
    second = usersync.plan(config, node_b)

    # Node A applies while node B's progress callback runs inside its own apply: B's
    # callback tries A's plan, which must wait its turn.
    busy: List[usersync.SyncBusyError] = []

    def on_progress(done: int, total: int) -> None:
        if not busy:
            with pytest.raises(usersync.SyncBusyError) as caught:
                first.apply()
            busy.append(caught.value)

    report = second.apply(progress=on_progress)
    assert report.ok and report.applied == {"create": 2}
    assert busy and busy[0].kind == "syncBusy" and "py-corp" in str(busy[0])
    # The refused apply left no run; node A sees node B's work.
    assert [r["outcome"] for r in node_a.runs("py-corp")] == ["succeeded"]
    assert node_a.user_counts("py-corp") == {"active": 2, "inactive": 0}
    assert len(usersync.plan(config, node_a)) == 0
