"""`usersync.Service.handle`: the identity-provider transcripts of tests/fixtures/idp/ replayed
through Python, step by step as the testkit's replayer does for HTTP and C."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any, Dict
from urllib.parse import quote

import pytest

import usersync

from conftest import FIXTURES

TRANSCRIPTS = sorted(p.stem for p in (FIXTURES / "idp").glob("*.json"))


def substitute(text: str, captured: Dict[str, str]) -> str:
    for name, value in captured.items():
        text = text.replace("${" + name + "}", value)
    return text


def contains(actual: Any, expected: Any, at: str = "") -> None:
    """`actual` has everything `expected` lists: objects as subsets, arrays item by item."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{at} is {actual!r}, expected an object"
        for key, value in expected.items():
            assert key in actual, f"{at}/{key} is missing"
            contains(actual[key], value, f"{at}/{key}")
    elif isinstance(expected, list) and isinstance(actual, list) and len(actual) == len(expected):
        for i, (a, e) in enumerate(zip(actual, expected)):
            contains(a, e, f"{at}/{i}")
    else:
        assert actual == expected, f"{at} is {actual!r}, expected {expected!r}"


def pointer(document: Any, path: str) -> Any:
    """RFC 6901: the value at `path`, or KeyError."""
    for token in path.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


def encode_query(query: str) -> str:
    return "&".join(
        "=".join(quote(part, safe="") for part in pair.split("=", 1))
        for pair in query.split("&")
        if pair
    )


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_identity_provider_transcripts(name: str, db: Path) -> None:
    store = usersync.open(db)
    token = store.create_directory("idp")["token"]
    service = usersync.Service(store)
    transcript = json.loads((FIXTURES / "idp" / f"{name}.json").read_text())
    extra = transcript.get("query", "")
    captured: Dict[str, str] = {}
    for i, step in enumerate(transcript["steps"]):
        request = step["request"]
        query = substitute(request.get("query", ""), captured)
        query = "&".join(q for q in (query, extra) if q)
        body = request.get("body")
        if body is not None:
            body = json.loads(substitute(json.dumps(body), captured))
        response = service.handle(
            request["method"],
            "/scim/v2/idp" + substitute(request["path"], captured),
            query=encode_query(query),
            headers={"Authorization": f"Bearer {token}"},
            body=body,
        )
        got = response.json()
        context = f"{name} step {i} ({step.get('note', '')}): {got}"
        assert response.status == step["response"]["status"], context
        if "body" in step["response"]:
            expected = json.loads(substitute(json.dumps(step["response"]["body"]), captured))
            contains(got, expected, context)
        for absent in step["response"].get("absent", []):
            with pytest.raises((KeyError, IndexError)):
                pointer(got, absent)
        for var, path in step.get("capture", {}).items():
            captured[var] = pointer(got, path)


def test_a_request_without_the_token_is_refused(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    response = usersync.Service(store).handle("GET", "/scim/v2/acme/Users")
    assert response.status == 401
    assert response.header("www-authenticate") is not None
    assert response.json()["status"] == "401"


def test_a_broken_store_is_a_500_whose_cause_is_for_the_log(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    service = usersync.Service(db, require_token=False)
    assert service.handle("GET", "/scim/v2/acme/Users").cause is None
    with sqlite3.connect(db) as conn:
        conn.executescript("DROP TABLE memberships; DROP TABLE resources;")
    response = service.handle("GET", "/scim/v2/acme/Users")
    assert response.status == 500
    assert "no such table" not in response.json()["detail"]
    assert response.cause is not None and "no such table: resources" in response.cause


def test_bodies_as_bytes_text_or_data(db: Path) -> None:
    store = usersync.open(db)
    store.create_directory("acme")
    service = usersync.Service(db, require_token=False)
    made = service.handle("POST", "/scim/v2/acme/Users", body={"userName": "ann"})
    assert made.status == 201
    assert made.headers["Location"].endswith(made.json()["id"])
    text = service.handle(
        "POST",
        "/scim/v2/acme/Users",
        headers={"Content-Type": "application/json"},
        body='{"userName": "bob"}',
    )
    assert text.status == 201
    not_json = service.handle(
        "POST",
        "/scim/v2/acme/Users",
        headers={"Content-Type": "application/scim+json"},
        body=b"\xff not json",
    )
    assert not_json.status == 400 and not_json.json()["scimType"] == "invalidSyntax"
    # Both went to the same database as the store sees it.
    assert store.user_counts("acme") == {"active": 2, "inactive": 0}


def test_service_limits_are_enforced(db: Path) -> None:
    usersync.open(db).create_directory("acme")
    service = usersync.Service(db, require_token=False, max_payload=64)
    big = service.handle("POST", "/scim/v2/acme/Users", body={"userName": "x" * 100})
    assert big.status == 413
    with pytest.raises(usersync.ArgumentError):
        usersync.Service(db, max_results=0)
    assert re.match(r"<usersync.Response 413 \(\d+ bytes\)>", repr(big))
