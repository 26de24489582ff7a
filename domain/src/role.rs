//! Who a user is to Certscope: the `users.role` values and what each may see.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the compliance programme: searches, follows, exports.
    Officer,
    /// Reads posture and the board pack.
    Executive,
    /// External: sees only the certifications it is assigned to.
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Officer, Role::Executive, Role::Auditor, Role::Admin];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Executive => "executive",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Role::Officer => "Compliance officer",
            Role::Executive => "Executive",
            Role::Auditor => "Auditor",
            Role::Admin => "Administrator",
        }
    }

    /// Auditors see only their assigned certifications; everyone else the whole
    /// organization.
    pub const fn is_restricted(self) -> bool {
        matches!(self, Role::Auditor)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
