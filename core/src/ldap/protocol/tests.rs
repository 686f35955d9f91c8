use proptest::prelude::*;

use super::*;

/// A response as a server sends it: id, operation, optional controls.
fn response(id: i32, operation: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    message(id, &[], operation)
}

/// A `SearchResultEntry` with `attributes` (name, values).
fn entry_message(id: i32, dn: &[u8], attributes: &[(&str, &[&[u8]])]) -> Vec<u8> {
    response(id, |o| {
        tlv(o, SEARCH_ENTRY, |o| {
            bytes(o, OCTET_STRING, dn);
            tlv(o, SEQUENCE, |o| {
                for (name, values) in attributes {
                    tlv(o, SEQUENCE, |o| {
                        bytes(o, OCTET_STRING, name.as_bytes());
                        tlv(o, SET, |o| {
                            for v in *values {
                                bytes(o, OCTET_STRING, v);
                            }
                        });
                    });
                }
            });
        });
    })
}

fn decoded_entry(message: &[u8]) -> Entry {
    match decode(message) {
        Ok(Message {
            response: Response::Entry(e),
            ..
        }) => e,
        other => panic!("not an entry: {other:?}"),
    }
}

/// An entry that lists an attribute twice, in two cases, has one list of its values,
/// under the lower-cased name; an attribute with no values is there, empty.
#[test]
fn an_entry_keeps_every_value_of_every_attribute() {
    let message = entry_message(
        7,
        b"uid=ann,ou=people,dc=example,dc=test",
        &[
            ("mail", &[b"ann@example.test", b"a@example.test"]),
            ("cn", &[]),
            ("MAIL", &[b"ann.lee@example.test"]),
        ],
    );
    assert_eq!(message_length(&message), Ok(Some(message.len())));
    assert_eq!(message_id(&message), Some(7));
    let e = decoded_entry(&message);
    assert_eq!(e.dn, "uid=ann,ou=people,dc=example,dc=test");
    assert_eq!(
        e.values("Mail"),
        [
            b"ann@example.test".to_vec(),
            b"a@example.test".to_vec(),
            b"ann.lee@example.test".to_vec()
        ]
    );
    assert!(e.attributes.contains_key("cn") && e.values("cn").is_empty());
    assert_eq!(e.attributes.len(), 2);
}

/// A malformed entry is refused whole, never read in part nor a panic.
#[test]
fn a_malformed_entry_is_refused() {
    let shaped = |contents: &dyn Fn(&mut Vec<u8>)| response(1, |o| tlv(o, SEARCH_ENTRY, contents));
    let cases = [
        // A DN that is not UTF-8.
        entry_message(1, &[0xff, 0xfe], &[("cn", &[b"x"])]),
        // A value that is not an OCTET STRING.
        shaped(&|o| {
            bytes(o, OCTET_STRING, b"cn=x");
            tlv(o, SEQUENCE, |o| {
                tlv(o, SEQUENCE, |o| {
                    bytes(o, OCTET_STRING, b"cn");
                    tlv(o, SET, |o| tlv(o, SEQUENCE, |_| {}));
                });
            });
        }),
        // An attribute without its set of values.
        shaped(&|o| {
            bytes(o, OCTET_STRING, b"cn=x");
            tlv(o, SEQUENCE, |o| {
                tlv(o, SEQUENCE, |o| bytes(o, OCTET_STRING, b"cn"))
            });
        }),
        // Attributes that are not a SEQUENCE.
        shaped(&|o| {
            bytes(o, OCTET_STRING, b"cn=x");
            bytes(o, OCTET_STRING, b"cn");
        }),
        // No attributes element.
        shaped(&|o| bytes(o, OCTET_STRING, b"cn=x")),
        // Not a response a client receives (a search request's tag).
        response(1, |o| tlv(o, SEARCH_REQUEST, |_| {})),
        // An element longer than the message.
        {
            let mut m = entry_message(1, b"cn=x", &[("cn", &[b"x"])]);
            let last = m.len() - 3;
            m[last] = 0x7f;
            m
        },
    ];
    for (i, message) in cases.iter().enumerate() {
        assert!(decode(message).is_err(), "case {i}: {:?}", decode(message));
    }
}

/// Values are bytes as sent, binary GUIDs included (ldap3 turned values that happen to be
/// UTF-8 into text); the anchor is the GUID either way.
#[cfg(feature = "ldap")]
#[test]
fn a_guid_that_reads_as_text_stays_a_guid() {
    let guid = b"ABCDEFGHIJKLMNOP";
    let binary: &[u8] = &[
        0xd6, 0x1a, 0x43, 0x5a, 0xeb, 0xf3, 0x92, 0x4f, 0x88, 0x9b, 0x9b, 0x2b, 0x0d, 0xb2, 0x59,
        0x5c,
    ];
    for (bytes, text) in [
        (&guid[..], "44434241-4645-4847-494a-4b4c4d4e4f50"),
        (binary, "5a431ad6-f3eb-4f92-889b-9b2b0db2595c"),
    ] {
        let e = decoded_entry(&entry_message(
            2,
            b"CN=x,DC=example,DC=test",
            &[("objectGUID", &[bytes])],
        ));
        assert_eq!(e.values("objectguid"), [bytes.to_vec()]);
        assert_eq!(
            crate::ldap::plan::anchor_of(&e, "objectGUID", true).as_deref(),
            Some(text)
        );
    }
}

/// A message's length is known once its header has arrived, and not before; lengths LDAP
/// does not allow are refused.
#[test]
fn messages_are_framed_by_their_header() {
    let long = entry_message(3, b"cn=x", &[("description", &[&[b'a'; 300][..]])]);
    assert_eq!(&long[..2], [0x30, 0x82], "a two-byte length");
    for cut in 0..4 {
        assert_eq!(message_length(&long[..cut]), Ok(None), "{cut} bytes");
    }
    assert_eq!(message_length(&long[..4]), Ok(Some(long.len())));
    assert!(message_length(&[0x30, 0x80]).is_err(), "indefinite");
    assert!(message_length(&[0x31, 0x00]).is_err(), "not a SEQUENCE");
    assert!(
        message_length(&[0x30, 0x85, 1, 0, 0, 0, 0]).is_err(),
        "five length bytes"
    );
    assert!(
        message_length(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]).is_err(),
        "2 GB"
    );
}

/// The end of a search: its code and message, and the cookie of the next page while more
/// pages follow.
#[test]
fn a_search_result_tells_the_next_page() {
    let done = |cookie: &[u8]| {
        let control = Control::paged(0, cookie);
        message(5, std::slice::from_ref(&control), |o| {
            tlv(o, SEARCH_DONE, |o| {
                integer(o, ENUMERATED, 4);
                bytes(o, OCTET_STRING, b"");
                bytes(o, OCTET_STRING, b"size limit");
            });
        })
    };
    let Ok(Message {
        id: 5,
        response: Response::SearchDone(outcome),
    }) = decode(&done(b"\x01\x02"))
    else {
        panic!("not a search result");
    };
    assert_eq!((outcome.code, outcome.message.as_str()), (4, "size limit"));
    assert_eq!(outcome.next_page(), Ok(Some(vec![1, 2])));
    let Ok(Message {
        response: Response::SearchDone(last),
        ..
    }) = decode(&done(b""))
    else {
        panic!("not a search result");
    };
    assert_eq!(
        last.next_page(),
        Ok(None),
        "an empty cookie ends the search"
    );
    assert_eq!(
        Outcome::default().next_page(),
        Ok(None),
        "no control ends it too"
    );
    // A control there but unreadable is an error: the read cannot tell whether it is over.
    for value in [None, Some(vec![0x30, 0x00]), Some(b"cookie".to_vec())] {
        let broken = Outcome {
            controls: vec![Control {
                oid: PAGED_RESULTS.into(),
                critical: false,
                value,
            }],
            ..Outcome::default()
        };
        assert!(broken.next_page().is_err(), "{broken:?}");
    }
}

/// Requests as RFC 4511 encodes them, byte for byte (worked out by hand from X.690).
#[test]
fn requests_are_encoded_as_the_rfc_says() {
    assert_eq!(
        bind_request(1, "cn=a", "pw"),
        [
            0x30, 0x12, 0x02, 0x01, 0x01, 0x60, 0x0d, 0x02, 0x01, 0x03, 0x04, 0x04, b'c', b'n',
            b'=', b'a', 0x80, 0x02, b'p', b'w'
        ]
    );
    assert_eq!(
        unbind_request(2),
        [0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00]
    );
    assert_eq!(
        abandon_request(3, 2),
        [0x30, 0x06, 0x02, 0x01, 0x03, 0x50, 0x01, 0x02]
    );
    let filter = LdapFilter::parse("(&(!(cn=a*b*c))(uid>=x)(mail=*)(cn:dn:2.5.13.2:=y))").unwrap();
    let request = search_request(300, "o=x", SearchScope::Sub, &filter, &["cn"], &[]);
    let expected: Vec<u8> = [
        &[0x30, 0x5b, 0x02, 0x02, 0x01, 0x2c][..],
        &[0x63, 0x55, 0x04, 0x03, b'o', b'=', b'x'],
        // scope, aliases, size and time limits, types only
        &[
            0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01,
            0x00,
        ],
        // and
        &[0xa0, 0x39],
        // not (substrings cn: initial a, any b, final c)
        &[0xa2, 0x11, 0xa4, 0x0f, 0x04, 0x02, b'c', b'n', 0x30, 0x09],
        &[0x80, 0x01, b'a', 0x81, 0x01, b'b', 0x82, 0x01, b'c'],
        // uid >= x
        &[0xa5, 0x08, 0x04, 0x03, b'u', b'i', b'd', 0x04, 0x01, b'x'],
        // mail present
        &[0x87, 0x04, b'm', b'a', b'i', b'l'],
        // extensible: rule, type, value, dnAttributes
        &[
            0xa9, 0x14, 0x81, 0x08, b'2', b'.', b'5', b'.', b'1', b'3', b'.', b'2',
        ],
        &[0x82, 0x02, b'c', b'n', 0x83, 0x01, b'y', 0x84, 0x01, 0xff],
        // attributes
        &[0x30, 0x04, 0x04, 0x02, b'c', b'n'],
    ]
    .concat();
    assert_eq!(request, expected);
}

/// Integers take the fewest bytes two's complement allows; lengths of 128 bytes and more
/// take the long form.
#[test]
fn integers_and_lengths_take_their_shortest_form() {
    for (n, want) in [
        (0_i64, &[0_u8][..]),
        (127, &[0x7f]),
        (128, &[0x00, 0x80]),
        (256, &[0x01, 0x00]),
        (-1, &[0xff]),
        (-128, &[0x80]),
        (-129, &[0xff, 0x7f]),
        (i64::from(i32::MAX), &[0x7f, 0xff, 0xff, 0xff]),
    ] {
        let mut out = Vec::new();
        integer(&mut out, INTEGER, n);
        assert_eq!(&out[2..], want, "{n}");
        assert_eq!(read_integer(&out[2..]), Ok(n));
    }
    let mut out = Vec::new();
    bytes(&mut out, OCTET_STRING, &[7; 200]);
    assert_eq!(&out[..3], [0x04, 0x81, 200]);
    let mut out = Vec::new();
    bytes(&mut out, OCTET_STRING, &[7; 70_000]);
    assert_eq!(&out[..5], [0x04, 0x83, 0x01, 0x11, 0x70]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any bytes: framing and decoding answer, never panic.
    #[test]
    fn any_bytes_decode_or_are_refused(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = message_length(&data);
        let _ = decode(&data);
        let _ = message_id(&data);
    }

    /// An entry written as a server writes it decodes to its DN and values.
    #[test]
    fn entries_decode_to_what_was_sent(
        dn in "[a-z=,]{0,40}",
        attributes in proptest::collection::vec(
            ("[a-z]{1,8}", proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4)),
            0..6,
        ),
    ) {
        let refs: Vec<Vec<&[u8]>> = attributes
            .iter()
            .map(|(_, vs)| vs.iter().map(Vec::as_slice).collect())
            .collect();
        let pairs: Vec<(&str, &[&[u8]])> = attributes
            .iter()
            .zip(&refs)
            .map(|((name, _), vs)| (name.as_str(), vs.as_slice()))
            .collect();
        let message = entry_message(9, dn.as_bytes(), &pairs);
        prop_assert_eq!(message_length(&message), Ok(Some(message.len())));
        let e = decoded_entry(&message);
        prop_assert_eq!(&e.dn, &dn);
        let mut want: std::collections::HashMap<&str, Vec<Vec<u8>>> = std::collections::HashMap::new();
        for (name, values) in &attributes {
            want.entry(name.as_str()).or_default().extend(values.iter().cloned());
        }
        prop_assert_eq!(e.attributes.len(), want.len());
        for (name, values) in want {
            prop_assert_eq!(e.values(name), values.as_slice());
        }
    }
}
