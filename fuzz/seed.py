#!/usr/bin/env python3
"""Fills fuzz/corpus/<target>/ with seeds from the shared fixture corpus (tests/fixtures)."""
import hashlib
import json
import pathlib

here = pathlib.Path(__file__).resolve().parent
fixtures = here.parent / "tests" / "fixtures"


def seed(target, texts):
    out = here / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    for text in texts:
        data = text.encode()
        (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


filters = json.loads((fixtures / "filters.json").read_text())
paths = json.loads((fixtures / "paths.json").read_text())
evaluation = json.loads((fixtures / "evaluation.json").read_text())
seed("filter", [c["filter"] for c in filters["valid"] + filters["invalid"]])
seed("path", [c["path"] for c in paths["valid"] + paths["invalid"]])
users = list(evaluation["resources"]["User"].values())
seed("evaluate", [c["filter"] + "\n" + json.dumps(users[i % len(users)])
                  for i, c in enumerate(evaluation["cases"])])
seed("schema", [json.dumps(e["schema"]) for e in evaluation["extensions"]]
     + [p.read_text() for p in (here.parent / "core/src/scim/schema/builtin").glob("*.json")])
seed("datetime", ["2011-05-13T04:42:34Z", "2011-05-13T06:42:34.123456+02:00", "0000-01-01T00:00:00Z",
                  "9999-12-31T24:00:00Z", "2012-02-29T12:00:00.5-14:00"])
ldap = json.loads((fixtures / "ldap_filters.json").read_text())
seed("complete", [chr(len(c["filter"]) % 128) + c["filter"]
                  for c in filters["valid"][:60]]
     + ["\x07emails[ty", "\x0bname.family", '\x10emails[type eq "wo'])
seed("ldap_filter", [c["filter"] for c in ldap["valid"] + ldap["invalid"]])
seed("dn_key", ["uid=ann,ou=people,dc=example,dc=test", "CN=Lee\\, Ann , OU=People,DC=corp",
                "cn=Lee\\2C Ann+uid=lee,dc=x", "cn=\\C3\\A9mile,dc=x", "cn=\\ lead\\ ,dc=x",
                "cn=#1\\2c x,dc=x", "cn=a\\+b\\\\c\\\"d;x<y>,dc=x", "cn=ann,dc=x,", ""])
seed("ldap_url", ["ldap://dc1.corp.example", "ldaps://[::1]:6360/dc=x", "ldap://h:389/",
                  "ldap://dc1/CN=Configuration,DC=corp,DC=example",
                  "ldap://x/dc%3Dchild,dc%3Dexample??base", "ldap://2001:db8::1", "ldap://h:+1"])
seed("decimal", ["1.5", "-0.0", "12.50E-3", "1e16", "0.0001", "1.7976931348623158e308",
                 "1.7976931348623159e308", "9223372036854775808", "4.9e-324", "1e-400"])
# `handle`: every identity-provider transcript request, against the plain directory and the
# one that keeps password hashes (method, path, query and a header line, then the body).
requests = []
for transcript in sorted((fixtures / "idp").glob("*.json")):
    for step in json.loads(transcript.read_text())["steps"]:
        r = step["request"]
        body = json.dumps(r["body"]) if "body" in r else ""
        for directory in ("acme", "okta"):
            requests.append("\n".join([r["method"], f"/scim/v2/{directory}{r['path']}",
                                       r.get("query", ""), "If-Match: *", body]))
seed("handle", requests)


def tlv(tag, *parts):
    """A BER element (definite length) of `parts`, for the LDAP message seeds."""
    body = b"".join(parts)
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + body


def octets(text):
    return tlv(0x04, text if isinstance(text, bytes) else text.encode())


def ldap_message(message_id, operation, controls=b""):
    return tlv(0x30, tlv(0x02, bytes([message_id])), operation, controls)


def result(tag, code, message=""):
    return tlv(tag, tlv(0x0a, bytes([code])), octets(""), octets(message))


paged = tlv(0xa0, tlv(0x30, octets("1.2.840.113556.1.4.319"), octets(tlv(0x30, tlv(0x02, b"\x00"), octets(b"\x01\x02")))))
entry = tlv(0x64, octets("uid=ann,ou=people,dc=example,dc=test"), tlv(0x30,
            tlv(0x30, octets("mail"), tlv(0x31, octets("ann@example.test"), octets("a@example.test"))),
            tlv(0x30, octets("objectGUID"), tlv(0x31, octets(bytes(range(16))))),
            tlv(0x30, octets("cn"), tlv(0x31))))
out = here / "corpus" / "ldap_message"
out.mkdir(parents=True, exist_ok=True)
for data in [ldap_message(1, result(0x61, 0)), ldap_message(2, entry),
             ldap_message(2, result(0x65, 0), paged), ldap_message(2, result(0x65, 4, "size limit")),
             ldap_message(2, tlv(0x73, octets("ldap://other.example.test/dc=other"))),
             ldap_message(0, result(0x78, 52, "shutting down"))]:
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
