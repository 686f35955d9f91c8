//! A blocking LDAP connection: TCP, ldaps or StartTLS over rustls, a simple bind, searches
//! one at a time, unbind.
//!
//! Blocking on purpose: a read runs one operation at a time, so a socket read that waits is
//! all the scheduling it needs (no runtime, no poller). Responses are read into one buffer
//! and decoded from it ([`super::protocol`]); once the reader has caught up with the server,
//! it pauses before reading again, so that it wakes once for many entries rather than once
//! for each.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::filter::LdapFilter;
use super::protocol::Entry;
use super::protocol::{self, Control, Message, Outcome, Response, SearchScope};

/// Why an operation got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The URL cannot be used.
    #[error("`{0}` is not an ldap:// or ldaps:// URL with a host")]
    Url(String),
    /// Connecting, the TLS handshake, reading or writing failed; or the server sent what
    /// LDAP does not allow there. The connection is unusable after it.
    #[error("{0}")]
    Broken(String),
    /// The server refused StartTLS.
    #[error("the server refused StartTLS: result {}{}", .0.code, parenthesised(&.0.message))]
    StartTls(Outcome),
    /// One response could not be decoded; the connection stays usable.
    #[error("{0}")]
    Malformed(#[from] protocol::Malformed),
}

/// ` (text)`, or nothing for no text.
pub fn parenthesised(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// How a connection is secured.
#[derive(Debug, Clone)]
pub enum Security {
    /// In the clear.
    None,
    /// StartTLS after connecting, verified with this configuration.
    StartTls(Arc<rustls::ClientConfig>),
    /// TLS from the first byte (an `ldaps://` URL).
    Ldaps(Arc<rustls::ClientConfig>),
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(buf),
            Self::Tls(s) => s.write_all(buf).and_then(|()| s.flush()),
        }
    }
}

/// How long a read waits after one that emptied the socket (see `receive`).
const NAP: Duration = Duration::from_micros(200);

/// The first size of the receive buffer; it grows to the largest message.
const BUFFER: usize = 64 * 1024;

/// An open LDAP connection.
pub struct LdapConnection {
    stream: Stream,
    /// Bytes received; `buffer[start..end]` are not decoded yet.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// Where in `buffer` the message received last is.
    last: std::ops::Range<usize>,
    last_id: i32,
    timeout: Duration,
    /// Whether the last read emptied the socket (and no request was sent since).
    drained: bool,
    /// Why the connection cannot be used any more, once it cannot.
    broken: Option<String>,
}

impl std::fmt::Debug for LdapConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConnection")
            .field("last_id", &self.last_id)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl LdapConnection {
    /// Connects to `url` within `connect_timeout`, secured as `security` says; every later
    /// wait for the server is bounded by `timeout`.
    ///
    /// # Errors
    /// [`ConnectionError`] saying why no usable connection came of it.
    pub fn open(
        url: &str,
        security: &Security,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, ConnectionError> {
        let (host, port, ldaps) =
            super::url::host_and_port(url).ok_or_else(|| ConnectionError::Url(url.to_owned()))?;
        let broken = |e: io::Error| ConnectionError::Broken(e.to_string());
        let addresses = (host.as_str(), port).to_socket_addrs().map_err(broken)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        let mut tcp = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let tcp = tcp.ok_or_else(|| broken(last))?;
        tcp.set_nodelay(true).map_err(broken)?;
        tcp.set_read_timeout(Some(timeout)).map_err(broken)?;
        tcp.set_write_timeout(Some(timeout)).map_err(broken)?;
        let mut conn = Self {
            stream: Stream::Plain(tcp),
            buffer: vec![0; BUFFER],
            start: 0,
            end: 0,
            last: 0..0,
            last_id: 0,
            drained: false,
            timeout,
            broken: None,
        };
        match (security, ldaps) {
            (Security::Ldaps(config), true) => conn.start_tls(config, &host)?,
            (Security::StartTls(config), false) => {
                let id = conn.next_id();
                conn.send(&protocol::start_tls_request(id))?;
                match conn.answer(id)? {
                    // Bytes that came after the answer, before TLS, would be read as if
                    // they had come over TLS: whoever is on the path could append made-up
                    // answers (the STARTTLS response injection of mail clients).
                    Response::Extended(_) if conn.start != conn.end => {
                        return Err(conn.break_with(
                            "the server sent more after its answer to StartTLS, before TLS began",
                        ));
                    }
                    Response::Extended(o) if o.code == 0 => conn.start_tls(config, &host)?,
                    Response::Extended(o) => return Err(ConnectionError::StartTls(o)),
                    _ => {
                        return Err(
                            conn.break_with("the server answered StartTLS with another response")
                        );
                    }
                }
            }
            (Security::None, false) => {}
            _ => {
                return Err(ConnectionError::Broken(format!(
                    "`{url}` does not match the configured TLS"
                )));
            }
        }
        Ok(conn)
    }

    /// Wraps the TCP stream in TLS and completes the handshake, so that a certificate the
    /// configuration does not trust fails here.
    fn start_tls(
        &mut self,
        config: &Arc<rustls::ClientConfig>,
        host: &str,
    ) -> Result<(), ConnectionError> {
        let Stream::Plain(tcp) = &self.stream else {
            return Err(ConnectionError::Broken("TLS is already on".into()));
        };
        let mut tcp = tcp
            .try_clone()
            .map_err(|e| ConnectionError::Broken(e.to_string()))?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| ConnectionError::Broken(format!("`{host}`: {e}")))?;
        let mut tls = rustls::ClientConnection::new(Arc::clone(config), name)
            .map_err(|e| ConnectionError::Broken(format!("TLS: {e}")))?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp).map_err(|e| {
                ConnectionError::Broken(format!("TLS handshake: {}", describe(&e, self.timeout)))
            })?;
        }
        self.stream = Stream::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)));
        Ok(())
    }

    /// A simple bind as `dn`.
    ///
    /// # Errors
    /// [`ConnectionError`] when no answer came; a refusal is an [`Outcome`] with its code.
    pub fn simple_bind(&mut self, dn: &str, password: &str) -> Result<Outcome, ConnectionError> {
        let id = self.next_id();
        self.send(&protocol::bind_request(id, dn, password))?;
        match self.answer(id)? {
            Response::Bind(o) => Ok(o),
            _ => Err(self.break_with("the server answered the bind with another response")),
        }
    }

    /// Starts a search, read with [`Search::read_into`].
    ///
    /// # Errors
    /// [`ConnectionError`] when the request cannot be sent.
    pub fn search(
        &mut self,
        base: &str,
        scope: SearchScope,
        filter: &LdapFilter,
        attributes: &[impl AsRef<str>],
        controls: &[Control],
    ) -> Result<Search<'_>, ConnectionError> {
        let id = self.next_id();
        self.send(&protocol::search_request(
            id, base, scope, filter, attributes, controls,
        ))?;
        Ok(Search {
            conn: self,
            id,
            done: false,
        })
    }

    /// Ends the session politely (errors do not matter: the connection closes either way).
    pub fn unbind(mut self) {
        let id = self.next_id();
        let _ = self.send(&protocol::unbind_request(id));
    }

    fn next_id(&mut self) -> i32 {
        self.last_id = self.last_id.checked_add(1).unwrap_or(1);
        self.last_id
    }

    fn break_with(&mut self, why: impl Into<String>) -> ConnectionError {
        let why = why.into();
        self.broken = Some(why.clone());
        ConnectionError::Broken(why)
    }

    fn io_error(&mut self, e: &io::Error) -> ConnectionError {
        self.break_with(describe(e, self.timeout))
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        self.drained = false;
        if let Some(why) = &self.broken {
            return Err(ConnectionError::Broken(why.clone()));
        }
        self.stream.write_all(bytes).map_err(|e| self.io_error(&e))
    }

    /// The next response to request `id`. Responses to other requests (the rest of a search
    /// given up on) are skipped; the server's notice of disconnection is an error.
    fn answer(&mut self, id: i32) -> Result<Response, ConnectionError> {
        loop {
            let bytes = self.receive()?;
            let message = protocol::decode(bytes);
            match message {
                Ok(Message { id: got, response }) if got == id => return Ok(response),
                Ok(Message {
                    id: 0,
                    response: Response::Extended(o),
                }) => {
                    return Err(self.break_with(format!(
                        "the server ended the connection: result {}{}",
                        o.code,
                        parenthesised(&o.message)
                    )));
                }
                Ok(_) => {}
                // One that cannot be decoded is skipped only when its id shows it belongs
                // to another request: skipping an entry of this search would lose it.
                Err(e) => match protocol::message_id(self.last_message()) {
                    Some(other) if other != id => {}
                    _ => return Err(e.into()),
                },
            }
        }
    }

    /// The bytes of the message [`Self::receive`] returned last.
    fn last_message(&self) -> &[u8] {
        &self.buffer[self.last.clone()]
    }

    /// The next whole message's bytes, read from the socket as needed.
    fn receive(&mut self) -> Result<&[u8], ConnectionError> {
        if let Some(why) = &self.broken {
            return Err(ConnectionError::Broken(why.clone()));
        }
        loop {
            let pending = &self.buffer[self.start..self.end];
            let wanted = match protocol::message_length(pending) {
                Ok(Some(n)) if n <= pending.len() => {
                    let at = self.start;
                    self.start += n;
                    self.last = at..at + n;
                    return Ok(&self.buffer[at..at + n]);
                }
                Ok(Some(n)) => n,
                Ok(None) => 16,
                Err(e) => return Err(self.break_with(e.to_string())),
            };
            // Room for more: the pending bytes move to the front; a full buffer grows as a
            // long message's bytes arrive (not at once to the length its header claims).
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buffer.len() {
                let grown = wanted.min(self.buffer.len() * 2);
                self.buffer.resize(grown, 0);
            }
            // A reader that keeps up with the server would wake for each entry it writes,
            // and waking a thread blocked on the socket costs the kernel more than the copy:
            // after a read that emptied the socket, the next one waits a moment and finds
            // many entries. (A no-change re-sync at 100,000 users spent 0.42–0.47 s of its
            // CPU in the kernel without the wait, 0.24–0.26 s with it.) The first read after
            // a request does not wait.
            if self.drained {
                std::thread::sleep(NAP);
            }
            let room = self.buffer.len() - self.end;
            match self.stream.read(&mut self.buffer[self.end..]) {
                Ok(0) => return Err(self.break_with("the server closed the connection")),
                Ok(n) => {
                    self.end += n;
                    self.drained = n < room;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(&e)),
            }
        }
    }
}

/// What went wrong with the socket, in words: a read that timed out says after how long.
fn describe(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {} s", timeout.as_secs())
        }
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
        _ => e.to_string(),
    }
}

/// A search under way on a connection.
#[derive(Debug)]
pub struct Search<'a> {
    conn: &'a mut LdapConnection,
    id: i32,
    done: bool,
}

impl Search<'_> {
    /// Reads the search to its end: entries go to `entries` and continuation references'
    /// URLs to `references` as they arrive (what came before an error stays there); returns
    /// how it ended.
    ///
    /// # Errors
    /// [`ConnectionError::Malformed`] for a response that cannot be decoded (the search is
    /// abandoned, the connection stays usable); any other error ends the connection.
    pub fn read_into(
        mut self,
        entries: &mut Vec<Entry>,
        references: &mut Vec<String>,
    ) -> Result<Outcome, ConnectionError> {
        loop {
            match self.conn.answer(self.id)? {
                Response::Entry(e) => entries.push(e),
                Response::Reference(urls) => references.extend(urls),
                Response::SearchDone(o) => {
                    self.done = true;
                    return Ok(o);
                }
                Response::Intermediate => {}
                _ => {
                    return Err(self
                        .conn
                        .break_with("the server answered a search with another response"));
                }
            }
        }
    }
}

impl Drop for Search<'_> {
    /// A search left before its end is abandoned, so that the server stops sending it; what
    /// it sent meanwhile is skipped by the next operation.
    fn drop(&mut self) {
        if !self.done && self.conn.broken.is_none() {
            let id = self.conn.next_id();
            let _ = self.conn.send(&protocol::abandon_request(id, self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{ConnectionError, LdapConnection, Security};

    /// A server on a loopback port that accepts one connection and answers each request it
    /// reads with the next of `answers`, byte for byte; its URL and thread.
    fn answering(answers: Vec<&'static [u8]>) -> (String, std::thread::JoinHandle<()>) {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ldap://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut client, _) = listener.accept().unwrap();
            let mut request = [0_u8; 256];
            for answer in answers {
                let _ = client.read(&mut request).unwrap();
                client.write_all(answer).unwrap();
            }
        });
        (url, server)
    }

    /// A response to this request that cannot be decoded is an error, even when its message
    /// id cannot be read: skipped, an entry would be lost from a read that looks whole.
    /// A broken answer to an earlier request (a search given up on) is skipped.
    #[test]
    fn an_undecodable_answer_to_this_request_is_an_error() {
        // Message id 9 (another request), with an operation no client receives; then a bind
        // response to id 1: result 0, empty DN and message.
        let first: &[u8] = &[
            0x30, 0x05, 0x02, 0x01, 0x09, 0x42, 0x00, 0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07,
            0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        // An answer whose id has nine bytes, which no message id has.
        let second: &[u8] = &[
            0x30, 0x0d, 0x02, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x61, 0x00,
        ];
        let (url, server) = answering(vec![first, second]);
        let second = Duration::from_secs(5);
        let mut conn = LdapConnection::open(&url, &Security::None, second, second).unwrap();
        assert_eq!(conn.simple_bind("cn=x", "secret").unwrap().code, 0);
        let err = conn.simple_bind("cn=x", "secret").unwrap_err();
        assert!(matches!(err, ConnectionError::Malformed(_)), "{err:?}");
        server.join().unwrap();
    }

    /// Bytes the server (or whoever is on the path) sends after its StartTLS answer, before
    /// TLS begins, are refused: read after the handshake, they would pass for answers that
    /// came over TLS (here, a bind accepted).
    #[test]
    fn bytes_after_the_starttls_answer_are_refused() {
        // StartTLS accepted (id 1), then a bind accepted (id 2), in one segment.
        let (url, server) = answering(vec![&[
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            0x30, 0x0c, 0x02, 0x01, 0x02, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ]]);
        let second = Duration::from_secs(5);
        let tls = Arc::new(crate::tls::unverified_client_config().unwrap());
        let Err(err) = LdapConnection::open(&url, &Security::StartTls(tls), second, second) else {
            panic!("the connection was accepted");
        };
        assert_eq!(
            err,
            ConnectionError::Broken(
                "the server sent more after its answer to StartTLS, before TLS began".into()
            )
        );
        server.join().unwrap();
    }

    /// A server that accepts connections and never answers: the bind, or the TLS handshake,
    /// fails after the operation timeout, says so, and the connection stays failed.
    #[test]
    fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let second = Duration::from_secs(1);
        let url = format!("ldap://{address}");
        let mut conn = LdapConnection::open(&url, &Security::None, second, second).unwrap();
        let started = Instant::now();
        let err = conn.simple_bind("cn=x", "secret").unwrap_err();
        assert!(started.elapsed() >= second, "{:?}", started.elapsed());
        assert_eq!(err, ConnectionError::Broken("no answer within 1 s".into()));
        assert_eq!(conn.simple_bind("cn=x", "secret").unwrap_err(), err);
        let tls = Arc::new(crate::tls::unverified_client_config().unwrap());
        let ldaps = format!("ldaps://{address}");
        let err = LdapConnection::open(&ldaps, &Security::Ldaps(tls), second, second).unwrap_err();
        assert_eq!(
            err,
            ConnectionError::Broken("TLS handshake: no answer within 1 s".into())
        );
        drop(listener);
    }
}
