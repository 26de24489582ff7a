//! Live events: the hub that fans committed events out to WebSocket and SSE
//! connections, by room and strictly within the caller's scope.
//!
//! The hub follows the `events` table (appended by the deriver in the indexer
//! crate) and keeps the retained events in memory for clients that resume.
//! Subscribing and publishing both happen under the hub's lock, so a resuming
//! client gets the retained events after its last id and then the live ones with
//! no gap and no duplicate. Each connection has a bounded queue; a connection
//! whose queue is full is dropped with a reason, never buffered without bound.

mod feed;
pub mod rooms;
pub(crate) mod socketio;
pub(crate) mod sse;
pub(crate) mod ws;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use certscope_indexer::events::EventKind;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{Notify, mpsc, watch};

pub use feed::spawn_feeder;
pub use rooms::{Refusal, Room};
pub use socketio::{PATH as SOCKET_IO_PATH, routes as socketio_routes};
pub use sse::stream as sse_stream;
pub use ws::upgrade as ws_upgrade;

use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;

/// Settings of live events.
#[derive(Debug, Clone)]
pub struct EventConfig {
    /// Events queued per connection before it counts as a slow consumer. A
    /// queued event is a pointer to the shared, retained event: cheap, so the
    /// queue can absorb a bulk change without dropping readers that keep up.
    pub queue: usize,
    pub max_connections_per_token: usize,
    pub max_rooms_per_connection: usize,
    /// Pings (WebSocket) and keep-alive comments (SSE) this often; a WebSocket
    /// peer silent for two intervals is dropped.
    pub heartbeat: Duration,
    /// Largest client message handled; larger ones get an error message.
    pub max_message_bytes: usize,
    /// Largest WebSocket frame read at all; larger ones close the connection.
    pub max_frame_bytes: usize,
    /// Events kept for resuming clients, by count and by age.
    pub retain_events: usize,
    pub retain_age: Duration,
    /// How long a dropped connection's last message may take to be written.
    pub close_grace: Duration,
    /// Lifetime of a ticket (for browsers that cannot send headers).
    pub ticket_ttl: Duration,
    /// Time a WebSocket client has to authenticate by message.
    pub auth_timeout: Duration,
    /// Connections from one address that may wait to authenticate at once.
    pub max_unauthenticated_per_address: usize,
}

impl EventConfig {
    pub const DEFAULT_QUEUE: usize = 8192;
    pub const DEFAULT_CONNECTIONS_PER_TOKEN: usize = 16;
    pub const DEFAULT_ROOMS: usize = 64;
    pub const DEFAULT_HEARTBEAT_SECS: u64 = 20;
    pub const DEFAULT_RETAIN: usize = 10_000;
    pub const DEFAULT_RETAIN_HOURS: u64 = 24;
    /// WebSocket upgrades from one address that may wait to authenticate at once.
    pub const DEFAULT_UNAUTHENTICATED_PER_ADDRESS: usize = 8;
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            queue: Self::DEFAULT_QUEUE,
            max_connections_per_token: Self::DEFAULT_CONNECTIONS_PER_TOKEN,
            max_rooms_per_connection: Self::DEFAULT_ROOMS,
            heartbeat: Duration::from_secs(Self::DEFAULT_HEARTBEAT_SECS),
            max_message_bytes: 16 << 10,
            max_frame_bytes: 1 << 20,
            retain_events: Self::DEFAULT_RETAIN,
            retain_age: Duration::from_secs(Self::DEFAULT_RETAIN_HOURS * 3600),
            close_grace: Duration::from_secs(5),
            ticket_ttl: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            max_unauthenticated_per_address: Self::DEFAULT_UNAUTHENTICATED_PER_ADDRESS,
        }
    }
}

/// One committed event as the hub keeps it: what rooms and scopes match on, and
/// the message every client receives, serialized once.
#[derive(Debug)]
pub struct Event {
    pub id: i64,
    pub organization_id: Option<i64>,
    pub certification_id: Option<i64>,
    /// Every certification it concerns (a risk: its linked ones): the
    /// certification rooms that carry it, and what auditors are checked against.
    pub certifications: Vec<i64>,
    pub user_ids: Vec<i64>,
    /// Operator notices and service events: the `notices` room.
    pub notice: bool,
    pub kind: String,
    /// Until when the hub keeps it for replay: measured on the monotonic clock
    /// from its age when read, so a step of the system clock neither drops
    /// the replay buffer nor keeps it forever.
    pub retain_until: tokio::time::Instant,
    /// `{"type":"event","id":…}`: the WebSocket message and the SSE data line,
    /// serialized once and shared (a clone is a reference count).
    pub json: axum::extract::ws::Utf8Bytes,
    /// The same text for the socket.io transport, whose encoder takes a
    /// serializable value: made once on first use, then written into each
    /// socket's packets as it is (neither parsed nor serialized again).
    raw: OnceLock<Box<RawValue>>,
}

impl Event {
    /// The event message as JSON text any serializer writes through.
    pub fn raw(&self) -> &RawValue {
        self.raw.get_or_init(|| {
            RawValue::from_string(self.json.to_string())
                // `json` is serialized by this process: always valid
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
        })
    }
}

crate::openapi::schemas::const_string!(EventType, "event");

/// An event as every client receives it (the AsyncAPI document's envelope).
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventMessage<'a> {
    r#type: EventType,
    /// Increasing in commit order: resume after the last one seen.
    id: i64,
    /// `certification.status_changed`, `evidence.submitted`, ...
    kind: &'a str,
    organization_id: Option<i64>,
    certification_id: Option<i64>,
    /// The data position (PostgreSQL snapshot) the event was derived at.
    position: &'a str,
    occurred_at: DateTime<Utc>,
    /// What happened; its shape depends on `kind`.
    #[schema(value_type = Object)]
    data: &'a serde_json::Value,
}

/// A row of the `events` table.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: i64,
    pub kind: String,
    pub organization_id: Option<i64>,
    pub certification_id: Option<i64>,
    pub certification_ids: Vec<i64>,
    pub user_ids: Vec<i64>,
    pub position: String,
    pub occurred_at: DateTime<Utc>,
    /// Seconds since it was recorded, by the database's clock.
    pub age: f64,
    pub data: serde_json::Value,
}

impl Event {
    /// An event read from the `events` table, kept for replay for `retain_age`
    /// from when it was recorded.
    pub fn stored(r: StoredEvent, retain_age: Duration) -> Self {
        let json = serde_json::to_string(&EventMessage {
            r#type: EventType,
            id: r.id,
            kind: &r.kind,
            organization_id: r.organization_id,
            certification_id: r.certification_id,
            position: &r.position,
            occurred_at: r.occurred_at,
            data: &r.data,
        })
        .unwrap_or_default();
        Self {
            id: r.id,
            organization_id: r.organization_id,
            certification_id: r.certification_id,
            certifications: r.certification_ids,
            user_ids: r.user_ids,
            notice: EventKind::parse(&r.kind).is_some_and(EventKind::is_notice),
            kind: r.kind,
            retain_until: retained_until(r.age, retain_age),
            json: json.into(),
            raw: OnceLock::new(),
        }
    }
}

/// When an event recorded `age` seconds ago (by the database's clock) leaves
/// the replay buffer, on the monotonic clock.
fn retained_until(age: f64, retain_age: Duration) -> tokio::time::Instant {
    let age = Duration::try_from_secs_f64(age.max(0.0)).unwrap_or(Duration::MAX);
    let now = tokio::time::Instant::now();
    now.checked_add(retain_age.saturating_sub(age))
        .unwrap_or(now)
}

/// Why the hub dropped a connection: a stable code, the WebSocket close code
/// and a message for people.
#[derive(Debug, Clone)]
pub struct Dropped {
    pub code: &'static str,
    pub close: u16,
    pub message: String,
}

/// Set once when the hub drops a connection; the connection's task waits on it.
#[derive(Debug, Default)]
pub struct Kick {
    reason: OnceLock<Dropped>,
    notify: Notify,
}

impl Kick {
    fn kick(&self, code: &'static str, close: u16, message: String) {
        if self
            .reason
            .set(Dropped {
                code,
                close,
                message,
            })
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    pub fn reason(&self) -> Option<&Dropped> {
        self.reason.get()
    }

    pub async fn kicked(&self) -> Dropped {
        loop {
            if let Some(r) = self.reason.get() {
                return r.clone();
            }
            self.notify.notified().await;
        }
    }
}

struct Subscriber {
    scope: Scope,
    rooms: BTreeSet<Room>,
    tx: mpsc::Sender<Arc<Event>>,
    kick: Arc<Kick>,
}

impl Subscriber {
    fn wants(&self, event: &Event) -> bool {
        rooms::visible(&self.scope, event) && self.rooms.iter().any(|r| r.carries(event))
    }
}

#[derive(Default)]
struct HubState {
    retained: VecDeque<Arc<Event>>,
    last_id: i64,
    /// Events at or below this id are no longer retained.
    pruned_through: i64,
    next_connection: u64,
    subscribers: HashMap<u64, Subscriber>,
    per_token: HashMap<u64, usize>,
    /// WebSocket connections still to authenticate, per client address.
    unauthenticated: HashMap<std::net::IpAddr, usize>,
}

/// Figures for `/metrics`.
#[derive(Debug, Default)]
pub struct EventMetrics {
    pub published: AtomicU64,
    pub delivered: AtomicU64,
    pub replayed: AtomicU64,
    pub resyncs: AtomicU64,
    pub refused_rooms: AtomicU64,
    pub bad_messages: AtomicU64,
    pub dropped_slow: AtomicU64,
    pub dropped_dead: AtomicU64,
    pub refused_connections: AtomicU64,
    /// Certification snapshots read from PostgreSQL...
    pub snapshots_read: AtomicU64,
    /// ...and served from a read that began after the subscriber's position.
    pub snapshots_shared: AtomicU64,
}

/// The fan-out point of live events in one server.
pub struct EventHub {
    pub config: EventConfig,
    pub metrics: EventMetrics,
    state: Mutex<HubState>,
    ready: watch::Sender<bool>,
    closing: std::sync::atomic::AtomicBool,
    tickets: moka::sync::Cache<String, Caller>,
    snapshots: Snapshots,
}

/// Certification snapshots, read a few at a time and shared.
///
/// When many clients subscribe at once (every dashboard reconnecting after a
/// restart; the soak's 200 subscribers), one aggregate over the
/// certification's requirements and evidence each took every database
/// connection and the later ones failed ("pool timed out"). Now at most
/// [`Snapshots::READS_AT_ONCE`] are read at a time, and a subscriber takes the
/// latest snapshot of its certification when that read began after the
/// subscriber's position: every event up to that position was committed
/// before the read, so the snapshot is at least as new as the position it is
/// sent with, exactly as a read of its own would be.
struct Snapshots {
    turns: tokio::sync::Semaphore,
    /// (organization, certification) -> (hub position when the read began,
    /// the snapshot).
    latest: moka::sync::Cache<(i64, i64), (i64, serde_json::Value)>,
}

impl Snapshots {
    /// Snapshot reads running at once; the rest wait for a turn (or for
    /// someone else's read).
    const READS_AT_ONCE: usize = 2;

    fn new() -> Self {
        Self {
            turns: tokio::sync::Semaphore::new(Self::READS_AT_ONCE),
            latest: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }

    /// The latest snapshot of `key` read after position `since`.
    fn fresh(&self, key: (i64, i64), since: i64) -> Option<serde_json::Value> {
        self.latest
            .get(&key)
            .filter(|(read_after, _)| *read_after >= since)
            .map(|(_, snapshot)| snapshot)
    }
}

/// Who opens a connection: the verified scope, the token's key for per-token
/// limits (a hash, never the token) and when the token expires.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    pub token: u64,
    pub expires: u64,
}

impl Caller {
    /// The caller of a bearer token, verified and admitted like any request's.
    pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
        let (scope, expires) = crate::auth::authenticate(state, token).await?;
        Ok(Caller {
            scope,
            token: crate::http::key_of("token", token.as_bytes()),
            expires,
        })
    }

    /// How long until the token expires (the connection ends then).
    pub fn remaining(&self) -> Duration {
        Duration::from_secs(self.expires.saturating_sub(unix_now()))
    }

    /// When the connection must end: the token's expiry, capped at
    /// [`MAX_CONNECTION_LIFE`] from now (a token may claim any `exp`; instant
    /// arithmetic on it must not overflow).
    pub fn deadline(&self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        now.checked_add(self.remaining().min(MAX_CONNECTION_LIFE))
            .unwrap_or(now)
    }

    pub fn has_expired(&self) -> bool {
        self.expires <= unix_now()
    }
}

/// The longest a live event connection lasts, whatever its token says.
pub const MAX_CONNECTION_LIFE: Duration = Duration::from_secs(365 * 24 * 3600);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// A slot held by a connection that has not authenticated yet; released when
/// dropped (authenticated, refused or timed out).
pub struct Unauthenticated {
    hub: Arc<EventHub>,
    ip: std::net::IpAddr,
}

impl Drop for Unauthenticated {
    fn drop(&mut self) {
        let mut s = self.hub.lock();
        if let Some(n) = s.unauthenticated.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.unauthenticated.remove(&self.ip);
            }
        }
    }
}

/// The outcome of a subscribe: what to send before the live events.
#[derive(Debug, Default)]
pub struct Subscribed {
    pub replay: Vec<Arc<Event>>,
    /// Set when the last id given cannot be resumed from.
    pub resync: Option<String>,
    pub last_id: i64,
}

/// A registered connection; dropping it unregisters.
pub struct Connection {
    pub id: u64,
    pub scope: Scope,
    pub rx: mpsc::Receiver<Arc<Event>>,
    pub kick: Arc<Kick>,
    /// When the token expires: the connection ends.
    pub expires: tokio::time::Instant,
    token: u64,
    hub: Arc<EventHub>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.disconnect(self.id, self.token);
    }
}

/// Resolves at `expires` (a connection's token expiry), with the reason to close.
pub async fn expiry(expires: tokio::time::Instant) -> Dropped {
    tokio::time::sleep_until(expires).await;
    Dropped {
        code: "token_expired",
        close: 4001,
        message: "the token expired; reconnect with a fresh one".into(),
    }
}

impl EventHub {
    pub fn new(config: EventConfig) -> Self {
        let tickets = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(config.ticket_ttl)
            .build();
        Self {
            config,
            metrics: EventMetrics::default(),
            state: Mutex::new(HubState::default()),
            ready: watch::channel(false).0,
            closing: std::sync::atomic::AtomicBool::new(false),
            tickets,
            snapshots: Snapshots::new(),
        }
    }

    /// Holds one of `ip`'s slots for a connection that has yet to
    /// authenticate; 429 when the address already holds them all, so that
    /// one client cannot pin sockets open without ever signing in.
    pub fn hold_unauthenticated(
        self: &Arc<Self>,
        ip: std::net::IpAddr,
    ) -> Result<Unauthenticated, ApiError> {
        let mut s = self.lock();
        let held = s.unauthenticated.entry(ip).or_default();
        if *held >= self.config.max_unauthenticated_per_address {
            drop(s);
            self.metrics.refused_connections.fetch_add(1, Relaxed);
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "{} connections from this address are already waiting to authenticate",
                    self.config.max_unauthenticated_per_address
                ),
                retry_after: self.config.auth_timeout,
            });
        }
        *held += 1;
        Ok(Unauthenticated {
            hub: self.clone(),
            ip,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // a panic under the lock leaves plain data; carry on with it
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of the newest event, and counts for `/metrics`.
    pub fn figures(&self) -> (i64, usize, usize, usize) {
        let s = self.lock();
        let rooms = s.subscribers.values().map(|c| c.rooms.len()).sum();
        let queued = s
            .subscribers
            .values()
            .map(|c| c.tx.max_capacity() - c.tx.capacity())
            .sum();
        (s.last_id, s.subscribers.len(), rooms, queued)
    }

    /// Ends every connection (the server is stopping) and refuses new ones, so
    /// that open streams do not hold up a graceful shutdown.
    pub fn shutdown(&self) {
        self.closing.store(true, Relaxed);
        let s = self.lock();
        for sub in s.subscribers.values() {
            sub.kick.kick(
                "shutting_down",
                1001,
                "the server is shutting down; reconnect".into(),
            );
        }
    }

    /// Waits until the hub has loaded the retained events.
    async fn wait_ready(&self) -> Result<(), ApiError> {
        if self.closing.load(Relaxed) {
            return Err(ApiError::Unavailable {
                message: "the server is shutting down".into(),
                retry_after: Duration::from_secs(1),
            });
        }
        let mut rx = self.ready.subscribe();
        let ready = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|r| *r)).await;
        match ready {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::Unavailable {
                message: "live events are starting; retry shortly".into(),
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// Registers a connection of `scope` (token hashed to `token`), within the
    /// per-token limit.
    pub async fn connect(self: &Arc<Self>, caller: Caller) -> Result<Connection, ApiError> {
        self.wait_ready().await?;
        let expires = caller.deadline();
        let Caller { scope, token, .. } = caller;
        let mut s = self.lock();
        if self.closing.load(Relaxed) {
            return Err(ApiError::Unavailable {
                message: "the server is shutting down".into(),
                retry_after: Duration::from_secs(1),
            });
        }
        let open = s.per_token.entry(token).or_default();
        if *open >= self.config.max_connections_per_token {
            drop(s);
            self.metrics.refused_connections.fetch_add(1, Relaxed);
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "this token already has {} live event connections open (the limit)",
                    self.config.max_connections_per_token
                ),
                retry_after: Duration::from_secs(5),
            });
        }
        *open += 1;
        s.next_connection += 1;
        let id = s.next_connection;
        let (tx, rx) = mpsc::channel(self.config.queue.max(1));
        let kick = Arc::new(Kick::default());
        s.subscribers.insert(
            id,
            Subscriber {
                scope: scope.clone(),
                rooms: BTreeSet::new(),
                tx,
                kick: kick.clone(),
            },
        );
        Ok(Connection {
            id,
            scope,
            rx,
            kick,
            expires,
            token,
            hub: self.clone(),
        })
    }

    fn disconnect(&self, id: u64, token: u64) {
        let mut s = self.lock();
        s.subscribers.remove(&id);
        if let Some(n) = s.per_token.get_mut(&token) {
            *n -= 1;
            if *n == 0 {
                s.per_token.remove(&token);
            }
        }
    }

    /// Adds authorized `rooms` to a connection. With `last_event_id`, the
    /// retained events after it that the new rooms carry (and the old ones did
    /// not) come back to replay, or a resync reason when that id is out of reach.
    pub fn subscribe(
        &self,
        connection: &Connection,
        rooms: &[Room],
        last_event_id: Option<i64>,
    ) -> Result<Subscribed, String> {
        let mut guard = self.lock();
        let s = &mut *guard;
        let (last_id, pruned_through) = (s.last_id, s.pruned_through);
        let Some(sub) = s.subscribers.get_mut(&connection.id) else {
            return Err("the connection was closed".into());
        };
        let new: Vec<Room> = rooms
            .iter()
            .filter(|r| !sub.rooms.contains(r))
            .copied()
            .collect();
        if sub.rooms.len() + new.len() > self.config.max_rooms_per_connection {
            return Err(format!(
                "a connection may follow at most {} rooms",
                self.config.max_rooms_per_connection
            ));
        }
        let before = sub.rooms.clone();
        sub.rooms.extend(new.iter().copied());
        let mut out = Subscribed {
            last_id,
            ..Default::default()
        };
        let Some(after) = last_event_id else {
            return Ok(out);
        };
        if after > last_id {
            out.resync = Some(format!(
                "event {after} is newer than the newest event ({last_id}): the event log was reset"
            ));
        } else if after < pruned_through {
            out.resync = Some(format!(
                "event {after} is older than the retained events (the oldest retained follows {pruned_through})"
            ));
        } else {
            let scope = &sub.scope;
            let start = s.retained.partition_point(|e| e.id <= after);
            out.replay = s
                .retained
                .range(start..)
                .filter(|e| {
                    rooms::visible(scope, e)
                        && new.iter().any(|r| r.carries(e))
                        && !before.iter().any(|r| r.carries(e))
                })
                .cloned()
                .collect();
            self.metrics
                .replayed
                .fetch_add(out.replay.len() as u64, Relaxed);
        }
        if out.resync.is_some() {
            self.metrics.resyncs.fetch_add(1, Relaxed);
        }
        Ok(out)
    }

    /// The rooms a connection follows, in order.
    pub fn rooms(&self, connection: &Connection) -> Vec<Room> {
        self.lock()
            .subscribers
            .get(&connection.id)
            .map(|sub| sub.rooms.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Removes rooms from a connection; returns those it had.
    pub fn unsubscribe(&self, connection: &Connection, rooms: &[Room]) -> Vec<Room> {
        let mut s = self.lock();
        let Some(sub) = s.subscribers.get_mut(&connection.id) else {
            return Vec::new();
        };
        rooms
            .iter()
            .filter(|r| sub.rooms.remove(r))
            .copied()
            .collect()
    }

    /// Publishes events in id order: retains them and queues them to every
    /// connection that wants them. A full queue drops its connection.
    pub fn publish(&self, events: Vec<Event>) {
        let mut guard = self.lock();
        let s = &mut *guard;
        let mut delivered = 0u64;
        let mut dropped = Vec::new();
        for event in events {
            if event.id <= s.last_id {
                continue;
            }
            let event = Arc::new(event);
            s.last_id = event.id;
            for (&id, sub) in &s.subscribers {
                if !sub.wants(&event) {
                    continue;
                }
                match sub.tx.try_send(event.clone()) {
                    Ok(()) => delivered += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        sub.kick.kick(
                            "slow_consumer",
                            4008,
                            format!(
                                "slow consumer: {} events were waiting unread",
                                self.config.queue
                            ),
                        );
                        self.metrics.dropped_slow.fetch_add(1, Relaxed);
                        dropped.push(id);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => dropped.push(id),
                }
            }
            for id in dropped.drain(..) {
                // the connection's own drop settles the per-token count
                if let Some(sub) = s.subscribers.get_mut(&id) {
                    sub.rooms.clear();
                    let (tx, _) = mpsc::channel(1);
                    sub.tx = tx;
                }
            }
            s.retained.push_back(event);
            self.metrics.published.fetch_add(1, Relaxed);
        }
        self.evict(s);
        self.metrics.delivered.fetch_add(delivered, Relaxed);
    }

    fn evict(&self, s: &mut HubState) {
        let now = tokio::time::Instant::now();
        while let Some(front) = s.retained.front() {
            if s.retained.len() > self.config.retain_events || front.retain_until <= now {
                s.pruned_through = s.pruned_through.max(front.id);
                s.retained.pop_front();
            } else {
                break;
            }
        }
    }

    /// The database's retention horizon: ids at or below it are gone.
    fn set_pruned_through(&self, pruned_through: i64) {
        let mut s = self.lock();
        s.pruned_through = s.pruned_through.max(pruned_through);
        while s.retained.front().is_some_and(|e| e.id <= pruned_through) {
            s.retained.pop_front();
        }
    }

    /// Loads the retained events at start.
    fn load(&self, events: Vec<Event>, last_id: i64, pruned_through: i64) {
        {
            let mut s = self.lock();
            s.last_id = s.last_id.max(last_id);
            s.pruned_through = s.pruned_through.max(pruned_through);
            s.retained = events.into_iter().map(Arc::new).collect();
            if let Some(last) = s.retained.back() {
                s.last_id = s.last_id.max(last.id);
            }
            if let Some(first) = s.retained.front() {
                s.pruned_through = s.pruned_through.max(first.id - 1);
            } else {
                s.pruned_through = s.pruned_through.max(s.last_id);
            }
            self.evict(&mut s);
        }
        self.ready.send_replace(true);
    }

    pub fn last_id(&self) -> i64 {
        self.lock().last_id
    }

    /// The current state of certification `id` of the caller's organization,
    /// at least as new as hub position `since` (the position a subscription
    /// was granted at): shared with other subscribers when a read began
    /// after `since`, else read, a few reads at a time (see [`Snapshots`]).
    pub(crate) async fn certification_snapshot(
        &self,
        pool: &sqlx::PgPool,
        scope: &Scope,
        id: i64,
        since: i64,
    ) -> Result<serde_json::Value, sqlx::Error> {
        let key = (scope.org_id, id);
        let shared = |snapshot| {
            self.metrics.snapshots_shared.fetch_add(1, Relaxed);
            Ok(snapshot)
        };
        if let Some(snapshot) = self.snapshots.fresh(key, since) {
            return shared(snapshot);
        }
        // the semaphore is never closed
        let _turn = self.snapshots.turns.acquire().await;
        // someone may have read it while this waited
        if let Some(snapshot) = self.snapshots.fresh(key, since) {
            return shared(snapshot);
        }
        // every event up to here is committed: the read below sees them
        let read_after = self.last_id();
        let snapshot = certification_state(pool, scope, id).await?;
        self.metrics.snapshots_read.fetch_add(1, Relaxed);
        let newer = self
            .snapshots
            .latest
            .get(&key)
            .is_some_and(|(other, _)| other > read_after);
        if !newer {
            self.snapshots
                .latest
                .insert(key, (read_after, snapshot.clone()));
        }
        Ok(snapshot)
    }

    /// Issues a single-use ticket standing for `scope`.
    pub(crate) fn issue_ticket(&self, caller: Caller) -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = format!("tk_{}", hex_encode(&bytes));
        self.tickets.insert(ticket.clone(), caller);
        ticket
    }

    /// Redeems a ticket (once). A ticket is worth no more than its token: one
    /// whose token has expired since is refused.
    pub fn redeem(&self, ticket: &str) -> Result<Caller, ApiError> {
        let caller = self.tickets.remove(ticket).ok_or_else(|| {
            ApiError::Unauthorized(
                "the ticket is unknown, expired or already used; ask for a new one".into(),
            )
        })?;
        if caller.has_expired() {
            return Err(ApiError::Unauthorized(
                "the token this ticket was issued for has expired; sign in again".into(),
            ));
        }
        Ok(caller)
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketBody {
    ticket: String,
    expires_in_seconds: u64,
}

/// A short-lived, single-use ticket standing for the caller's token, for
/// browsers, whose EventSource and WebSocket cannot send an Authorization header.
#[utoipa::path(post, path = crate::paths::EVENT_TICKETS, tag = "events",
    responses((status = 200, description = "The ticket", body = TicketBody)))]
pub async fn ticket(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<TicketBody>, ApiError> {
    let caller = caller_of(&state, &headers, None).await?.ok_or_else(|| {
        ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
    })?;
    let hub = &state.events;
    Ok(Json(TicketBody {
        ticket: hub.issue_ticket(caller),
        expires_in_seconds: hub.config.ticket_ttl.as_secs(),
    }))
}

/// The caller of a live event request: from its Authorization header, else from
/// a ticket; `None` when it has neither. Admitted like any request (its
/// organization must exist).
pub(crate) async fn caller_of(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    ticket: Option<&str>,
) -> Result<Option<Caller>, ApiError> {
    match crate::auth::bearer_from(headers)? {
        Some(token) => Ok(Some(Caller::authenticate(state, token).await?)),
        None => {
            let caller = ticket.map(|t| state.events.redeem(t)).transpose()?;
            if let Some(c) = &caller {
                // the organization may have gone since the ticket was issued
                state.api.organizations.admit(&state.pool, &c.scope).await?;
            }
            Ok(caller)
        }
    }
}

/// The current state of a certification, sent before its events (through
/// [`EventHub::certification_snapshot`]).
async fn certification_state(
    pool: &sqlx::PgPool,
    scope: &Scope,
    certification: i64,
) -> Result<serde_json::Value, sqlx::Error> {
    let row: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object( \
            'id', c.id, 'name', c.name, 'status', c.status, \
            'target_date', c.target_date, 'expires_on', c.expires_on, \
            'completion_pct', coalesce(certscope_completion(r.status) FILTER (WHERE r.id IS NOT NULL), 0), \
            'requirements', jsonb_build_object( \
                'total', count(r.id), \
                'not_started', count(r.id) FILTER (WHERE r.status = 'not_started'), \
                'in_progress', count(r.id) FILTER (WHERE r.status = 'in_progress'), \
                'implemented', count(r.id) FILTER (WHERE r.status = 'implemented'), \
                'failed', count(r.id) FILTER (WHERE r.status = 'failed'), \
                'not_applicable', count(r.id) FILTER (WHERE r.status = 'not_applicable')), \
            'evidence', (SELECT jsonb_build_object( \
                'pending', count(*) FILTER (WHERE e.status = 'pending'), \
                'accepted', count(*) FILTER (WHERE e.status = 'accepted'), \
                'rejected', count(*) FILTER (WHERE e.status = 'rejected'), \
                'expired', count(*) FILTER (WHERE certscope_expired_by(e.expires_on, current_date))) \
              FROM evidence e JOIN requirements q ON q.id = e.requirement_id \
              WHERE q.certification_id = c.id)) \
         FROM certifications c LEFT JOIN requirements r ON r.certification_id = c.id \
         WHERE c.id = $1 AND c.organization_id = $2 \
         GROUP BY c.id",
    )
    .bind(certification)
    .bind(scope.org_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.unwrap_or(serde_json::Value::Null))
}

/// Room names from a client, parsed and authorized one by one: the accepted
/// rooms, and a refusal for each of the others.
pub(crate) async fn authorize_rooms(
    names: &[String],
    scope: &Scope,
    pool: &sqlx::PgPool,
    metrics: &EventMetrics,
) -> (Vec<Room>, Vec<Refusal>) {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for name in names {
        let room = match Room::parse(name, scope) {
            Ok(room) => room,
            Err(r) => {
                refused.push(r);
                continue;
            }
        };
        match room.authorize(scope, pool).await {
            Ok(()) => accepted.push(room),
            Err(r) => refused.push(r),
        }
    }
    metrics
        .refused_rooms
        .fetch_add(refused.len() as u64, Relaxed);
    (accepted, refused)
}

/// What a subscribe request came to, for each transport to say in its own
/// words and in this order: the refusals, then (unless the room limit was hit)
/// the grant, a resync, the certification snapshots and the replayed events.
pub(crate) struct SubscribeOutcome {
    pub refused: Vec<Refusal>,
    /// The grant, or why nothing was granted (too many rooms).
    pub granted: Result<Granted, String>,
}

pub(crate) struct Granted {
    /// The rooms added (possibly none, when every one was refused).
    pub rooms: Vec<Room>,
    pub subscribed: Subscribed,
    /// The current state of each certification room granted; `None` when it
    /// could not be read.
    pub snapshots: Vec<(Room, Option<serde_json::Value>)>,
}

/// Parses, authorizes and subscribes room names for a connection: the one
/// subscribe flow behind the WebSocket and socket.io transports.
pub(crate) async fn subscribe_rooms(
    state: &AppState,
    connection: &Connection,
    names: &[String],
    last_event_id: Option<i64>,
) -> SubscribeOutcome {
    let hub = &state.events;
    let too_many = || {
        format!(
            "a connection may follow at most {} rooms",
            hub.config.max_rooms_per_connection
        )
    };
    if names.len() > hub.config.max_rooms_per_connection {
        return SubscribeOutcome {
            refused: Vec::new(),
            granted: Err(too_many()),
        };
    }
    let (accepted, refused) =
        authorize_rooms(names, &connection.scope, &state.pool, &hub.metrics).await;
    if accepted.is_empty() {
        let subscribed = Subscribed {
            last_id: hub.last_id(),
            ..Default::default()
        };
        return SubscribeOutcome {
            refused,
            granted: Ok(Granted {
                rooms: accepted,
                subscribed,
                snapshots: Vec::new(),
            }),
        };
    }
    let subscribed = match hub.subscribe(connection, &accepted, last_event_id) {
        Ok(s) => s,
        Err(message) => {
            return SubscribeOutcome {
                refused,
                granted: Err(message),
            };
        }
    };
    let mut snapshots = Vec::new();
    for room in &accepted {
        if let Room::Certification(id) = *room {
            let read = hub
                .certification_snapshot(&state.pool, &connection.scope, id, subscribed.last_id)
                .await;
            let state = match read {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "certification snapshot failed");
                    None
                }
            };
            snapshots.push((*room, state));
        }
    }
    SubscribeOutcome {
        refused,
        granted: Ok(Granted {
            rooms: accepted,
            subscribed,
            snapshots,
        }),
    }
}
