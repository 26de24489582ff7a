//! The organization's users: an admin, executives, auditors and officers, with
//! names from the organization's culture.

use super::copy::CsvCopy;
use super::{OrgSeed, SeedError};

/// Someone who owns work (officers and the admin).
#[derive(Debug, Clone, Default)]
pub(super) struct Officer {
    pub id: i64,
    pub name: String,
}

/// The seeded users by what the other parts need them for.
pub(super) struct People {
    /// Owners of certifications, requirements, evidence and risks.
    pub officers: Vec<Officer>,
    pub auditors: Vec<i64>,
    pub executives: Vec<i64>,
}

impl OrgSeed<'_> {
    pub(super) async fn people(&mut self) -> Result<People, SeedError> {
        let count = self.config.users_per_org;
        let user_ids = self.reserve_ids("users", count).await?;
        let mut people = People {
            officers: Vec::new(),
            auditors: Vec::new(),
            executives: Vec::new(),
        };
        let mut users = CsvCopy::new(
            "users",
            &["id", "organization_id", "email", "display_name", "role"],
        );
        let (profile, index) = (self.profile, self.index);
        for (n, &id) in user_ids.iter().enumerate() {
            let role = match n {
                0 => "admin",
                1 | 2 => "executive",
                3 | 4 => "auditor",
                _ => "officer",
            };
            let role = if count < 6 && n >= 3 { "officer" } else { role };
            let name = format!(
                "{} {}",
                profile.given[(n + index) % profile.given.len()],
                profile.family[(n * 7 + index) % profile.family.len()]
            );
            users.row(|r| {
                r.int(id)
                    .int(self.id)
                    .text(&format!("user{}@{}.example", n + 1, profile.slug))
                    .text(&name)
                    .text(role);
            });
            match role {
                "officer" | "admin" => people.officers.push(Officer { id, name }),
                "auditor" => people.auditors.push(id),
                "executive" => people.executives.push(id),
                _ => {}
            }
        }
        self.report.users += users.finish(self.conn).await?;
        Ok(people)
    }
}
