//! The store's connections: a bounded pool for statements, and one connection that listens
//! to the change feed for every waiter.
//!
//! The bound keeps a node under its share of the server's `max_connections` however many
//! requests arrive at once: past it, callers wait for a connection to come back, served in
//! the order they came (one that just came does not pass those waiting). Waiting on
//! the feed takes no pooled connection for its whole wait (which would let waiters starve
//! writers): one connection per store `LISTEN`s and wakes every waiter.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;

use super::{Conn, ConnCache, Endpoint};
use crate::store::StoreError;

/// Connections a store opens at most for statements. A sync's lock and the feed's
/// listener hold one more each.
pub(crate) const MAX_OPEN: usize = 32;

/// Idle connections kept for reuse; others are closed when given back.
const MAX_IDLE: usize = 16;

/// How long a caller waits for a connection when all are busy.
const WAIT: Duration = Duration::from_secs(30);

/// How often a waiter on the feed looks again without being woken: the listener's
/// connection may be broken before anything says so.
const FEED_RECHECK: Duration = Duration::from_secs(2);

/// Connections for statements, at most [`MAX_OPEN`] at a time.
pub(super) struct Pool {
    state: Mutex<State>,
    returned: Condvar,
}

struct State {
    idle: Vec<Conn>,
    /// Connections open: idle, lent or being opened.
    open: usize,
    /// Callers waiting for a connection, by ticket, in the order they came: the first is
    /// served first, and a new caller waits behind them.
    queue: VecDeque<u64>,
    next_ticket: u64,
}

impl State {
    /// Whether the caller holding `ticket` (none: one that just came) is next to be served.
    fn first(&self, ticket: Option<u64>) -> bool {
        match ticket {
            None => self.queue.is_empty(),
            Some(t) => self.queue.front() == Some(&t),
        }
    }
}

impl Pool {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                queue: VecDeque::new(),
                next_ticket: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, a new one while fewer than [`MAX_OPEN`] are open, or, when all
    /// are busy, one given back within [`WAIT`], in the order callers came.
    pub(super) fn get(&self, endpoint: &Endpoint) -> Result<Pooled<'_>, StoreError> {
        let deadline = Instant::now() + WAIT;
        let mut state = self.state();
        let mut ticket = None;
        loop {
            if state.first(ticket) {
                if let Some(conn) = state.idle.pop() {
                    self.served(&mut state, ticket);
                    return Ok(self.lend(conn));
                }
                if state.open < MAX_OPEN {
                    state.open += 1;
                    self.served(&mut state, ticket);
                    drop(state);
                    return match connect(endpoint) {
                        Ok(conn) => Ok(self.lend(conn)),
                        Err(e) => {
                            self.closed();
                            Err(e)
                        }
                    };
                }
            }
            let mine = *ticket.get_or_insert_with(|| {
                let t = state.next_ticket;
                state.next_ticket += 1;
                state.queue.push_back(t);
                t
            });
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.queue.retain(|&t| t != mine);
                drop(state);
                // The caller behind may be first now.
                self.returned.notify_all();
                return Err(StoreError::Backend(format!(
                    "all {MAX_OPEN} connections to PostgreSQL stayed busy for {} s",
                    WAIT.as_secs()
                )));
            }
            state = self
                .returned
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The caller holding `ticket` leaves the queue, served; the next one may be served too
    /// (more than one connection may have come back).
    fn served(&self, state: &mut State, ticket: Option<u64>) {
        if ticket.is_some() {
            state.queue.pop_front();
            self.returned.notify_all();
        }
    }

    fn lend(&self, conn: Conn) -> Pooled<'_> {
        Pooled {
            pool: self,
            conn: Some(conn),
        }
    }

    /// One connection fewer open; the first waiter may open another. Every waiter is woken
    /// (each looks whether it is first).
    fn closed(&self) {
        self.state().open -= 1;
        self.returned.notify_all();
    }
}

/// A statement connection, as [`Pool::get`] opens it.
fn connect(endpoint: &Endpoint) -> Result<Conn, StoreError> {
    let mut client = endpoint.connect(&endpoint.config)?;
    // Every statement here is a lookup or a scan by index whose best plan does not depend
    // on the values bound: plan each once (when prepared), not at every call, which costs
    // more than running a lookup.
    client.batch_execute("SET plan_cache_mode = force_generic_plan")?;
    Ok(Conn {
        client,
        cache: ConnCache::default(),
    })
}

/// A connection of the pool, back to it when dropped.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if !conn.client.is_closed() {
            let mut state = self.pool.state();
            if state.idle.len() < MAX_IDLE {
                state.idle.push(conn);
                drop(state);
                self.pool.returned.notify_all();
                return;
            }
        }
        // Closed (or one idle too many): the slot is free for a new connection.
        drop(conn);
        self.pool.closed();
    }
}

/// Wakes waiters on the change feed: a thread holds a connection that `LISTEN`s on the
/// channel every event-writing transaction notifies, and counts the notifications.
pub(super) struct Feed {
    state: Mutex<FeedState>,
    notified: Condvar,
}

struct FeedState {
    /// Notifications seen (and listener restarts): a waiter sleeps while it is unchanged.
    heard: u64,
    listener: Listener,
}

/// Whether a listener runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listener {
    Off,
    /// A waiter is connecting one (without the lock: the others wait for it on `notified`).
    Starting,
    On,
}

/// Silence after which the listener asks its server whether it is still there: a peer that
/// vanished (a NAT or a balancer dropping the idle flow) says nothing, and waiters would
/// fall back to looking every [`FEED_RECHECK`] for good.
const LISTENER_PING: Duration = Duration::from_secs(30);

impl Feed {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(FeedState {
                heard: 0,
                listener: Listener::Off,
            }),
            notified: Condvar::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What has been heard so far, once a listener runs: a commit that notifies after this
    /// returns changes it.
    pub(super) fn listen(self: &Arc<Self>, endpoint: &Endpoint) -> Result<u64, StoreError> {
        let mut state = self.state();
        loop {
            match state.listener {
                Listener::On => return Ok(state.heard),
                Listener::Starting => {
                    state = self
                        .notified
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Listener::Off => break,
            }
        }
        state.listener = Listener::Starting;
        drop(state);
        let connected = connect_listener(endpoint);
        let mut state = self.state();
        // Started under the lock: a listener that fails at once says so (`heard`) after
        // this, not before.
        let started = connected.and_then(|client| {
            let feed = Arc::downgrade(self);
            std::thread::Builder::new()
                .name("usersync-feed".into())
                .spawn(move || relay(&feed, client))
                .map(drop)
                .map_err(|e| StoreError::Backend(format!("cannot start the feed's listener: {e}")))
        });
        state.listener = if started.is_ok() {
            Listener::On
        } else {
            Listener::Off
        };
        let heard = state.heard;
        drop(state);
        self.notified.notify_all();
        started.map(|()| heard)
    }

    /// Waits until something is heard after `heard`, or `until`, or [`FEED_RECHECK`].
    pub(super) fn wait(&self, heard: u64, until: Instant) {
        let until = until.min(Instant::now() + FEED_RECHECK);
        let mut state = self.state();
        while state.heard == heard {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .notified
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn heard(&self, listening: bool) {
        let mut state = self.state();
        state.heard += 1;
        if !listening {
            state.listener = Listener::Off;
        }
        drop(state);
        self.notified.notify_all();
    }
}

/// The listener's connection, with keepalives, listening.
fn connect_listener(endpoint: &Endpoint) -> Result<postgres::Client, StoreError> {
    let mut config = endpoint.config.clone();
    config.keepalives(true).keepalives_idle(LISTENER_PING);
    let mut client = endpoint.connect(&config)?;
    client.batch_execute("LISTEN usersync_events")?;
    Ok(client)
}

/// The listener's loop: tells the feed of every notification until the store is dropped
/// (seen within a second) or the connection fails (the next waiter starts another).
fn relay(feed: &Weak<Feed>, mut client: postgres::Client) {
    let mut last_word = Instant::now();
    loop {
        let next = client
            .notifications()
            .timeout_iter(Duration::from_secs(1))
            .next();
        let Some(feed) = feed.upgrade() else {
            return;
        };
        let next = match next {
            Ok(None) if last_word.elapsed() >= LISTENER_PING => {
                last_word = Instant::now();
                client.simple_query("SELECT 1").map(|_| None)
            }
            other => other,
        };
        match next {
            Ok(None) => {}
            Ok(Some(_)) => {
                last_word = Instant::now();
                // Whatever else arrived meanwhile is the same news.
                while let Ok(Some(_)) = client.notifications().iter().next() {}
                feed.heard(true);
            }
            Err(_) => {
                feed.heard(false);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::{MAX_OPEN, Pool};
    use crate::store::postgres::Endpoint;

    /// With every connection lent, callers are served in the order they came, and one that
    /// comes later waits behind them.
    #[test]
    fn waiting_callers_are_served_in_order() {
        let server = usersync_testkit::postgres::Postgres::start("pool");
        let url = server.create_database("pool");
        let endpoint = Endpoint::parse(&url).unwrap();
        let pool = Pool::new();
        let mut lent: Vec<_> = (0..MAX_OPEN)
            .map(|_| pool.get(&endpoint).unwrap())
            .collect();
        let served = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for caller in 0..3 {
                let (pool, endpoint, served) = (&pool, &endpoint, &served);
                scope.spawn(move || {
                    let conn = pool.get(endpoint).unwrap();
                    served.lock().unwrap().push(caller);
                    std::thread::sleep(Duration::from_millis(50));
                    drop(conn);
                });
                // Queued before the next one comes.
                while pool.state().queue.len() < caller + 1 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            // One back at a time: each goes to the first in line.
            for _ in 0..3 {
                drop(lent.pop());
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        assert_eq!(*served.lock().unwrap(), [0, 1, 2]);
        assert!(pool.state().queue.is_empty());
        drop(lent);
    }
}
