//! Searchers pinned for cursors: a cursor's later pages read the same segments
//! as its first page, for [`PIN_TTL`] after its last use.
//!
//! Pins belong to organizations. Each organization keeps at most
//! [`MAX_PER_ORG`] pinned searchers (its own least recently used goes first),
//! and the service keeps at most [`MAX_SEARCHERS`] distinct searchers (each
//! holds its segments' files open); past that, the organization holding the
//! most pins loses its least recently used one. One tenant's traffic can
//! therefore never expire another tenant's cursor before its time, unless many
//! tenants are each at their own limit at once.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use certscope_indexer::IndexView;
use tantivy::Searcher;
use tantivy::index::SegmentId;

/// How long a searcher stays pinned for cursors after its last use.
pub const PIN_TTL: Duration = Duration::from_secs(600);
/// Pinned searchers one organization keeps.
pub const MAX_PER_ORG: usize = 16;
/// Distinct pinned searchers the service keeps.
pub const MAX_SEARCHERS: usize = 256;

/// A searcher pinned with the position it reflects.
#[derive(Clone)]
pub struct Pinned {
    pub id: u64,
    pub searcher: Searcher,
    /// A position the searcher's content covers (text form, and parsed).
    pub position: String,
    snapshot: certscope_indexer::Snapshot,
}

/// Identity of a searcher's content: its segments and their deletes.
pub fn searcher_id(searcher: &Searcher) -> u64 {
    let mut h = fnv::FnvHasher::default();
    for (segment, deletes) in searcher.generation().segments() {
        h.write(segment.uuid_string().as_bytes());
        h.write_u64(deletes.unwrap_or(u64::MAX));
    }
    h.finish()
}

#[derive(Default)]
struct Pins {
    searchers: HashMap<u64, Pinned>,
    /// Per organization: pinned searcher id → last use.
    uses: HashMap<u64, HashMap<u64, Instant>>,
}

impl Pins {
    fn expire(&mut self, now: Instant) {
        for uses in self.uses.values_mut() {
            uses.retain(|_, used| now.duration_since(*used) < PIN_TTL);
        }
        self.uses.retain(|_, uses| !uses.is_empty());
        self.forget_unused();
    }

    fn forget_unused(&mut self) {
        let Pins { searchers, uses } = self;
        searchers.retain(|id, _| uses.values().any(|u| u.contains_key(id)));
    }

    /// Drops `org`'s least recently used pin.
    fn evict_oldest_of(&mut self, org: u64) {
        if let Some(uses) = self.uses.get_mut(&org)
            && let Some(oldest) = uses
                .iter()
                .min_by_key(|(_, used)| **used)
                .map(|(id, _)| *id)
        {
            uses.remove(&oldest);
        }
    }

    fn enforce_limits(&mut self, org: u64) {
        while self.uses.get(&org).is_some_and(|u| u.len() > MAX_PER_ORG) {
            self.evict_oldest_of(org);
        }
        self.forget_unused();
        while self.searchers.len() > MAX_SEARCHERS {
            // the largest holder gives one up first
            let Some(largest) = self
                .uses
                .iter()
                .max_by_key(|(_, u)| u.len())
                .map(|(org, _)| *org)
            else {
                break;
            };
            self.evict_oldest_of(largest);
            self.forget_unused();
        }
    }
}

/// Recently used searchers, so that a cursor continues on the searcher its first
/// page came from.
#[derive(Default)]
pub struct PinnedSearchers {
    inner: Mutex<Pins>,
}

impl PinnedSearchers {
    /// The current searcher of `view`, pinned for `org`.
    pub fn current(&self, org: i64, view: &IndexView) -> Pinned {
        let org = org as u64;
        let searcher = view.reader.searcher();
        let id = searcher_id(&searcher);
        let now = Instant::now();
        let mut pins = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        pins.expire(now);
        let pinned = pins
            .searchers
            .entry(id)
            .and_modify(|p| {
                // same content, newer position (commits that changed nothing here)
                if view.position.snapshot != p.snapshot
                    && view.position.snapshot.covers(&p.snapshot)
                {
                    p.snapshot = view.position.snapshot.clone();
                    p.position = p.snapshot.to_string();
                }
            })
            .or_insert_with(|| Pinned {
                id,
                searcher,
                position: view.position.snapshot.to_string(),
                snapshot: view.position.snapshot.clone(),
            })
            .clone();
        pins.uses.entry(org).or_default().insert(id, now);
        pins.enforce_limits(org);
        pinned
    }

    /// The searcher `org`'s cursor started on, if still pinned for it.
    pub fn get(&self, org: i64, id: u64) -> Option<Pinned> {
        let org = org as u64;
        let now = Instant::now();
        let mut pins = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        pins.expire(now);
        let used = pins.uses.get_mut(&org)?.get_mut(&id)?;
        *used = now;
        pins.searchers.get(&id).cloned()
    }

    /// The segments the pinned searchers read.
    pub fn segments(&self) -> HashSet<SegmentId> {
        let pins = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        pins.searchers
            .values()
            .flat_map(|p| p.searcher.segment_readers().iter().map(|r| r.segment_id()))
            .collect()
    }

    /// (organizations holding pins, distinct searchers pinned), for `/metrics`.
    pub fn figures(&self) -> (usize, usize) {
        let pins = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (pins.uses.len(), pins.searchers.len())
    }
}

#[cfg(test)]
impl Pinned {
    /// A searcher pinned at a made-up position, for tests of the search alone.
    pub(crate) fn of(searcher: Searcher) -> Pinned {
        let snapshot = certscope_indexer::Snapshot::parse("1:1:").expect("a valid position");
        Pinned {
            id: searcher_id(&searcher),
            searcher,
            position: snapshot.to_string(),
            snapshot,
        }
    }
}
