"""The shared filter and path corpora through the Python module: the same canonical forms,
positions and messages as the core's own corpus tests. Positions here are indexes into the
Python string (characters), where the corpora give UTF-8 byte offsets."""

from __future__ import annotations

import collections
import types
from pathlib import PurePosixPath
from typing import Any

import pytest

import usersync
from usersync import ldap, scim

from conftest import load


def char_index(text: str, byte: int) -> int:
    return len(text.encode("utf-8")[:byte].decode("utf-8", errors="ignore"))


FILTERS = load("filters.json")
PATHS = load("paths.json")
LDAP = load("ldap_filters.json")
EVALUATION = load("evaluation.json")


def ids(cases: list[dict[str, Any]], key: str) -> list[str]:
    return [repr(c[key])[:60] for c in cases]


@pytest.mark.parametrize("case", FILTERS["valid"], ids=ids(FILTERS["valid"], "filter"))
def test_valid_scim_filters_print_their_canonical_form(case: dict[str, Any]) -> None:
    f = scim.parse_filter(case["filter"], strict=case.get("strict", False))
    assert str(f) == case["canonical"]
    # The canonical text means the same filter.
    assert scim.parse_filter(str(f), strict=case.get("strict", False)) == f


@pytest.mark.parametrize("case", FILTERS["invalid"], ids=ids(FILTERS["invalid"], "filter"))
def test_invalid_scim_filters_say_where_and_why(case: dict[str, Any]) -> None:
    text = case["filter"]
    with pytest.raises(usersync.FilterError) as caught:
        f = scim.parse_filter(text, strict=case.get("strict", False))
        f.check(case.get("resourceType", "User"))
    e = caught.value
    assert isinstance(e, ValueError)
    assert e.kind == "invalidFilter"
    assert e.position == char_index(text, case["error"]["position"])
    assert case["error"]["contains"] in str(e)


@pytest.mark.parametrize("case", PATHS["valid"], ids=ids(PATHS["valid"], "path"))
def test_valid_paths(case: dict[str, Any]) -> None:
    assert scim.parse_path(case["path"], strict=case.get("strict", False)) == case["canonical"]


@pytest.mark.parametrize("case", PATHS["invalid"], ids=ids(PATHS["invalid"], "path"))
def test_invalid_paths(case: dict[str, Any]) -> None:
    text = case["path"]
    with pytest.raises(usersync.PathError) as caught:
        scim.parse_path(text, strict=case.get("strict", False))
    assert caught.value.kind == "invalidPath"
    assert caught.value.position == char_index(text, case["error"]["position"])
    assert case["error"]["contains"] in str(caught.value)


@pytest.mark.parametrize("case", LDAP["valid"], ids=ids(LDAP["valid"], "filter"))
def test_valid_ldap_filters(case: dict[str, Any]) -> None:
    assert ldap.validate_filter(case["filter"]) == case["canonical"]


@pytest.mark.parametrize("case", LDAP["invalid"], ids=ids(LDAP["invalid"], "filter"))
def test_invalid_ldap_filters(case: dict[str, Any]) -> None:
    text = case["filter"]
    with pytest.raises(usersync.FilterError) as caught:
        ldap.validate_filter(text)
    assert caught.value.kind == "invalidLdapFilter"
    assert caught.value.position == char_index(text, case["position"])
    assert case["message"] in str(caught.value)


def corpus_schemas() -> scim.Schemas:
    """The built-in schemas and the corpus' own extension schemas."""
    schemas = scim.Schemas()
    for extension in EVALUATION["extensions"]:
        schemas.add_extension(extension["resourceType"], extension["schema"])
    return schemas


SCHEMAS = corpus_schemas()


@pytest.mark.parametrize("case", EVALUATION["cases"], ids=ids(EVALUATION["cases"], "filter"))
def test_filters_select_the_corpus_resources(case: dict[str, Any]) -> None:
    kind = case.get("resourceType", "User")
    strict = case.get("strict", False)
    f = scim.parse_filter(case["filter"], strict=strict)
    if "error" in case:
        with pytest.raises(usersync.FilterError) as caught:
            f.matches({}, kind, schemas=SCHEMAS)
        assert case["error"]["contains"] in str(caught.value)
        return
    resources = EVALUATION["resources"][kind].items()
    selected = [name for name, r in resources if f.matches(r, kind, schemas=SCHEMAS)]
    assert sorted(selected) == sorted(case["matches"])


def test_extension_attributes_need_their_schema() -> None:
    f = scim.parse_filter("urn:example:params:scim:schemas:extension:test:2.0:User:level gt 2")
    bjensen = EVALUATION["resources"]["User"]["bjensen"]
    assert f.matches(bjensen, schemas=SCHEMAS)
    # Without it, the attribute is undefined: legal, and it matches nothing.
    assert not f.matches(bjensen)
    assert f.check() == ["urn:example:params:scim:schemas:extension:test:2.0:User:level"]
    assert f.check(schemas=SCHEMAS) == []


def test_a_bad_extension_schema_is_refused() -> None:
    schemas = scim.Schemas()
    with pytest.raises(usersync.SchemaError) as caught:
        schemas.add_extension("User", '{"id": "urn:x", "attributes": [{"name": "n", "type": "colour"}]}')
    assert caught.value.kind == "invalidSchema" and isinstance(caught.value, ValueError)
    with pytest.raises(usersync.SchemaError):
        schemas.add_extension("Printer", {"id": "urn:y", "attributes": []})
    with pytest.raises(usersync.SchemaError):
        SCHEMAS.add_extension("User", EVALUATION["extensions"][0]["schema"])  # added already


def test_a_value_that_holds_itself_is_an_error_not_a_crash() -> None:
    looped: dict[str, object] = {"active": True}
    looped["self"] = looped
    with pytest.raises(ValueError, match="nests more than 128 levels deep"):
        scim.parse_filter("active eq true").matches(looped)
    deep: list[object] = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ValueError, match="nests more than 128 levels deep"):
        scim.parse_filter("x pr").matches({"x": deep})


def test_positions_count_characters_not_bytes() -> None:
    text = 'displayName eq "Zoë" and'
    with pytest.raises(usersync.FilterError) as caught:
        scim.parse_filter(text)
    assert caught.value.position == len(text)
    tree = scim.parse_filter('displayName eq "Zoë" or userName eq "z"').to_dict()
    second = tree["filters"][1]
    assert (second["start"], second["end"]) == (24, 39)


def test_a_position_inside_a_character_counts_from_its_start() -> None:
    # The bad escape's span ends inside `é` (six bytes from the backslash): the error ends
    # before `é`, not at the end of the text.
    text = 'userName eq "\\u€é"'
    with pytest.raises(usersync.FilterError) as caught:
        scim.parse_filter(text)
    e = caught.value
    assert (e.position, e.length) == (13, 3)
    assert e.position is not None and e.length is not None
    assert text[e.position : e.position + e.length] == "\\u€"
    assert e.position + e.length == char_index(text, len(text[:13].encode()) + 6)


def test_matches_takes_any_mapping_and_paths_as_text() -> None:
    f = scim.parse_filter('userName eq "bjensen" and name.givenName eq "Barbara"')
    name = collections.ChainMap({"givenName": "Barbara"})
    assert f.matches(types.MappingProxyType({"userName": "bjensen", "name": name}))
    assert not f.matches(collections.UserDict({"userName": "jsmith", "name": name}))
    assert scim.parse_filter('nickName eq "a/b"').matches({"nickName": PurePosixPath("a/b")})


def test_the_tree_is_plain_data() -> None:
    tree = scim.parse_filter('not (active eq true) and emails pr').to_dict()
    assert tree["type"] == "and"
    assert tree["filters"][0]["type"] == "not"
    assert tree["filters"][1] == {
        "type": "present",
        "path": {"attribute": "emails", "text": "emails"},
        "start": 25,
        "end": 34,
    }


def test_entra_forms_are_accepted_unless_strict() -> None:
    entra = 'emails[type eq "work"].value eq "a@example.com"'
    assert str(scim.parse_filter(entra)) == 'emails[type eq "work" and value eq "a@example.com"]'
    with pytest.raises(usersync.FilterError):
        scim.parse_filter(entra, strict=True)
    f = scim.parse_filter('active eq "False"')
    assert f.matches({"active": False}) and not f.matches({"active": True})


def test_check_reports_undefined_attributes() -> None:
    assert scim.parse_filter('nickName pr or favouriteColour eq "red"').check() == [
        "favouriteColour"
    ]
    with pytest.raises(usersync.ArgumentError, match="unknown resource type"):
        scim.parse_filter("id pr").check("Printer")


def test_matches_refuses_what_json_cannot_hold() -> None:
    f = scim.parse_filter("userName pr")
    with pytest.raises(TypeError, match=r"\[\"emails\"\]\[0\] is a set"):
        f.matches({"userName": "x", "emails": [{1, 2}]})
    with pytest.raises(ValueError, match="nan"):
        f.matches({"userName": "x", "score": float("nan")})
