//! When an item is due, and whether it is overdue or due soon.
//!
//! One rule for search's `due` facet, the indexer's open-deadline field, the
//! overdue and upcoming report lists, the trend of overdue items, KPIs and pages:
//!
//! | kind | deadline |
//! | --- | --- |
//! | requirement | its due date, unless implemented or not applicable |
//! | certification | its target date while in flight (planned, in progress, under audit); its expiry once certified (renewal); none when expired or withdrawn |
//! | evidence | its expiry (the last valid day), unless rejected |
//! | risk | its treatment due date, unless closed or accepted |
//! | control | none |
//!
//! An item is **overdue** on day D when its deadline is before D, and **due
//! within N days** when its deadline is D or later and at most D + N. The due
//! buckets are cumulative windows that never include overdue items.

use chrono::NaiveDate;
use serde::Serialize;

use crate::status::{CertificationStatus, Status};

/// The dates a deadline can come from; fill what the kind has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dates {
    /// A requirement's or a risk's due date.
    pub due_date: Option<NaiveDate>,
    /// A certification's target date.
    pub target_date: Option<NaiveDate>,
    /// A certification's or an evidence item's expiry.
    pub expires_on: Option<NaiveDate>,
}

/// What an item still has to meet, and by when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deadline {
    pub date: NaiveDate,
    pub what: DeadlineKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// A requirement's or risk treatment's due date.
    Due,
    /// A certification's target date.
    Target,
    /// A certification's renewal, or an evidence item's expiry.
    Expiry,
}

impl Deadline {
    /// The deadline of an item in `status` with `dates`, if it has one.
    pub fn of(status: Status, dates: Dates) -> Option<Deadline> {
        let (date, what) = match status {
            Status::CertificationStatus(s) if s.is_in_flight() => {
                (dates.target_date?, DeadlineKind::Target)
            }
            Status::CertificationStatus(CertificationStatus::Certified) => {
                (dates.expires_on?, DeadlineKind::Expiry)
            }
            s if s.is_closed() => return None,
            Status::EvidenceStatus(_) => (dates.expires_on?, DeadlineKind::Expiry),
            Status::RequirementStatus(_) | Status::RiskStatus(_) => {
                (dates.due_date?, DeadlineKind::Due)
            }
            Status::CertificationStatus(_) | Status::ControlStatus(_) => return None,
        };
        Some(Deadline { date, what })
    }

    /// Days from `today` to the deadline: negative when overdue.
    pub fn days_from(self, today: NaiveDate) -> i64 {
        (self.date - today).num_days()
    }

    pub fn is_overdue(self, today: NaiveDate) -> bool {
        self.date < today
    }

    /// Due today or within `days` days (not overdue).
    pub fn is_due_within(self, today: NaiveDate, days: i64) -> bool {
        (0..=days).contains(&self.days_from(today))
    }
}

/// The `due` facet's buckets: overdue, and due within 30, 60 or 90 days.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DueBucket {
    Overdue,
    Due30,
    Due60,
    Due90,
}

impl DueBucket {
    pub const ALL: [DueBucket; 4] = [Self::Overdue, Self::Due30, Self::Due60, Self::Due90];
    /// The widest window: nothing due later falls in any bucket.
    pub const WIDEST_DAYS: i64 = 90;

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Overdue => "overdue",
            Self::Due30 => "due_30",
            Self::Due60 => "due_60",
            Self::Due90 => "due_90",
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Self::Overdue => "Overdue",
            Self::Due30 => "Due within 30 days",
            Self::Due60 => "Due within 60 days",
            Self::Due90 => "Due within 90 days",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(s))
    }

    /// Days after today the bucket reaches (0 for overdue: before today).
    pub const fn days(self) -> i64 {
        match self {
            Self::Overdue => 0,
            Self::Due30 => 30,
            Self::Due60 => 60,
            Self::Due90 => 90,
        }
    }

    /// Bit of this bucket in a [`DueBucket::mask`].
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The buckets a deadline `days_from_today` away falls in, as bits: overdue
    /// alone, or every window that reaches it.
    pub const fn mask(days_from_today: i64) -> u8 {
        if days_from_today < 0 {
            return Self::Overdue.bit();
        }
        let mut mask = 0;
        if days_from_today <= 30 {
            mask |= Self::Due30.bit();
        }
        if days_from_today <= 60 {
            mask |= Self::Due60.bit();
        }
        if days_from_today <= 90 {
            mask |= Self::Due90.bit();
        }
        mask
    }

    /// Whether a deadline `days_from_today` away falls in this bucket.
    pub const fn contains(self, days_from_today: i64) -> bool {
        Self::mask(days_from_today) & self.bit() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;
    use crate::status::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn all_dates() -> Dates {
        Dates {
            due_date: Some(d("2026-01-10")),
            target_date: Some(d("2026-02-10")),
            expires_on: Some(d("2026-03-10")),
        }
    }

    #[test]
    fn each_kind_takes_its_deadline_from_its_own_date() {
        let of = |s: Status| Deadline::of(s, all_dates()).map(|x| x.date);
        assert_eq!(of(RequirementStatus::Failed.into()), Some(d("2026-01-10")));
        assert_eq!(of(RiskStatus::Treating.into()), Some(d("2026-01-10")));
        assert_eq!(of(EvidenceStatus::Pending.into()), Some(d("2026-03-10")));
        assert_eq!(
            of(CertificationStatus::UnderAudit.into()),
            Some(d("2026-02-10"))
        );
        assert_eq!(
            of(CertificationStatus::Certified.into()),
            Some(d("2026-03-10"))
        );
    }

    #[test]
    fn closed_items_have_no_deadline_but_a_certification_must_be_renewed() {
        for kind in Kind::ALL {
            for s in Status::all_of(kind) {
                let deadline = Deadline::of(s, all_dates());
                let renewal = s == CertificationStatus::Certified.into();
                assert_eq!(deadline.is_some(), !s.is_closed() || renewal, "{kind} {s}");
            }
        }
    }

    #[test]
    fn buckets_are_cumulative_windows_after_today_and_overdue_is_alone() {
        assert_eq!(DueBucket::mask(-1), DueBucket::Overdue.bit());
        assert!(DueBucket::Due30.contains(0));
        assert!(DueBucket::Due30.contains(30));
        assert!(!DueBucket::Due30.contains(31));
        assert!(DueBucket::Due90.contains(30));
        assert!(!DueBucket::Due90.contains(91));
        assert!(!DueBucket::Due30.contains(-1));
        let today = d("2026-01-10");
        let due = Deadline::of(RequirementStatus::NotStarted.into(), all_dates()).unwrap();
        assert!(due.is_due_within(today, 0));
        assert!(!due.is_overdue(today));
        assert!(due.is_overdue(d("2026-01-11")));
    }
}
