"""The README's Python example, run as written against the test slapd (its `corp.toml`
pointing there): what a newcomer copies must work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO, Slapd


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start: Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README has a Python example"
    return match.group(1)


def test_the_readme_example_runs(
    slapd: Slapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slapd.add_people("readme", ["amy", "ben", "cal"], group="team")
    config = slapd.config("corp", "readme", tmp_path)
    assert config == tmp_path / "corp.toml"
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "{'add_members': 1, 'create': 4}" in out
    for name in ("amy", "ben", "cal"):
        assert f"{name} True" in out
    assert "invalidFilter 22 ('and', 'or', 'end')" in out
    assert (tmp_path / "usersync.db").exists()
