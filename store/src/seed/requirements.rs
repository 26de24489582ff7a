//! One requirement per control in force of each certification's framework,
//! with a status that fits the certification's and the burn-up path that led
//! to it.

use chrono::{Days, NaiveDate};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::certifications::Certification;
use super::copy::CsvCopy;
use super::people::{Officer, People};
use super::{ControlRow, OrgSeed, SeedError};

/// What evidence and risks are laid out from.
pub(super) struct Requirement<'c> {
    pub id: i64,
    /// Index into the organization's certifications.
    pub cert: usize,
    pub control: &'c ControlRow,
    pub status: &'static str,
    pub owner: Officer,
}

impl<'a> OrgSeed<'a> {
    pub(super) async fn requirements(
        &mut self,
        people: &People,
        certifications: &[Certification],
    ) -> Result<Vec<Requirement<'a>>, SeedError> {
        let catalog = self.catalog;
        let total: usize = certifications
            .iter()
            .map(|c| catalog.controls.get(&c.framework_id).map_or(0, Vec::len))
            .sum();
        let ids = self.reserve_ids("requirements", total).await?;
        let mut next_id = ids.iter();
        let mut requirements = Vec::with_capacity(total);
        let mut rows = CsvCopy::new(
            "requirements",
            &[
                "id",
                "organization_id",
                "certification_id",
                "control_id",
                "status",
                "owner_id",
                "due_date",
                "notes",
            ],
        );
        for (ci, cert) in certifications.iter().enumerate() {
            for control in catalog
                .controls
                .get(&cert.framework_id)
                .into_iter()
                .flatten()
            {
                let Some(&id) = next_id.next() else { break };
                let requirement = self.requirement(id, (ci, cert), control, people, &mut rows);
                requirements.push(requirement);
            }
        }
        self.report.requirements += rows.finish(self.conn).await?;
        Ok(requirements)
    }

    /// The requirement of `control` in the `ci`th certification: its row and
    /// history.
    fn requirement(
        &mut self,
        id: i64,
        (ci, cert): (usize, &Certification),
        control: &'a ControlRow,
        people: &People,
        rows: &mut CsvCopy,
    ) -> Requirement<'a> {
        let as_of = self.as_of();
        let rng = &mut self.rng;
        let status = requirement_status(cert.status, rng);
        let owner = people.officers.choose(rng).cloned().unwrap_or_default();
        let due = cert.started
            + Days::new(
                ((cert.target - cert.started).num_days().max(30) as u64)
                    * rng.random_range(40..100)
                    / 100,
            );
        rows.row(|r| {
            r.int(id)
                .int(self.id)
                .int(cert.id)
                .int(control.id)
                .text(status)
                .int(owner.id)
                .date(due)
                .text("");
        });
        // history: the burn-up; most work lands in the middle of the programme
        let span = (as_of - cert.started).num_days().max(2) as f64;
        let t_start =
            cert.started + Days::new((span * rng.random_range(0.05..0.5f64).powf(1.2)) as u64);
        let t_end = t_start
            + Days::new(
                ((as_of - t_start).num_days().max(1) as f64 * rng.random_range(0.1..0.95f64))
                    as u64,
            );
        let path: Vec<(&str, NaiveDate)> = match status {
            "not_started" => vec![("not_started", cert.started)],
            "in_progress" => vec![("not_started", cert.started), ("in_progress", t_start)],
            "not_applicable" => {
                vec![("not_started", cert.started), ("not_applicable", t_start)]
            }
            s => vec![
                ("not_started", cert.started),
                ("in_progress", t_start),
                (s, t_end),
            ],
        };
        self.history
            .path(self.id, "requirement", id, Some(owner.id), path);
        Requirement {
            id,
            cert: ci,
            control,
            status,
            owner,
        }
    }
}

/// A requirement status drawn with weights that fit its certification's status.
fn requirement_status(cert_status: &str, rng: &mut ChaCha8Rng) -> &'static str {
    let table: &[(&str, u32)] = match cert_status {
        "planned" => &[
            ("not_started", 85),
            ("in_progress", 10),
            ("not_applicable", 5),
        ],
        "in_progress" => &[
            ("implemented", 45),
            ("in_progress", 25),
            ("not_started", 15),
            ("failed", 8),
            ("not_applicable", 7),
        ],
        "under_audit" => &[
            ("implemented", 80),
            ("in_progress", 8),
            ("failed", 5),
            ("not_applicable", 7),
        ],
        "certified" => &[("implemented", 92), ("not_applicable", 6), ("failed", 2)],
        "expired" => &[
            ("implemented", 75),
            ("failed", 10),
            ("in_progress", 8),
            ("not_applicable", 7),
        ],
        _ => &[
            ("not_started", 40),
            ("in_progress", 30),
            ("implemented", 25),
            ("not_applicable", 5),
        ],
    };
    let total: u32 = table.iter().map(|t| t.1).sum();
    let mut pick = rng.random_range(0..total);
    for (status, weight) in table {
        if pick < *weight {
            return status;
        }
        pick -= weight;
    }
    table[0].0
}
