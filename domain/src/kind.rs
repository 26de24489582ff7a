//! What there is: the kinds of searchable documents, and the entities whose
//! changes are captured in `change_log`.

use serde::{Deserialize, Serialize};

/// The kinds of documents in the index, in the order results of equal rank are
/// listed (catalogue controls first, then an organization's programme top-down).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Control,
    Certification,
    Requirement,
    Evidence,
    Risk,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Control,
        Kind::Certification,
        Kind::Requirement,
        Kind::Evidence,
        Kind::Risk,
    ];
    /// How many kinds there are: the size of per-kind arrays.
    pub const COUNT: usize = Self::ALL.len();

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Control => "control",
            Kind::Certification => "certification",
            Kind::Requirement => "requirement",
            Kind::Evidence => "evidence",
            Kind::Risk => "risk",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind's position in [`Kind::ALL`]: an index into per-kind arrays and
    /// the tie-breaker of result order. Total: every kind has one.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kind as people read it, singular.
    pub const fn label(self) -> &'static str {
        match self {
            Kind::Control => "Control",
            Kind::Certification => "Certification",
            Kind::Requirement => "Requirement",
            Kind::Evidence => "Evidence",
            Kind::Risk => "Risk",
        }
    }

    /// The kind as people read it, plural (facet headings, counts).
    pub const fn plural(self) -> &'static str {
        match self {
            Kind::Control => "Controls",
            Kind::Certification => "Certifications",
            Kind::Requirement => "Requirements",
            Kind::Evidence => "Evidence",
            Kind::Risk => "Risks",
        }
    }

    /// Whether documents of this kind belong to an organization (controls are the
    /// shared catalogue).
    pub const fn is_tenant(self) -> bool {
        !matches!(self, Kind::Control)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The entities whose inserts, updates and deletes change capture records: the
/// `entity` column of `change_log` and `status_history` (migration 0002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Organization,
    User,
    Framework,
    Control,
    Certification,
    Requirement,
    Evidence,
    Risk,
    /// A link between a risk and a requirement (keyed by the risk).
    RiskRequirement,
    /// An auditor's assignment to a certification (keyed by the certification).
    AuditorAssignment,
}

impl Entity {
    pub const ALL: [Entity; 10] = [
        Entity::Organization,
        Entity::User,
        Entity::Framework,
        Entity::Control,
        Entity::Certification,
        Entity::Requirement,
        Entity::Evidence,
        Entity::Risk,
        Entity::RiskRequirement,
        Entity::AuditorAssignment,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Organization => "organization",
            Entity::User => "user",
            Entity::Framework => "framework",
            Entity::Control => "control",
            Entity::Certification => "certification",
            Entity::Requirement => "requirement",
            Entity::Evidence => "evidence",
            Entity::Risk => "risk",
            Entity::RiskRequirement => "risk_requirement",
            Entity::AuditorAssignment => "auditor_assignment",
        }
    }

    pub fn parse(s: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The document kind this entity's own row renders as, if any.
    pub const fn document(self) -> Option<Kind> {
        match self {
            Entity::Control => Some(Kind::Control),
            Entity::Certification => Some(Kind::Certification),
            Entity::Requirement => Some(Kind::Requirement),
            Entity::Evidence => Some(Kind::Evidence),
            Entity::Risk => Some(Kind::Risk),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name_and_index() {
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(k.index(), i);
        }
        assert_eq!(Kind::parse("Control"), None);
    }

    #[test]
    fn every_entity_round_trips_and_names_its_document() {
        for e in Entity::ALL {
            assert_eq!(Entity::parse(e.as_str()), Some(e));
            if let Some(k) = e.document() {
                assert_eq!(k.as_str(), e.as_str());
            }
        }
    }
}
