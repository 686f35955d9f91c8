"""Shared fixtures: the repository's test corpora, and a real slapd started by the testkit's
harness (`usersync-test-slapd`, built by python/test.sh) for the tests that need LDAP."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class Slapd:
    """The running test slapd: its URL, accounts, and the administrator's LDAP tools."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self.url: str = info["url"]
        self.base: str = info["base"]
        self.admin_dn: str = info["admin_dn"]
        self.admin_password: str = info["admin_password"]
        self.service_dn: str = info["service_dn"]
        self.service_password: str = info["service_password"]

    def _tool(self, tool: str, *args: str, ldif: str = "") -> None:
        subprocess.run(
            [tool, "-x", "-H", self.url, "-D", self.admin_dn, "-w", self.admin_password, *args],
            input=ldif.encode(),
            check=True,
            capture_output=True,
        )

    def add(self, ldif: str) -> None:
        self._tool("ldapadd", ldif=ldif)

    def delete(self, *dns: str) -> None:
        self._tool("ldapdelete", *dns)

    def add_people(self, ou: str, uids: list[str], group: str | None = None) -> None:
        """Adds `ou=<ou>` with one inetOrgPerson per uid, and a group of all of them."""
        ldif = f"dn: ou={ou},{self.base}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
        for uid in uids:
            ldif += (
                f"dn: uid={uid},ou={ou},{self.base}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                f"cn: {uid}\nsn: {uid.title()}\ngivenName: {uid}\nmail: {uid}@Example.com\n\n"
            )
        if group:
            members = "".join(f"member: uid={u},ou={ou},{self.base}\n" for u in uids)
            ldif += f"dn: cn={group},ou={ou},{self.base}\nobjectClass: groupOfNames\ncn: {group}\n{members}\n"
        self.add(ldif)

    def config(self, directory: str, ou: str, tmp: Path, **policy: Any) -> Path:
        """A sync configuration file for the people of `ou`, into `directory`."""
        (tmp / "password").write_text(self.service_password)
        lines = [
            f'directory = "{directory}"',
            "[connection]",
            f'urls = ["{self.url}"]',
            'tls = "none"',
            f'bind_dn = "{self.service_dn}"',
            f'bind_password_file = "{tmp / "password"}"',
            "[users]",
            f'base = "ou={ou},{self.base}"',
            '"attributes" = { "name.familyName" = "sn", \'emails[type eq "work"].value\' = { attribute = "mail", transform = "lowercase" } }',
            "[groups]",
            f'base = "ou={ou},{self.base}"',
        ]
        if policy:
            lines.append("[policy]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in policy.items()]
        path = tmp / f"{directory}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path


@contextlib.contextmanager
def _harness(variable: str, name: str, what: str) -> Iterator[Dict[str, Any]]:
    """Runs a testkit harness and yields the JSON line it prints once its server is up. The
    harness stops its server when its input closes: also when this process dies."""
    harness = os.environ.get(variable, str(REPO / "target" / "debug" / name))
    if not Path(harness).exists():
        pytest.fail(f"{harness} is missing: run python/test.sh, which builds it")
    process = subprocess.Popen(
        [harness, f"pytest-{os.getpid()}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdout is not None and process.stdin is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        pytest.fail(f"{name} did not start {what}")
    try:
        yield json.loads(line)
    finally:
        process.stdin.close()
        process.stdout.close()
        process.wait(timeout=60)


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    with _harness("USERSYNC_TEST_SLAPD", "usersync-test-slapd", "slapd") as info:
        yield Slapd(info)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database on a private PostgreSQL server, shared by the session's tests
    (each uses directories of its own)."""
    with _harness("USERSYNC_TEST_POSTGRES", "usersync-test-postgres", "PostgreSQL") as info:
        yield str(info["url"])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "usersync.db"
