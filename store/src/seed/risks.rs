//! The risk register: the first 25 risks cover the whole likelihood × impact
//! grid, the rest lean to the middle; treatments lower residual scores (a risk
//! is assessed at its inherent level when identified and re-assessed when its
//! treatment starts); each risk is linked to one to three requirements.

use chrono::{Days, NaiveDate};
use rand::Rng;
use rand::seq::IndexedRandom;

use super::copy::CsvCopy;
use super::history::step_time;
use super::people::People;
use super::requirements::Requirement;
use super::text::RISKS;
use super::{OrgSeed, SeedError};

impl OrgSeed<'_> {
    pub(super) async fn risks(
        &mut self,
        people: &People,
        requirements: &[Requirement<'_>],
    ) -> Result<(), SeedError> {
        let count = if self.large {
            self.config.risks_per_org.max(600)
        } else {
            self.config.risks_per_org
        };
        let ids = self.reserve_ids("risks", count).await?;
        let mut rows = CsvCopy::new(
            "risks",
            &[
                "id",
                "organization_id",
                "title",
                "description",
                "category",
                "owner_id",
                "inherent_likelihood",
                "inherent_impact",
                "residual_likelihood",
                "residual_impact",
                "treatment",
                "status",
                "due_date",
            ],
        );
        let mut ratings = CsvCopy::new(
            "risk_ratings",
            &[
                "organization_id",
                "risk_id",
                "inherent_likelihood",
                "inherent_impact",
                "residual_likelihood",
                "residual_impact",
                "changed_by",
                "changed_at",
            ],
        );
        let mut links = CsvCopy::new(
            "risk_requirements",
            &["organization_id", "risk_id", "requirement_id"],
        );
        for (n, &id) in ids.iter().enumerate() {
            self.risk(n, id, people, &mut rows, &mut ratings);
            self.link(id, requirements, &mut links);
        }
        self.report.risks += rows.finish(self.conn).await?;
        self.report.history += ratings.finish(self.conn).await?;
        links.finish(self.conn).await?;
        Ok(())
    }

    /// The `n`th risk's row, status history and assessments.
    fn risk(
        &mut self,
        n: usize,
        id: i64,
        people: &People,
        rows: &mut CsvCopy,
        ratings: &mut CsvCopy,
    ) {
        let (as_of, profile) = (self.as_of(), self.profile);
        let rng = &mut self.rng;
        let (title, category) = RISKS[n % RISKS.len()];
        let system = profile.systems[n % profile.systems.len()];
        // the first 25 cover the whole grid; the rest lean to the middle
        let (li, ii) = if n < 25 {
            ((n % 5) as i16 + 1, (n / 5) as i16 + 1)
        } else {
            (rng.random_range(1..=5), rng.random_range(2..=5))
        };
        let treatment = match rng.random_range(0..100) {
            0..55 => "mitigate",
            55..70 => "transfer",
            70..80 => "avoid",
            _ => "accept",
        };
        let (lr, ir) = if treatment == "accept" {
            (li, ii)
        } else {
            (
                (li - rng.random_range(0..=2)).max(1),
                (ii - rng.random_range(0..=1)).max(1),
            )
        };
        let status = match treatment {
            "accept" => "accepted",
            _ => ["open", "treating", "treating", "closed"]
                .choose(rng)
                .copied()
                .unwrap_or("open"),
        };
        let owner = people.officers.choose(rng).map(|o| o.id);
        let due = as_of + Days::new(rng.random_range(0..200)) - Days::new(60);
        rows.row(|r| {
            r.int(id)
                .int(self.id)
                .text(&format!("{title} ({system})"))
                .text(&format!(
                    "Risk that {} affects {system} at {}.",
                    title.to_lowercase(),
                    profile.name
                ))
                .text(category)
                .opt_int(owner)
                .int(li.into())
                .int(ii.into())
                .int(lr.into())
                .int(ir.into())
                .text(treatment)
                .text(status)
                .date(due);
        });
        let identified = as_of - Days::new(rng.random_range(30..360));
        let path: &[&str] = match status {
            "open" => &["open"],
            "treating" => &["open", "treating"],
            "accepted" => &["open", "accepted"],
            _ => &["open", "treating", "closed"],
        };
        // the steps spread evenly from identification to the as-of date
        let span = (as_of - identified).num_days().max(1) as u64;
        let steps: Vec<(&str, NaiveDate)> = path
            .iter()
            .enumerate()
            .map(|(step, to)| {
                (
                    *to,
                    identified + Days::new(span * step as u64 / path.len() as u64),
                )
            })
            .collect();
        // assessed at the inherent level when identified; a treatment that
        // starts brings the residual down to where it stands today
        let treated = steps.iter().position(|(to, _)| *to == "treating");
        let assessments = match treated {
            Some(step) => vec![(li, ii, 0, steps[0].1), (lr, ir, step, steps[step].1)],
            None => vec![(lr, ir, 0, steps[0].1)],
        };
        for (l, i, step, day) in assessments {
            ratings.row(|r| {
                r.int(self.id)
                    .int(id)
                    .int(li.into())
                    .int(ii.into())
                    .int(l.into())
                    .int(i.into())
                    .opt_int(owner)
                    .ts(step_time(day, step));
            });
        }
        self.history.path(self.id, "risk", id, owner, steps);
    }

    /// Links risk `id` to one to three of the requirements (fewer when the
    /// draws repeat).
    fn link(&mut self, id: i64, requirements: &[Requirement<'_>], links: &mut CsvCopy) {
        if requirements.is_empty() {
            return;
        }
        let rng = &mut self.rng;
        let mut linked: Vec<i64> = (0..rng.random_range(1..=3))
            .map(|_| requirements[rng.random_range(0..requirements.len())].id)
            .collect();
        linked.sort_unstable();
        linked.dedup();
        for requirement in linked {
            links.row(|r| {
                r.int(self.id).int(id).int(requirement);
            });
        }
    }
}
