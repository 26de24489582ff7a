//! Index positions: the PostgreSQL snapshot up to which the index reflects every
//! committed change, kept in each tantivy commit's payload so that the index and
//! its position can never disagree.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A `pg_snapshot`: transactions below `xmin` are finished, at or above `xmax` not
/// yet started, and those listed in `xip` were in progress.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Snapshot {
    pub xmin: u64,
    pub xmax: u64,
    pub xip: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid snapshot {0:?}: expected xmin:xmax:xip,xip,...")]
pub struct SnapshotParseError(pub String);

impl Snapshot {
    /// Parses PostgreSQL's text form, `xmin:xmax:xip1,xip2`.
    pub fn parse(text: &str) -> Result<Self, SnapshotParseError> {
        let err = || SnapshotParseError(text.to_owned());
        let mut parts = text.trim().splitn(3, ':');
        let xmin = parts.next().and_then(|s| s.parse().ok()).ok_or_else(err)?;
        let xmax = parts.next().and_then(|s| s.parse().ok()).ok_or_else(err)?;
        let xip_text = parts.next().ok_or_else(err)?;
        let mut xip = Vec::new();
        for s in xip_text.split(',').filter(|s| !s.is_empty()) {
            xip.push(s.parse().map_err(|_| err())?);
        }
        xip.sort_unstable();
        if xmin > xmax || xip.iter().any(|&x| x < xmin || x >= xmax) {
            return Err(err());
        }
        Ok(Self { xmin, xmax, xip })
    }

    /// Whether transaction `xid` had committed (or aborted) when this snapshot was
    /// taken; aborted transactions leave no rows, so for rows "finished" means
    /// "visible".
    pub fn finished(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && self.xip.binary_search(&xid).is_err())
    }

    /// Whether everything finished in `other` is finished in `self` too.
    pub fn covers(&self, other: &Snapshot) -> bool {
        other.xmax <= self.xmax
            && self
                .xip
                .iter()
                .filter(|&&x| x < other.xmax)
                .all(|x| other.xip.binary_search(x).is_ok())
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.xmin, self.xmax)?;
        for (i, x) in self.xip.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

/// What an index commit says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitPayload {
    pub schema_version: u32,
    /// The snapshot the index reflects, in text form.
    pub snapshot: String,
    /// Commits that advanced the position since the index was built; monotonic.
    pub generation: u64,
    /// When the index was built from scratch (RFC 3339).
    pub built_at: String,
}

/// The position an index has reached, published after each commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPosition {
    pub snapshot: Snapshot,
    pub generation: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_postgres_snapshots() {
        let s = Snapshot::parse("10:20:12,15").unwrap();
        assert_eq!(s.to_string(), "10:20:12,15");
        assert!(s.finished(9) && s.finished(11) && !s.finished(12) && !s.finished(20));
        assert!(Snapshot::parse("10:20:").unwrap().xip.is_empty());
        assert!(Snapshot::parse("20:10:").is_err());
        assert!(Snapshot::parse("10:20:25").is_err());
        assert!(Snapshot::parse("x").is_err());
    }

    #[test]
    fn a_later_snapshot_covers_an_earlier_one_only_when_the_in_progress_ones_finished() {
        let early = Snapshot::parse("10:20:12,15").unwrap();
        assert!(Snapshot::parse("12:25:12,15,22").unwrap().covers(&early));
        assert!(
            !Snapshot::parse("11:25:11,12").unwrap().covers(&early),
            "11 finished in early, not in late"
        );
        assert!(!Snapshot::parse("10:19:").unwrap().covers(&early));
        assert!(early.covers(&early));
    }
}
