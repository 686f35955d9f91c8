"""Every error kind the module raises, triggered for real: its class, its `kind`, and the
built-in exception it also is, so that code catching `ValueError` or `ConnectionError` keeps
working."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Type

import pytest

import usersync
from usersync import errors, ldap, scim


def _dir_twice(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    store.create_directory("acme")


def _unreadable_config(db: Path) -> None:
    usersync.SyncConfig.from_toml(
        'directory = "x"\n[connection]\nurls = []\n[users]\nbase = "dc=example,dc=com"\n'
    )


def _dead_ldap(db: Path) -> None:
    pw = db.parent / "pw"
    pw.write_text("x")
    config = usersync.SyncConfig.from_dict(
        {
            "directory": "down",
            "connection": {
                "urls": ["ldap://127.0.0.1:1"],
                "tls": "none",
                "bind_dn": "cn=x",
                "bind_password_file": str(pw),
            },
            "users": {"base": "dc=example,dc=com"},
        }
    )
    usersync.plan(config, db)


def _not_a_database(db: Path) -> None:
    db.write_bytes(b"not sqlite" * 200)
    usersync.open(db)


# The scimType the SCIM service answers for the same problems.
SCIM_TYPES = {
    "invalidFilter": "invalidFilter",
    "invalidPath": "invalidPath",
    "invalidValue": "invalidValue",
    "uniqueness": "uniqueness",
}

CASES = [
    ("invalidFilter", usersync.FilterError, ValueError, lambda db: scim.parse_filter("(")),
    ("invalidFilter", usersync.FilterError, ValueError, lambda db: scim.parse_filter("active gt true").matches({})),
    ("invalidLdapFilter", usersync.FilterError, ValueError, lambda db: ldap.validate_filter("(cn=")),
    ("invalidPath", usersync.PathError, ValueError, lambda db: scim.parse_path("emails[")),
    ("invalidSchema", usersync.SchemaError, ValueError, lambda db: scim.Schemas().add_extension("User", "{")),
    ("invalidArgument", usersync.ArgumentError, ValueError, lambda db: scim.parse_filter("id pr").matches({}, "Printer")),
    ("invalidValue", usersync.ArgumentError, ValueError, lambda db: usersync.open(db).create_directory("no spaces")),
    ("notFound", usersync.NotFoundError, LookupError, lambda db: usersync.open(db).user_counts("nowhere")),
    ("uniqueness", usersync.UniquenessError, ValueError, _dir_twice),
    ("storeBackend", usersync.StoreError, OSError, _not_a_database),
    ("syncConfig", usersync.ConfigError, ValueError, _unreadable_config),
    ("ldap", usersync.LdapError, ConnectionError, _dead_ldap),
]


@pytest.mark.parametrize(
    "kind,cls,builtin,trigger", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_kind_raises_its_class(
    kind: str,
    cls: Type[usersync.UsersyncError],
    builtin: Type[Exception],
    trigger: Callable[[Path], object],
    db: Path,
) -> None:
    with pytest.raises(builtin) as caught:
        trigger(db)
    e = caught.value
    assert type(e) is cls
    assert isinstance(e, usersync.UsersyncError)
    assert e.kind == kind
    assert e.scim_type == SCIM_TYPES.get(kind)
    assert str(e)


def test_syntax_errors_carry_position_length_and_expectations() -> None:
    with pytest.raises(usersync.FilterError) as caught:
        scim.parse_filter('userName xq "a"')
    e = caught.value
    assert (e.position, e.length) == (9, 2)
    assert "operator" in e.expected
    assert e.position is not None and e.length is not None
    assert 'userName xq "a"'[e.position : e.position + e.length] == "xq"
    assert str(e).endswith("(at 9)")


def test_configuration_errors_name_the_key() -> None:
    with pytest.raises(usersync.ConfigError) as caught:
        _unreadable_config(Path("."))
    assert caught.value.key is not None and caught.value.key.startswith("connection")


def test_every_class_is_a_usersync_error_and_a_builtin() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, usersync.UsersyncError)
        if cls is not usersync.UsersyncError:
            assert len(cls.__mro__) > 4, f"{name} also subclasses a built-in"
        assert getattr(usersync, name) is cls
