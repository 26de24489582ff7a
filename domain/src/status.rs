//! The statuses of each kind, as the schema's CHECK constraints list them, with
//! the labels people read and what each status means for the rules: closed,
//! applicable, in flight, open work.

use serde::{Deserialize, Serialize};

use crate::kind::Kind;

/// A status string that is not one of its kind's statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus {
    pub kind: Kind,
    pub value: String,
}

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a {} status", self.value, self.kind)
    }
}

impl std::error::Error for UnknownStatus {}

/// Declares a status enum with its database names and labels, in the order
/// people expect to read them (the order of facet values and legends).
macro_rules! statuses {
    ($(#[$doc:meta])* $name:ident for $kind:expr => { $($variant:ident = $text:literal : $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const KIND: Kind = $kind;

            /// The name stored in PostgreSQL and in the index.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// What people read.
            pub const fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }

            /// Exact database name only; see [`Status::parse_loose`] for people's input.
            pub fn parse(s: &str) -> Result<$name, UnknownStatus> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownStatus { kind: $kind, value: s.to_owned() })
            }

            /// The database names of the statuses for which `pred` holds: how a
            /// rule becomes a SQL `IN` list or a polars `is_in` without being
            /// written again.
            pub fn names_where(pred: impl Fn($name) -> bool) -> Vec<&'static str> {
                Self::ALL.iter().copied().filter(|s| pred(*s)).map($name::as_str).collect()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<$name, UnknownStatus> {
                $name::parse(s)
            }
        }

        /// Lets rows decode the column straight into the enum
        /// (`#[sqlx(try_from = "String")]`): a status the code does not know
        /// is an error, never a silently miscounted string.
        impl TryFrom<String> for $name {
            type Error = UnknownStatus;
            fn try_from(s: String) -> Result<$name, UnknownStatus> {
                $name::parse(&s)
            }
        }

        impl From<$name> for Status {
            fn from(s: $name) -> Status {
                Status::$name(s)
            }
        }
    };
}

statuses! {
    /// An organization's programme against a framework.
    CertificationStatus for Kind::Certification => {
        Planned = "planned": "Planned",
        InProgress = "in_progress": "In progress",
        UnderAudit = "under_audit": "Under audit",
        Certified = "certified": "Certified",
        Expired = "expired": "Expired",
        Withdrawn = "withdrawn": "Withdrawn",
    }
}

statuses! {
    /// One control in scope of a certification.
    RequirementStatus for Kind::Requirement => {
        NotStarted = "not_started": "Not started",
        InProgress = "in_progress": "In progress",
        Implemented = "implemented": "Implemented",
        Failed = "failed": "Failed",
        NotApplicable = "not_applicable": "Not applicable",
    }
}

statuses! {
    /// The review state of a piece of evidence.
    EvidenceStatus for Kind::Evidence => {
        Pending = "pending": "Pending review",
        Accepted = "accepted": "Accepted",
        Rejected = "rejected": "Rejected",
    }
}

statuses! {
    /// Where a risk stands. `accepted` is a decision to live with it: no
    /// deadline, but still on the heat-map and, above appetite, a decision the
    /// board must own.
    RiskStatus for Kind::Risk => {
        Open = "open": "Open",
        Treating = "treating": "In treatment",
        Accepted = "accepted": "Accepted",
        Closed = "closed": "Closed",
    }
}

statuses! {
    /// A catalogue control: published, or withdrawn by a later catalogue.
    ControlStatus for Kind::Control => {
        Active = "active": "Active",
        Withdrawn = "withdrawn": "Withdrawn",
    }
}

impl CertificationStatus {
    /// Planned, in progress or under audit: still working towards its target.
    pub const fn is_in_flight(self) -> bool {
        matches!(self, Self::Planned | Self::InProgress | Self::UnderAudit)
    }
}

impl RequirementStatus {
    /// Whether the requirement counts at all (readiness, coverage): everything
    /// but not applicable.
    pub const fn is_applicable(self) -> bool {
        !matches!(self, Self::NotApplicable)
    }

    /// Whether it counts as done towards readiness.
    pub const fn is_implemented(self) -> bool {
        matches!(self, Self::Implemented)
    }
}

impl EvidenceStatus {
    /// Only accepted evidence covers a requirement.
    pub const fn counts_for_coverage(self) -> bool {
        matches!(self, Self::Accepted)
    }
}

impl RiskStatus {
    /// Open work: open or being treated (the "open risks" of KPIs and trends).
    pub const fn is_open_work(self) -> bool {
        matches!(self, Self::Open | Self::Treating)
    }

    /// Still a risk the organization carries (heat-maps, appetite): all but closed.
    pub const fn is_carried(self) -> bool {
        !matches!(self, Self::Closed)
    }
}

/// How a status reads at a glance: the tone of its badge in the web
/// interface (always shown with its label and a sign, never colour alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tone {
    /// Done or in good standing.
    Good,
    /// Moving, or waiting on someone.
    Attention,
    /// Failed, rejected or lapsed.
    Bad,
    /// Not started, out of scope, withdrawn, accepted as is.
    Neutral,
}

impl Tone {
    pub const fn as_str(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Attention => "warn",
            Tone::Bad => "bad",
            Tone::Neutral => "none",
        }
    }
}

/// A status of any kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    CertificationStatus(CertificationStatus),
    RequirementStatus(RequirementStatus),
    EvidenceStatus(EvidenceStatus),
    RiskStatus(RiskStatus),
    ControlStatus(ControlStatus),
}

impl Status {
    /// The status of a document of `kind` named `s` (database name).
    pub fn parse(kind: Kind, s: &str) -> Result<Status, UnknownStatus> {
        Ok(match kind {
            Kind::Certification => CertificationStatus::parse(s)?.into(),
            Kind::Requirement => RequirementStatus::parse(s)?.into(),
            Kind::Evidence => EvidenceStatus::parse(s)?.into(),
            Kind::Risk => RiskStatus::parse(s)?.into(),
            Kind::Control => ControlStatus::parse(s)?.into(),
        })
    }

    /// People's spelling of a status of `kind`: any case, spaces or hyphens for
    /// underscores, or the label ("In progress", "not-applicable", "Failed").
    pub fn parse_loose(kind: Kind, s: &str) -> Option<Status> {
        let norm = |t: &str| t.trim().to_lowercase().replace(['-', ' '], "_");
        let wanted = norm(s);
        Status::all_of(kind)
            .into_iter()
            .find(|st| st.as_str() == wanted || norm(st.label()) == wanted)
    }

    /// Every status of `kind`, in reading order.
    pub fn all_of(kind: Kind) -> Vec<Status> {
        match kind {
            Kind::Certification => CertificationStatus::ALL
                .iter()
                .map(|s| (*s).into())
                .collect(),
            Kind::Requirement => RequirementStatus::ALL.iter().map(|s| (*s).into()).collect(),
            Kind::Evidence => EvidenceStatus::ALL.iter().map(|s| (*s).into()).collect(),
            Kind::Risk => RiskStatus::ALL.iter().map(|s| (*s).into()).collect(),
            Kind::Control => ControlStatus::ALL.iter().map(|s| (*s).into()).collect(),
        }
    }

    /// The tone of the status (see [`Tone`]).
    pub const fn tone(self) -> Tone {
        use Tone::*;
        match self {
            Status::CertificationStatus(s) => match s {
                CertificationStatus::Certified => Good,
                CertificationStatus::Expired => Bad,
                CertificationStatus::Withdrawn | CertificationStatus::Planned => Neutral,
                CertificationStatus::InProgress | CertificationStatus::UnderAudit => Attention,
            },
            Status::RequirementStatus(s) => match s {
                RequirementStatus::Implemented => Good,
                RequirementStatus::Failed => Bad,
                RequirementStatus::InProgress => Attention,
                RequirementStatus::NotStarted | RequirementStatus::NotApplicable => Neutral,
            },
            Status::EvidenceStatus(s) => match s {
                EvidenceStatus::Accepted => Good,
                EvidenceStatus::Rejected => Bad,
                EvidenceStatus::Pending => Attention,
            },
            Status::RiskStatus(s) => match s {
                RiskStatus::Closed => Good,
                RiskStatus::Open => Bad,
                RiskStatus::Treating => Attention,
                RiskStatus::Accepted => Neutral,
            },
            Status::ControlStatus(s) => match s {
                ControlStatus::Active => Good,
                ControlStatus::Withdrawn => Neutral,
            },
        }
    }

    pub const fn kind(self) -> Kind {
        match self {
            Status::CertificationStatus(_) => Kind::Certification,
            Status::RequirementStatus(_) => Kind::Requirement,
            Status::EvidenceStatus(_) => Kind::Evidence,
            Status::RiskStatus(_) => Kind::Risk,
            Status::ControlStatus(_) => Kind::Control,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Status::CertificationStatus(s) => s.as_str(),
            Status::RequirementStatus(s) => s.as_str(),
            Status::EvidenceStatus(s) => s.as_str(),
            Status::RiskStatus(s) => s.as_str(),
            Status::ControlStatus(s) => s.as_str(),
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Status::CertificationStatus(s) => s.label(),
            Status::RequirementStatus(s) => s.label(),
            Status::EvidenceStatus(s) => s.label(),
            Status::RiskStatus(s) => s.label(),
            Status::ControlStatus(s) => s.label(),
        }
    }

    /// Closed: nothing is left to do, so the item has no deadline to meet and
    /// is never due or overdue — except that a certified certification must be
    /// renewed by its expiry (see [`crate::deadline`]).
    ///
    /// - requirement: implemented or not applicable;
    /// - certification: no longer in flight (certified, expired, withdrawn);
    /// - evidence: rejected;
    /// - risk: closed or accepted;
    /// - control: always (catalogue entries have no deadline).
    pub const fn is_closed(self) -> bool {
        match self {
            Status::RequirementStatus(s) => matches!(
                s,
                RequirementStatus::Implemented | RequirementStatus::NotApplicable
            ),
            Status::CertificationStatus(s) => !s.is_in_flight(),
            Status::EvidenceStatus(s) => matches!(s, EvidenceStatus::Rejected),
            Status::RiskStatus(s) => matches!(s, RiskStatus::Closed | RiskStatus::Accepted),
            Status::ControlStatus(_) => true,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_belongs_to_its_kind() {
        for kind in Kind::ALL {
            let all = Status::all_of(kind);
            assert!(!all.is_empty());
            for s in all {
                assert_eq!(s.kind(), kind);
                assert_eq!(Status::parse(kind, s.as_str()), Ok(s));
                assert_eq!(Status::parse_loose(kind, s.label()), Some(s));
                assert_eq!(
                    Status::parse_loose(kind, &s.as_str().to_uppercase()),
                    Some(s)
                );
            }
        }
    }

    #[test]
    fn loose_spellings_find_statuses_and_strangers_find_nothing() {
        assert_eq!(
            Status::parse_loose(Kind::Requirement, "Not-Applicable"),
            Some(RequirementStatus::NotApplicable.into())
        );
        assert_eq!(
            Status::parse_loose(Kind::Risk, "in treatment"),
            Some(RiskStatus::Treating.into())
        );
        assert_eq!(Status::parse_loose(Kind::Risk, "implemented"), None);
        assert!(Status::parse(Kind::Evidence, "Accepted").is_err());
    }

    #[test]
    fn closed_statuses_are_the_ones_with_nothing_left_to_do() {
        let closed = |k: Kind| -> Vec<&str> {
            Status::all_of(k)
                .into_iter()
                .filter(|s| s.is_closed())
                .map(Status::as_str)
                .collect()
        };
        assert_eq!(closed(Kind::Requirement), ["implemented", "not_applicable"]);
        assert_eq!(
            closed(Kind::Certification),
            ["certified", "expired", "withdrawn"]
        );
        assert_eq!(closed(Kind::Evidence), ["rejected"]);
        assert_eq!(closed(Kind::Risk), ["accepted", "closed"]);
        assert_eq!(closed(Kind::Control), ["active", "withdrawn"]);
    }

    #[test]
    fn names_where_turns_a_rule_into_a_list() {
        assert_eq!(
            RiskStatus::names_where(RiskStatus::is_open_work),
            ["open", "treating"]
        );
        assert_eq!(
            CertificationStatus::names_where(CertificationStatus::is_in_flight),
            ["planned", "in_progress", "under_audit"]
        );
    }
}
