//! Evidence artefacts under the started requirements, streamed into `COPY`
//! (a million rows for the benchmark organization), and their review history.

use chrono::Days;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use rand::seq::IndexedRandom;
use sha2::{Digest, Sha256};

use super::certifications::Certification;
use super::copy::CsvCopy;
use super::people::People;
use super::requirements::Requirement;
use super::text::{self, ControlRef, Origin};
use super::{OrgSeed, SeedError};

impl OrgSeed<'_> {
    pub(super) async fn evidence(
        &mut self,
        people: &People,
        certifications: &[Certification],
        requirements: &[Requirement<'_>],
    ) -> Result<(), SeedError> {
        let as_of = self.as_of();
        let started: Vec<&Requirement> = requirements
            .iter()
            .filter(|r| r.status != "not_started")
            .collect();
        let target = match (self.large, self.config.large_org_evidence) {
            (true, Some(n)) => n,
            _ => (requirements.len() as f64 * self.config.evidence_per_requirement).round() as u64,
        };
        // spread evenly over the started requirements, the remainder carried on
        let per_requirement = target as f64 / started.len().max(1) as f64;
        let ids = self.reserve_ids("evidence", target as usize).await?;
        let bar = progress_bar(
            self.config.progress,
            target,
            &format!("evidence for {}", self.profile.slug),
        );
        let mut rows = CsvCopy::new(
            "evidence",
            &[
                "id",
                "organization_id",
                "requirement_id",
                "title",
                "description",
                "content",
                "file_name",
                "media_type",
                "sha256",
                "status",
                "collected_on",
                "expires_on",
                "submitted_by",
            ],
        );
        let mut sink = rows.open(self.conn).await?;
        let mut written = 0u64;
        let mut carry = 0.0f64;
        for (n, req) in started.iter().enumerate() {
            carry += per_requirement;
            let mut count = carry.floor() as u64;
            if n + 1 == started.len() {
                count = target - written;
            }
            carry -= count as f64;
            let count = count.min(target - written);
            let cert = &certifications[req.cert];
            for _ in 0..count {
                let id = ids[written as usize];
                let rng = &mut self.rng;
                let age = rng.random_range(0..400u64);
                let collected = as_of - Days::new(age);
                let validity = [90u64, 180, 365, 365, 730]
                    .choose(rng)
                    .copied()
                    .unwrap_or(365);
                let expires =
                    (rng.random_range(0..10) != 0).then(|| collected + Days::new(validity));
                let status = if age < 5 {
                    "pending"
                } else {
                    match rng.random_range(0..100) {
                        0..82 => "accepted",
                        82..90 => "pending",
                        _ => "rejected",
                    }
                };
                let art = text::artefact(
                    rng,
                    &Origin {
                        org: self.profile,
                        system: cert.system,
                        control: ControlRef {
                            display_id: &req.control.display_id,
                            title: &req.control.title,
                            family_key: &req.control.family_key,
                            family_title: &req.control.family_title,
                            statement: &req.control.statement,
                        },
                        person: &req.owner.name,
                        collected,
                        serial: id as u64,
                    },
                );
                let sha = hex::encode(Sha256::digest(format!(
                    "{}\n{}",
                    art.file_name, art.content
                )));
                rows.row(|r| {
                    r.int(id)
                        .int(self.id)
                        .int(req.id)
                        .text(&art.title)
                        .text(&art.description)
                        .text(&art.content)
                        .text(&art.file_name)
                        .text(art.media_type)
                        .text(&sha)
                        .text(status)
                        .date(collected)
                        .opt_date(expires)
                        .int(req.owner.id);
                });
                written += 1;
                if written.is_multiple_of(4096) {
                    rows.send_if_full(&mut sink).await?;
                    bar.set_position(written);
                }
            }
        }
        self.report.evidence += rows.finish_stream(sink).await?;
        bar.finish_and_clear();
        self.report.history += self.review_history(people).await?;
        Ok(())
    }

    /// The evidence history in one statement: submitted as pending, reviewed
    /// (by the first officer) a few days later, never after the as-of date.
    async fn review_history(&mut self, people: &People) -> Result<u64, SeedError> {
        let inserted = sqlx::query(
            "INSERT INTO status_history (organization_id, entity, entity_id, from_status, to_status, changed_by, changed_at) \
             SELECT organization_id, 'evidence', id, NULL, 'pending', submitted_by, \
                    (collected_on + time '09:00' + (id % 480) * interval '1 minute') AT TIME ZONE 'UTC' \
               FROM evidence WHERE organization_id = $1 \
             UNION ALL \
             SELECT organization_id, 'evidence', id, 'pending', status, $2, \
                    LEAST((collected_on + time '14:00' + (1 + id % 4) * interval '1 day') AT TIME ZONE 'UTC', \
                          ($3::date + time '08:00') AT TIME ZONE 'UTC') \
               FROM evidence WHERE organization_id = $1 AND status <> 'pending'",
        )
        .bind(self.id)
        .bind(people.officers.first().map(|o| o.id))
        .bind(self.as_of())
        .execute(&mut *self.conn)
        .await?;
        Ok(inserted.rows_affected())
    }
}

fn progress_bar(enabled: bool, len: u64, message: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>28} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_owned());
    bar
}
