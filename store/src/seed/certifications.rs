//! The organization's certification programmes, one per framework in turn,
//! each with its path of statuses and dates that fit it; the first auditor is
//! assigned to the first certification.

use chrono::{Days, NaiveDate};
use rand::Rng;
use rand::seq::IndexedRandom;

use super::copy::CsvCopy;
use super::people::People;
use super::{OrgSeed, SeedError};

/// Cycled through so that every status is present across organizations.
const STATUSES: [&str; 6] = [
    "in_progress",
    "certified",
    "planned",
    "under_audit",
    "expired",
    "withdrawn",
];

/// What the requirements and evidence of a certification are laid out from.
pub(super) struct Certification {
    pub id: i64,
    pub framework_id: i64,
    pub status: &'static str,
    pub started: NaiveDate,
    pub target: NaiveDate,
    pub system: &'static str,
}

impl OrgSeed<'_> {
    pub(super) async fn certifications(
        &mut self,
        people: &People,
    ) -> Result<Vec<Certification>, SeedError> {
        let count = if self.large {
            self.config.large_org_certifications
        } else {
            self.config.certifications_per_org
        };
        let ids = self.reserve_ids("certifications", count).await?;
        let mut rows = CsvCopy::new(
            "certifications",
            &[
                "id",
                "organization_id",
                "framework_id",
                "name",
                "description",
                "status",
                "owner_id",
                "started_on",
                "target_date",
                "certified_on",
                "expires_on",
            ],
        );
        let mut certifications = Vec::with_capacity(ids.len());
        for (k, &id) in ids.iter().enumerate() {
            let certification = self.certification(k, id, people, &mut rows);
            certifications.push(certification);
        }
        self.report.certifications += rows.finish(self.conn).await?;
        if let (Some(&auditor), Some(first)) = (people.auditors.first(), certifications.first()) {
            sqlx::query("INSERT INTO auditor_assignments (organization_id, user_id, certification_id) VALUES ($1, $2, $3)")
                .bind(self.id)
                .bind(auditor)
                .bind(first.id)
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(certifications)
    }

    /// The `k`th certification's row and history.
    fn certification(
        &mut self,
        k: usize,
        id: i64,
        people: &People,
        rows: &mut CsvCopy,
    ) -> Certification {
        let (as_of, profile, large) = (self.as_of(), self.profile, self.large);
        let frameworks = &self.catalog.frameworks;
        let framework = &frameworks[k % frameworks.len()];
        let status = STATUSES[(self.index * 2 + k) % STATUSES.len()];
        let system = profile.systems[k % profile.systems.len()];
        let year = as_of.format("%Y");
        let kind = if framework.slug.contains("privacy") {
            "Privacy programme"
        } else {
            "NIST 800-53 High"
        };
        let name = if large && k >= profile.systems.len() {
            format!(
                "{kind}: {system} {year} (scope {})",
                k / profile.systems.len() + 1
            )
        } else {
            format!("{kind}: {system} {year}")
        };
        let rng = &mut self.rng;
        let months_ago: u64 = match status {
            "planned" => rng.random_range(1..3),
            "in_progress" => rng.random_range(8..12),
            "under_audit" | "withdrawn" => rng.random_range(9..13),
            _ => rng.random_range(12..16),
        };
        let started = as_of - Days::new(months_ago * 30);
        let target = match status {
            "certified" | "expired" => started + Days::new(300),
            // some in-flight programmes are behind their target date
            _ => {
                as_of + Days::new(rng.random_range(0..240)).max(Days::new(1))
                    - Days::new(if k % 3 == 2 { 120 } else { 0 })
            }
        };
        let target = target.max(started);
        let (certified_on, expires_on) = match status {
            "certified" => {
                let on = started + Days::new(280);
                (Some(on), Some(on + Days::new(365 * 3)))
            }
            "expired" => {
                let on = as_of - Days::new(400);
                (Some(on), Some(as_of - Days::new(rng.random_range(5..60))))
            }
            _ => (None, None),
        };
        let owner = people.officers.choose(rng).map(|o| o.id);
        rows.row(|r| {
            r.int(id)
                .int(self.id)
                .int(framework.id)
                .text(&name)
                .text(&format!(
                    "{} certification programme for the {system} authorization boundary.",
                    profile.name
                ))
                .text(status)
                .opt_int(owner)
                .date(started)
                .date(target)
                .opt_date(certified_on)
                .opt_date(expires_on);
        });
        let path: &[&str] = match status {
            "planned" => &["planned"],
            "in_progress" => &["planned", "in_progress"],
            "under_audit" => &["planned", "in_progress", "under_audit"],
            "certified" => &["planned", "in_progress", "under_audit", "certified"],
            "expired" => &[
                "planned",
                "in_progress",
                "under_audit",
                "certified",
                "expired",
            ],
            _ => &["planned", "in_progress", "withdrawn"],
        };
        // the steps spread evenly from the start to the as-of date
        let span = (as_of - started).num_days().max(1) as u64;
        let steps = path.iter().enumerate().map(|(step, to)| {
            (
                *to,
                started + Days::new(span * step as u64 / path.len() as u64),
            )
        });
        self.history
            .path(self.id, "certification", id, owner, steps);
        Certification {
            id,
            framework_id: framework.id,
            status,
            started,
            target,
            system,
        }
    }
}
