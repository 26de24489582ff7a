//! Evidence coverage and freshness.
//!
//! A requirement is **evidenced** (covered) on day D when it has accepted evidence
//! collected on or before D that has not expired by D (`expires_on` is the last
//! valid day; no expiry means valid for good). It is **fresh** when the newest
//! such evidence was collected at most [`FRESHNESS_DAYS`] before D. Coverage
//! counts applicable requirements only.
//!
//! The reports aggregate a million evidence rows inside PostgreSQL, so the
//! validity test also exists as `certscope_evidence_valid_on` (migration 0005);
//! `tests/sql_rules.rs` keeps the two equal.

use chrono::{Days, NaiveDate};

use crate::status::EvidenceStatus;

/// How old the newest valid evidence may be for a requirement to count as fresh.
pub const FRESHNESS_DAYS: u32 = 180;

/// Whether evidence in `status`, collected on `collected_on` and valid through
/// `expires_on`, covers its requirement on `day`.
pub fn valid_on(
    status: EvidenceStatus,
    collected_on: NaiveDate,
    expires_on: Option<NaiveDate>,
    day: NaiveDate,
) -> bool {
    status.counts_for_coverage() && in_window(collected_on, expires_on, day)
}

/// Whether `day` falls between collection and expiry (inclusive): the half of
/// [`valid_on`] that does not depend on the status.
pub fn in_window(collected_on: NaiveDate, expires_on: Option<NaiveDate>, day: NaiveDate) -> bool {
    collected_on <= day && expires_on.is_none_or(|e| e >= day)
}

/// Whether an item has expired by `day` (its last valid day is before it).
pub fn expired_by(expires_on: Option<NaiveDate>, day: NaiveDate) -> bool {
    expires_on.is_some_and(|e| e < day)
}

/// The earliest collection day that still counts as fresh on `day`.
pub fn fresh_from(day: NaiveDate) -> NaiveDate {
    day.checked_sub_days(Days::new(u64::from(FRESHNESS_DAYS)))
        .unwrap_or(NaiveDate::MIN)
}

/// Whether evidence collected on `newest_valid` is fresh on `day`.
pub fn is_fresh(newest_valid: Option<NaiveDate>, day: NaiveDate) -> bool {
    newest_valid.is_some_and(|c| c >= fresh_from(day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn only_accepted_unexpired_evidence_collected_by_the_day_covers() {
        let day = d("2026-06-01");
        let ok = |s, c, e: Option<&str>| valid_on(s, d(c), e.map(d), day);
        assert!(ok(EvidenceStatus::Accepted, "2026-01-01", None));
        assert!(ok(
            EvidenceStatus::Accepted,
            "2026-06-01",
            Some("2026-06-01")
        ));
        assert!(!ok(EvidenceStatus::Accepted, "2026-06-02", None));
        assert!(!ok(
            EvidenceStatus::Accepted,
            "2026-01-01",
            Some("2026-05-31")
        ));
        assert!(!ok(EvidenceStatus::Pending, "2026-01-01", None));
        assert!(!ok(EvidenceStatus::Rejected, "2026-01-01", None));
    }

    #[test]
    fn fresh_means_collected_within_the_window() {
        let day = d("2026-06-30");
        assert!(is_fresh(Some(d("2026-01-01")), day));
        assert!(!is_fresh(Some(d("2025-12-31")), day));
        assert!(!is_fresh(None, day));
        assert!(expired_by(Some(d("2026-06-29")), day));
        assert!(!expired_by(Some(d("2026-06-30")), day));
    }
}
