//! The LDAP messages a read sends and receives (RFC 4511), in BER (X.690): requests are
//! written into one buffer, responses decoded from the bytes as received, an entry's values
//! copied once, straight into an [`Entry`].
//!
//! Why not ldap3's codec: it parses each message into a tree with one allocation per tag,
//! clones that tree whole, then drops both; at 100,000 entries that was most of a no-change
//! sync's reading (BENCHMARKS.md).
//!
//! Only what LDAP uses is accepted: definite lengths, tag numbers below 31, a message of at
//! most [`MAX_MESSAGE`] bytes. Anything else is [`Malformed`], never a panic.

use foldhash::{HashMap, HashMapExt};

use super::filter::{CompareOp, LdapFilter};

/// The largest message accepted (a group of a million members is about 60 MB).
pub const MAX_MESSAGE: usize = 256 << 20;

/// The OID of the paged results control (RFC 2696).
pub const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// The OID of the StartTLS extended operation (RFC 4511 §4.14).
pub const START_TLS: &str = "1.3.6.1.4.1.1466.20037";

/// An entry as read: its DN and the requested attributes (names lower-cased), values as
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's DN, as the server wrote it.
    pub dn: String,
    /// Attribute (lower case) → values.
    pub attributes: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The values of `name` (any case).
    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        // Without a string per lookup when the name fits on the stack: a sync looks up
        // every mapped attribute of every entry.
        let mut buffer = [0_u8; 64];
        let found = match buffer.get_mut(..name.len()) {
            Some(lower) => {
                lower.copy_from_slice(name.as_bytes());
                lower.make_ascii_lowercase();
                std::str::from_utf8(lower)
                    .ok()
                    .and_then(|key| self.attributes.get(key))
            }
            None => self.attributes.get(&name.to_ascii_lowercase()),
        };
        found.map_or(&[], Vec::as_slice)
    }

    /// The first value of `name` as text (lossy for binary values).
    pub fn text(&self, name: &str) -> Option<String> {
        self.values(name)
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Builds an entry from a DN and text attributes (tests and tools).
    pub fn new<'a>(
        dn: &str,
        attributes: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>,
    ) -> Self {
        Self {
            dn: dn.to_owned(),
            attributes: attributes
                .into_iter()
                .map(|(k, vs)| {
                    (
                        k.to_ascii_lowercase(),
                        vs.into_iter().map(|v| v.as_bytes().to_vec()).collect(),
                    )
                })
                .collect(),
        }
    }
}

/// Why bytes are not an LDAP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed LDAP message: {0}")]
pub struct Malformed(pub &'static str);

// BER identifier octets: class, constructed bit, tag number.
const UNIVERSAL: u8 = 0x00;
const APPLICATION: u8 = 0x40;
const CONTEXT: u8 = 0x80;
const CONSTRUCTED: u8 = 0x20;

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const ENUMERATED: u8 = 0x0a;
const SEQUENCE: u8 = UNIVERSAL | CONSTRUCTED | 0x10;
const SET: u8 = UNIVERSAL | CONSTRUCTED | 0x11;

// Protocol operations (RFC 4511 §4.2–4.14).
const BIND_REQUEST: u8 = APPLICATION | CONSTRUCTED;
const BIND_RESPONSE: u8 = APPLICATION | CONSTRUCTED | 1;
const UNBIND_REQUEST: u8 = APPLICATION | 2;
const SEARCH_REQUEST: u8 = APPLICATION | CONSTRUCTED | 3;
const SEARCH_ENTRY: u8 = APPLICATION | CONSTRUCTED | 4;
const SEARCH_DONE: u8 = APPLICATION | CONSTRUCTED | 5;
const SEARCH_REFERENCE: u8 = APPLICATION | CONSTRUCTED | 19;
const EXTENDED_REQUEST: u8 = APPLICATION | CONSTRUCTED | 23;
const EXTENDED_RESPONSE: u8 = APPLICATION | CONSTRUCTED | 24;
const INTERMEDIATE_RESPONSE: u8 = APPLICATION | CONSTRUCTED | 25;
const CONTROLS: u8 = CONTEXT | CONSTRUCTED;
const REFERRAL: u8 = CONTEXT | CONSTRUCTED | 3;

/// How far a search reaches below its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    /// The base entry alone.
    Base = 0,
    /// Its children.
    One = 1,
    /// The whole subtree.
    Sub = 2,
}

/// A request control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// The control's OID.
    pub oid: String,
    /// Whether the server must refuse the operation rather than ignore the control.
    pub critical: bool,
    /// Its value, BER as the control defines it.
    pub value: Option<Vec<u8>>,
}

impl Control {
    /// The paged results control asking for `size` entries after `cookie` (empty at first).
    pub fn paged(size: u32, cookie: &[u8]) -> Self {
        let mut value = Vec::new();
        tlv(&mut value, SEQUENCE, |v| {
            integer(v, INTEGER, i64::from(size));
            bytes(v, OCTET_STRING, cookie);
        });
        Self {
            oid: PAGED_RESULTS.into(),
            critical: false,
            value: Some(value),
        }
    }
}

/// How an operation ended (RFC 4511 §4.1.9), with the response's controls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The result code: 0 is success.
    pub code: u32,
    /// The server's diagnostic message.
    pub message: String,
    /// Where the server referred the client (result 10).
    pub referrals: Vec<String>,
    /// The response's controls.
    pub controls: Vec<Control>,
}

impl Outcome {
    /// The cookie of the next page, when the response carries the paged results control
    /// and more pages follow; `None` without the control (the server did not page) or with
    /// an empty cookie (the last page).
    ///
    /// # Errors
    /// [`Malformed`] for a control that is there but unreadable: the read cannot tell
    /// whether it is over.
    pub fn next_page(&self) -> Result<Option<Vec<u8>>, Malformed> {
        let Some(control) = self.controls.iter().find(|c| c.oid == PAGED_RESULTS) else {
            return Ok(None);
        };
        let bad = Malformed("a paged results control without its cookie");
        let mut outer = Reader(control.value.as_deref().ok_or(bad.clone())?);
        let mut inner = Reader(outer.expect(SEQUENCE)?);
        inner.expect(INTEGER)?;
        let cookie = inner.expect(OCTET_STRING)?;
        Ok((!cookie.is_empty()).then(|| cookie.to_vec()))
    }
}

/// A response, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A search's entry.
    Entry(Entry),
    /// A search's continuation reference: where more entries may be.
    Reference(Vec<String>),
    /// The end of a search.
    SearchDone(Outcome),
    /// The answer to a bind.
    Bind(Outcome),
    /// The answer to an extended operation; message id 0 is the server's notice that it is
    /// closing the connection (RFC 4511 §4.4.1).
    Extended(Outcome),
    /// An intermediate response (nothing a read uses).
    Intermediate,
}

/// A response and the id of the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The request's message id (0: unsolicited).
    pub id: i32,
    /// What it says.
    pub response: Response,
}

/// The length of the first message in `buffer`, once its header has arrived; `Ok(None)`
/// while more bytes are needed to tell.
///
/// # Errors
/// [`Malformed`] when the bytes cannot start a message, or it would exceed [`MAX_MESSAGE`].
pub fn message_length(buffer: &[u8]) -> Result<Option<usize>, Malformed> {
    let Some(&tag) = buffer.first() else {
        return Ok(None);
    };
    if tag != SEQUENCE {
        return Err(Malformed("a message is not a SEQUENCE"));
    }
    let Some(&first) = buffer.get(1) else {
        return Ok(None);
    };
    let (length, header) = match first {
        n if n < 0x80 => (usize::from(n), 2),
        0x80 => return Err(Malformed("an indefinite length")),
        n => {
            let count = usize::from(n & 0x7f);
            if count > 4 {
                return Err(Malformed("a message too long"));
            }
            let Some(digits) = buffer.get(2..2 + count) else {
                return Ok(None);
            };
            let length = digits
                .iter()
                .fold(0_usize, |l, &d| (l << 8) | usize::from(d));
            (length, 2 + count)
        }
    };
    if length > MAX_MESSAGE {
        return Err(Malformed("a message too long"));
    }
    Ok(Some(header + length))
}

/// Decodes one whole message (as [`message_length`] delimits it).
///
/// # Errors
/// [`Malformed`] when it is not a response RFC 4511 describes.
pub fn decode(message: &[u8]) -> Result<Message, Malformed> {
    let mut outer = Reader(message);
    let mut envelope = Reader(outer.expect(SEQUENCE)?);
    if !outer.0.is_empty() {
        return Err(Malformed("bytes after the message"));
    }
    let id = i32::try_from(read_integer(envelope.expect(INTEGER)?)?)
        .map_err(|_| Malformed("a message id out of range"))?;
    let (tag, body) = envelope.next()?;
    let controls = match envelope.next_if(CONTROLS)? {
        Some(list) => controls(list)?,
        None => Vec::new(),
    };
    let response = match tag {
        SEARCH_ENTRY => Response::Entry(entry(body)?),
        SEARCH_REFERENCE => {
            let mut urls = Reader(body);
            let mut list = Vec::new();
            while !urls.0.is_empty() {
                list.push(text(urls.expect(OCTET_STRING)?)?);
            }
            Response::Reference(list)
        }
        SEARCH_DONE => Response::SearchDone(outcome(body, controls)?),
        BIND_RESPONSE => Response::Bind(outcome(body, controls)?),
        EXTENDED_RESPONSE => Response::Extended(outcome(body, controls)?),
        INTERMEDIATE_RESPONSE => Response::Intermediate,
        _ => return Err(Malformed("not a response a client receives")),
    };
    Ok(Message { id, response })
}

/// The message id of `message`, if it has one (for a message [`decode`] refuses).
pub fn message_id(message: &[u8]) -> Option<i32> {
    let mut outer = Reader(message);
    let mut envelope = Reader(outer.expect(SEQUENCE).ok()?);
    i32::try_from(read_integer(envelope.expect(INTEGER).ok()?).ok()?).ok()
}

/// `SearchResultEntry`: the DN, then each attribute's type and set of values.
fn entry(body: &[u8]) -> Result<Entry, Malformed> {
    let mut parts = Reader(body);
    let dn = text(parts.expect(OCTET_STRING)?)?;
    let mut list = Reader(parts.expect(SEQUENCE)?);
    // Sized to the attributes sent: a map one size too large is 400 bytes more per entry.
    let mut attributes: HashMap<String, Vec<Vec<u8>>> = HashMap::with_capacity(list.count());
    while !list.0.is_empty() {
        let mut pair = Reader(list.expect(SEQUENCE)?);
        let mut name = text(pair.expect(OCTET_STRING)?)?;
        name.make_ascii_lowercase();
        let mut set = Reader(pair.expect(SET)?);
        let mut values = Vec::with_capacity(set.count());
        while !set.0.is_empty() {
            values.push(set.expect(OCTET_STRING)?.to_vec());
        }
        // A server may list an attribute twice (in two cases, say): one list of values.
        attributes.entry(name).or_default().extend(values);
    }
    Ok(Entry { dn, attributes })
}

/// `LDAPResult`: the code, matched DN, diagnostic message, and referral if any; what follows
/// (a bind's SASL credentials, an extended response's name and value) is not needed.
fn outcome(body: &[u8], controls: Vec<Control>) -> Result<Outcome, Malformed> {
    let mut parts = Reader(body);
    let code = u32::try_from(read_integer(parts.expect(ENUMERATED)?)?)
        .map_err(|_| Malformed("a negative result code"))?;
    parts.expect(OCTET_STRING)?;
    let message = String::from_utf8_lossy(parts.expect(OCTET_STRING)?).into_owned();
    let mut referrals = Vec::new();
    if let Some(list) = parts.next_if(REFERRAL)? {
        let mut urls = Reader(list);
        while !urls.0.is_empty() {
            referrals.push(text(urls.expect(OCTET_STRING)?)?);
        }
    }
    Ok(Outcome {
        code,
        message,
        referrals,
        controls,
    })
}

fn controls(list: &[u8]) -> Result<Vec<Control>, Malformed> {
    let mut list = Reader(list);
    let mut out = Vec::new();
    while !list.0.is_empty() {
        let mut parts = Reader(list.expect(SEQUENCE)?);
        let oid = text(parts.expect(OCTET_STRING)?)?;
        let critical = match parts.next_if(BOOLEAN)? {
            Some([b]) => *b != 0,
            Some(_) => return Err(Malformed("a BOOLEAN not one byte long")),
            None => false,
        };
        let value = parts.next_if(OCTET_STRING)?.map(<[u8]>::to_vec);
        out.push(Control {
            oid,
            critical,
            value,
        });
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Result<String, Malformed> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Malformed("text that is not UTF-8"))
}

/// A two's complement INTEGER or ENUMERATED of at most eight bytes.
fn read_integer(bytes: &[u8]) -> Result<i64, Malformed> {
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(Malformed("an INTEGER of no or too many bytes"));
    }
    let negative = bytes[0] & 0x80 != 0;
    let start = if negative { -1_i64 } else { 0 };
    Ok(bytes.iter().fold(start, |n, &b| (n << 8) | i64::from(b)))
}

/// The elements of a BER encoding, one at a time.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next element's identifier and contents.
    fn next(&mut self) -> Result<(u8, &'a [u8]), Malformed> {
        let [tag, first, rest @ ..] = self.0 else {
            return Err(Malformed("an element cut short"));
        };
        if tag & 0x1f == 0x1f {
            return Err(Malformed("a tag number above 30"));
        }
        let (length, rest) = match *first {
            n if n < 0x80 => (usize::from(n), rest),
            0x80 => return Err(Malformed("an indefinite length")),
            n => {
                let count = usize::from(n & 0x7f);
                if count > 4 || rest.len() < count {
                    return Err(Malformed("an element cut short"));
                }
                let (digits, rest) = rest.split_at(count);
                (
                    digits
                        .iter()
                        .fold(0_usize, |l, &d| (l << 8) | usize::from(d)),
                    rest,
                )
            }
        };
        if rest.len() < length {
            return Err(Malformed("an element cut short"));
        }
        let (contents, rest) = rest.split_at(length);
        self.0 = rest;
        Ok((*tag, contents))
    }

    /// How many elements are left (each read only as far as its length).
    fn count(&self) -> usize {
        let mut rest = Reader(self.0);
        std::iter::from_fn(|| rest.next().ok()).count()
    }

    /// The next element's contents, which must have identifier `tag`.
    fn expect(&mut self, tag: u8) -> Result<&'a [u8], Malformed> {
        match self.next()? {
            (t, contents) if t == tag => Ok(contents),
            _ => Err(Malformed("an element of another type than expected")),
        }
    }

    /// The next element's contents if it has identifier `tag` (an optional element).
    fn next_if(&mut self, tag: u8) -> Result<Option<&'a [u8]>, Malformed> {
        if self.0.first() == Some(&tag) {
            self.expect(tag).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Writes an element whose contents `f` writes, then fixes its length in front of them.
fn tlv(out: &mut Vec<u8>, tag: u8, f: impl FnOnce(&mut Vec<u8>)) {
    out.push(tag);
    let at = out.len();
    out.push(0);
    f(out);
    let length = out.len() - at - 1;
    if length < 0x80 {
        out[at] = length as u8;
    } else {
        let digits = length.to_be_bytes();
        let skip = digits.iter().take_while(|&&d| d == 0).count();
        let digits = &digits[skip..];
        out[at] = 0x80 | digits.len() as u8;
        out.splice(at + 1..at + 1, digits.iter().copied());
    }
}

fn bytes(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    tlv(out, tag, |o| o.extend_from_slice(value));
}

/// A two's complement INTEGER (or ENUMERATED) in the fewest bytes.
fn integer(out: &mut Vec<u8>, tag: u8, n: i64) {
    let digits = n.to_be_bytes();
    let mut skip = 0;
    while skip < 7 {
        let (d, next) = (digits[skip], digits[skip + 1]);
        if (d == 0 && next & 0x80 == 0) || (d == 0xff && next & 0x80 != 0) {
            skip += 1;
        } else {
            break;
        }
    }
    bytes(out, tag, &digits[skip..]);
}

/// An LDAPMessage: id, operation, controls.
fn message(id: i32, controls: &[Control], operation: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    tlv(&mut out, SEQUENCE, |o| {
        integer(o, INTEGER, i64::from(id));
        operation(o);
        if !controls.is_empty() {
            tlv(o, CONTROLS, |o| {
                for c in controls {
                    tlv(o, SEQUENCE, |o| {
                        bytes(o, OCTET_STRING, c.oid.as_bytes());
                        if c.critical {
                            bytes(o, BOOLEAN, &[0xff]);
                        }
                        if let Some(v) = &c.value {
                            bytes(o, OCTET_STRING, v);
                        }
                    });
                }
            });
        }
    });
    out
}

/// A simple bind (RFC 4511 §4.2), LDAP version 3.
pub fn bind_request(id: i32, dn: &str, password: &str) -> Vec<u8> {
    message(id, &[], |o| {
        tlv(o, BIND_REQUEST, |o| {
            integer(o, INTEGER, 3);
            bytes(o, OCTET_STRING, dn.as_bytes());
            bytes(o, CONTEXT, password.as_bytes());
        });
    })
}

/// The end of the session (RFC 4511 §4.3).
pub fn unbind_request(id: i32) -> Vec<u8> {
    message(id, &[], |o| bytes(o, UNBIND_REQUEST, &[]))
}

/// Asks the server to stop sending the answer to request `target` (RFC 4511 §4.11).
pub fn abandon_request(id: i32, target: i32) -> Vec<u8> {
    message(id, &[], |o| integer(o, APPLICATION | 16, i64::from(target)))
}

/// The StartTLS extended request (RFC 4511 §4.14).
pub fn start_tls_request(id: i32) -> Vec<u8> {
    message(id, &[], |o| {
        tlv(o, EXTENDED_REQUEST, |o| {
            bytes(o, CONTEXT, START_TLS.as_bytes());
        });
    })
}

/// A search (RFC 4511 §4.5.1): no size or time limit of the client's, aliases not
/// dereferenced, types and values.
pub fn search_request(
    id: i32,
    base: &str,
    scope: SearchScope,
    filter: &LdapFilter,
    attributes: &[impl AsRef<str>],
    controls: &[Control],
) -> Vec<u8> {
    message(id, controls, |o| {
        tlv(o, SEARCH_REQUEST, |o| {
            bytes(o, OCTET_STRING, base.as_bytes());
            integer(o, ENUMERATED, scope as i64);
            integer(o, ENUMERATED, 0);
            integer(o, INTEGER, 0);
            integer(o, INTEGER, 0);
            bytes(o, BOOLEAN, &[0]);
            encode_filter(o, filter);
            tlv(o, SEQUENCE, |o| {
                for a in attributes {
                    bytes(o, OCTET_STRING, a.as_ref().as_bytes());
                }
            });
        });
    })
}

/// A filter in its BER form (RFC 4511 §4.5.1.7).
fn encode_filter(out: &mut Vec<u8>, filter: &LdapFilter) {
    let assertion = |out: &mut Vec<u8>, tag: u8, attribute: &str, value: &[u8]| {
        tlv(out, CONTEXT | CONSTRUCTED | tag, |o| {
            bytes(o, OCTET_STRING, attribute.as_bytes());
            bytes(o, OCTET_STRING, value);
        });
    };
    match filter {
        LdapFilter::And(list) | LdapFilter::Or(list) => {
            let tag = if matches!(filter, LdapFilter::And(_)) {
                0
            } else {
                1
            };
            tlv(out, CONTEXT | CONSTRUCTED | tag, |o| {
                for f in list {
                    encode_filter(o, f);
                }
            });
        }
        LdapFilter::Not(inner) => tlv(out, CONTEXT | CONSTRUCTED | 2, |o| encode_filter(o, inner)),
        LdapFilter::Compare {
            attribute,
            op,
            value,
        } => {
            let tag = match op {
                CompareOp::Equal => 3,
                CompareOp::GreaterOrEqual => 5,
                CompareOp::LessOrEqual => 6,
                CompareOp::Approx => 8,
            };
            assertion(out, tag, attribute, value);
        }
        LdapFilter::Present { attribute } => bytes(out, CONTEXT | 7, attribute.as_bytes()),
        LdapFilter::Substring {
            attribute,
            initial,
            any,
            last,
        } => tlv(out, CONTEXT | CONSTRUCTED | 4, |o| {
            bytes(o, OCTET_STRING, attribute.as_bytes());
            tlv(o, SEQUENCE, |o| {
                if let Some(v) = initial {
                    bytes(o, CONTEXT, v);
                }
                for v in any {
                    bytes(o, CONTEXT | 1, v);
                }
                if let Some(v) = last {
                    bytes(o, CONTEXT | 2, v);
                }
            });
        }),
        LdapFilter::Extensible {
            attribute,
            dn_attributes,
            rule,
            value,
        } => tlv(out, CONTEXT | CONSTRUCTED | 9, |o| {
            if let Some(r) = rule {
                bytes(o, CONTEXT | 1, r.as_bytes());
            }
            if let Some(a) = attribute {
                bytes(o, CONTEXT | 2, a.as_bytes());
            }
            bytes(o, CONTEXT | 3, value);
            if *dn_attributes {
                bytes(o, CONTEXT | 4, &[0xff]);
            }
        }),
    }
}

#[cfg(test)]
mod tests;
