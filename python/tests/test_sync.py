"""LDAP syncs from Python against a real slapd: a plan of typed changes, its apply, the
thresholds that block a destructive plan, conflicts, bad configurations and dead servers."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from typing import Callable, List, Tuple, Type

import pytest

import usersync

from conftest import Slapd


def test_plan_then_apply(slapd: Slapd, db: Path, tmp_path: Path) -> None:
    slapd.add_people("planning", ["ann", "bob", "cid"], group="staff")
    config = usersync.SyncConfig.from_file(slapd.config("corp", "planning", tmp_path))
    assert config.directory == "corp"
    store = usersync.open(db)

    plan = usersync.plan(config, store)
    assert plan.summary() == {"create": 4, "add_members": 1}
    assert len(plan) == 5 and plan.blocked == [] and plan.incomplete == []
    changes = list(plan)
    assert all(isinstance(c, usersync.Change) for c in changes)
    ann = next(c for c in changes if c.name == "ann")
    assert (ann.action, ann.kind, ann.id, ann.destructive) == ("create", "User", None, False)
    assert ann.anchor and ann.reason
    staff = next(c for c in changes if c.action == "add_members")
    assert staff.name == "staff" and staff.kind == "Group"
    assert sorted(m["name"] for m in staff.members) == ["ann", "bob", "cid"]
    assert plan[0].name == changes[0].name and plan[-1].name == changes[-1].name
    with pytest.raises(IndexError):
        plan[5]
    # Past 64 bits too, as a list says it.
    with pytest.raises(IndexError):
        plan[2**70]
    with pytest.raises(IndexError):
        plan[-(2**70)]
    assert json.loads(plan.to_json())["summary"] == {"create": 4, "add_members": 1}
    assert "ann" in str(plan)
    # Planning changed nothing.
    assert store.directories() == [] or store.user_counts("corp")["active"] == 0

    progress: List[Tuple[int, int]] = []
    report = plan.apply(progress=lambda done, total: progress.append((done, total)))
    assert report.ok and report.outcome == "succeeded"
    assert report.applied == {"create": 4, "add_members": 1}
    assert progress and progress[-1] == (5, 5)
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)
    assert store.user_counts("corp") == {"active": 3, "inactive": 0}
    user = next(store.users("corp", 'userName eq "ann"'))
    assert user["emails"][0]["value"] == "ann@example.com"  # mapped, lower-cased
    assert user["name"]["familyName"] == "Ann"
    with pytest.raises(usersync.ArgumentError, match="applied already"):
        plan.apply()

    # In step: the next plan is empty; the runs are on record.
    again = usersync.plan(config, db)
    assert len(again) == 0 and not again
    assert store.runs("corp")[0]["outcome"] == "succeeded"


def test_an_update_shows_its_attribute_diff(slapd: Slapd, db: Path, tmp_path: Path) -> None:
    slapd.add_people("diffing", ["dan"])
    config = usersync.SyncConfig.from_file(slapd.config("diffs", "diffing", tmp_path))
    usersync.sync(config, db)
    slapd._tool(
        "ldapmodify",
        ldif=f"dn: uid=dan,ou=diffing,{slapd.base}\nchangetype: modify\nreplace: sn\nsn: Brown\n",
    )
    plan = usersync.plan(config, db)
    (change,) = list(plan)
    assert change.action == "update" and change.id
    (diff,) = change.diff
    assert diff.attribute == "name"
    assert diff.old["familyName"] == "Dan" and diff.new["familyName"] == "Brown"


def test_a_destructive_plan_is_blocked_until_allowed(
    slapd: Slapd, db: Path, tmp_path: Path
) -> None:
    uids = ["eve", "fay", "gus", "hal", "ivy"]
    slapd.add_people("leaving", uids)
    config = usersync.SyncConfig.from_file(slapd.config("leavers", "leaving", tmp_path))
    assert usersync.sync(config, db).applied == {"create": 5}
    slapd.delete(f"uid=eve,ou=leaving,{slapd.base}", f"uid=fay,ou=leaving,{slapd.base}")

    plan = usersync.plan(config, db)
    assert plan.summary() == {"deactivate": 2}
    assert all(c.destructive for c in plan)
    assert plan.blocked, "2 of 5 users is past the 10% threshold"
    with pytest.raises(usersync.SyncBlockedError) as caught:
        plan.apply()
    assert isinstance(caught.value, RuntimeError)
    assert caught.value.kind == "syncBlocked" and caught.value.reasons
    store = usersync.open(db)
    assert store.user_counts("leavers") == {"active": 5, "inactive": 0}
    assert store.runs("leavers")[0]["outcome"] == "blocked"
    assert "deactivate" in str(plan), "the refused plan still reads as its table"

    # The plan that was reviewed is the one applied with the override.
    report = plan.apply(allow_deletes=True)
    assert report.applied == {"deactivate": 2}
    assert store.user_counts("leavers") == {"active": 3, "inactive": 2}
    with pytest.raises(usersync.ArgumentError):
        plan.apply(allow_deletes=True)


def test_a_run_that_cannot_read_is_on_record(slapd: Slapd, db: Path, tmp_path: Path) -> None:
    slapd.add_people("unread", ["uma"])
    config = usersync.SyncConfig.from_file(slapd.config("unread", "unread", tmp_path))
    assert usersync.sync(config, db).applied == {"create": 1}
    text = slapd.config("unread", "unread", tmp_path).read_text()
    dead = text.replace(slapd.url, "ldap://127.0.0.1:9")
    assert dead != text
    with pytest.raises(usersync.LdapError):
        usersync.sync(usersync.SyncConfig.from_toml(dead), db)
    store = usersync.open(db)
    runs = store.runs("unread")
    assert [r["outcome"] for r in runs] == ["failed", "succeeded"], runs
    assert "no LDAP server answered" in runs[0]["report"]["error"]
    with pytest.raises(usersync.ArgumentError):
        store.runs("unread", limit=0)


def test_a_user_name_owned_elsewhere(slapd: Slapd, db: Path, tmp_path: Path) -> None:
    slapd.add_people("owned", ["jon", "kim"])
    store = usersync.open(db)
    store.create_directory("okta")
    usersync.Service(store, require_token=False).handle(
        "POST", "/scim/v2/okta/Users", body={"userName": "jon"}
    )
    skip = usersync.SyncConfig.from_file(slapd.config("owners", "owned", tmp_path))
    report = usersync.sync(skip, store)
    assert report.conflicts and "jon" in report.conflicts[0]
    fail_path = slapd.config("owners2", "owned", tmp_path, user_name_conflict="fail")
    with pytest.raises(usersync.SyncConflictError) as caught:
        usersync.sync(usersync.SyncConfig.from_file(fail_path), store)
    assert "jon" in str(caught.value)


def test_configuration_from_a_dict_or_toml(slapd: Slapd, db: Path, tmp_path: Path) -> None:
    slapd.add_people("dicts", ["lea"])
    (tmp_path / "password").write_text(slapd.service_password)
    data = {
        "directory": "fromdict",
        "connection": {
            "urls": [slapd.url],
            "tls": "none",
            "bind_dn": slapd.service_dn,
            "bind_password_file": str(tmp_path / "password"),
        },
        "users": {"base": f"ou=dicts,{slapd.base}"},
    }
    config = usersync.SyncConfig.from_dict(data)
    assert usersync.sync(config, db).applied == {"create": 1}
    text = slapd.config("fromtoml", "dicts", tmp_path).read_text()
    assert usersync.SyncConfig.from_toml(text).directory == "fromtoml"

    data["users"] = {"base": f"ou=dicts,{slapd.base}", "filter": "(uid=lea"}
    with pytest.raises(usersync.ConfigError) as caught:
        usersync.SyncConfig.from_dict(data)
    assert caught.value.key == "users.filter" and isinstance(caught.value, ValueError)
    with pytest.raises(usersync.ConfigError, match="unknown field `colour`"):
        usersync.SyncConfig.from_dict({**data, "colour": "blue"})
    with pytest.raises(usersync.ConfigError, match="line 1"):
        usersync.SyncConfig.from_toml("directory = ")
    with pytest.raises(usersync.ConfigError, match="cannot read"):
        usersync.SyncConfig.from_file(tmp_path / "missing.toml")


def _down_config(tmp_path: Path, directory: str) -> usersync.SyncConfig:
    """A configuration into `directory` whose LDAP server is not there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "password").write_text("x")
    return usersync.SyncConfig.from_dict(
        {
            "directory": directory,
            "connection": {
                "urls": [f"ldap://127.0.0.1:{port}"],
                "tls": "none",
                "bind_dn": "cn=x",
                "bind_password_file": str(tmp_path / "password"),
                "connect_timeout_seconds": 2,
            },
            "users": {"base": "dc=example,dc=com"},
        }
    )


def test_an_unreachable_server_is_a_connection_error(db: Path, tmp_path: Path) -> None:
    config = _down_config(tmp_path, "down")
    with pytest.raises(ConnectionError) as caught:
        usersync.plan(config, db)
    assert isinstance(caught.value, usersync.LdapError) and caught.value.kind == "ldap"


def test_a_wrong_password_is_refused(slapd: Slapd, db: Path, tmp_path: Path) -> None:
    path = slapd.config("wrongpw", "planning", tmp_path)
    (tmp_path / "password").write_text("not the password")
    with pytest.raises(usersync.LdapError, match="refused the bind"):
        usersync.plan(usersync.SyncConfig.from_file(path), db)


@pytest.mark.parametrize("stop,via_sync", [(KeyboardInterrupt, False), (SystemExit, True)])
def test_ctrl_c_in_a_progress_callback_is_raised(
    stop: Type[BaseException], via_sync: bool, slapd: Slapd, db: Path, tmp_path: Path
) -> None:
    name = f"stop{stop.__name__.lower()}"
    slapd.add_people(name, ["nia", "oto"], group="crew")
    config = usersync.SyncConfig.from_file(slapd.config(name, name, tmp_path))
    told: List[Tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        told.append((done, total))
        raise stop()

    with pytest.raises(stop):
        if via_sync:
            usersync.sync(config, db, progress=progress)
        else:
            usersync.plan(config, db).apply(progress=progress)
    # Told once (the creations): the apply stopped before its next batch (the members),
    # kept what it had applied, and is on record as stopped.
    assert told == [(3, 4)]
    store = usersync.open(db)
    run = store.runs(name)[0]
    assert run["outcome"] == "failed"
    assert "stopped after 3 of 4 changes" in json.dumps(run["report"])
    assert run["report"]["partial_report"]["applied"] == {"create": 3}
    assert store.user_counts(name) == {"active": 2, "inactive": 0}
    (crew,) = list(store.groups(name))
    assert not crew.get("members")


def test_a_run_that_cannot_be_recorded_is_a_failure(
    slapd: Slapd, db: Path, tmp_path: Path
) -> None:
    slapd.add_people("unrecorded", ["pia", "quy"])
    config = usersync.SyncConfig.from_file(slapd.config("unrecorded", "unrecorded", tmp_path))

    def break_the_records(done: int, total: int) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE IF EXISTS sync_runs")

    # Applied, but the schedule would never know of the run: raised, as in C and the CLI,
    # with what was applied.
    with pytest.raises(usersync.SyncTargetError) as caught:
        usersync.sync(config, db, progress=break_the_records)
    assert caught.value.report_json is not None
    run = json.loads(caught.value.report_json)
    assert run["outcome"] == "succeeded" and "record" in run["error"]
    assert run["report"]["applied"] == {"create": 2}
    assert usersync.open(db).user_counts("unrecorded") == {"active": 2, "inactive": 0}


def test_a_directory_that_is_not_ldap_is_a_configuration_error(
    db: Path, tmp_path: Path
) -> None:
    store = usersync.open(db)
    store.create_directory("okta")  # a SCIM directory
    config = _down_config(tmp_path, "okta")
    # Found when planning (before LDAP's own failure); nothing was applied, nor said to be.
    runs: List[Callable[[], object]] = [
        lambda: usersync.plan(config, store),
        lambda: usersync.sync(config, store),
    ]
    for run in runs:
        with pytest.raises(usersync.ConfigError) as caught:
            run()
        assert caught.value.key == "directory" and caught.value.kind == "syncConfig"
        assert "okta" in str(caught.value) and "applied" not in str(caught.value)
    assert store.user_counts("okta") == {"active": 0, "inactive": 0}


def test_paths_in_a_configuration_dict_may_be_path_objects(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("x")
    config = usersync.SyncConfig.from_dict(
        {
            "directory": "paths",
            "connection": {
                "urls": ["ldap://127.0.0.1:1"],
                "tls": "none",
                "bind_dn": "cn=x",
                "bind_password_file": tmp_path / "password",
            },
            "users": {"base": "dc=example,dc=com"},
        }
    )
    assert config.directory == "paths"
