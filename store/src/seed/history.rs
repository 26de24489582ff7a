//! The back-dated status history the seed writes itself (the triggers skip
//! bulk loads): one row per step of each entity's path of statuses.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use sqlx::PgConnection;

use super::copy::CsvCopy;

/// Status history rows of one organization, copied after every row they
/// refer to.
pub(super) struct History(CsvCopy);

impl History {
    pub(super) fn new() -> Self {
        Self(CsvCopy::new(
            "status_history",
            &[
                "organization_id",
                "entity",
                "entity_id",
                "from_status",
                "to_status",
                "changed_by",
                "changed_at",
            ],
        ))
    }

    /// Records an entity's path: each `(status, day)` step changes from the
    /// step before it (the first from nothing), by `changed_by`.
    pub(super) fn path<'s>(
        &mut self,
        organization_id: i64,
        entity: &str,
        entity_id: i64,
        changed_by: Option<i64>,
        steps: impl IntoIterator<Item = (&'s str, NaiveDate)>,
    ) {
        let mut previous: Option<&str> = None;
        for (step, (to, day)) in steps.into_iter().enumerate() {
            self.0.row(|r| {
                r.int(organization_id)
                    .text(entity)
                    .int(entity_id)
                    .opt_text(previous)
                    .text(to)
                    .opt_int(changed_by)
                    .ts(step_time(day, step));
            });
            previous = Some(to);
        }
    }

    /// Copies the rows; returns how many.
    pub(super) async fn finish(self, conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
        self.0.finish(conn).await
    }
}

/// The time of a step on its day: steps of one path never share an instant,
/// so their order survives a sort by time.
pub(super) fn step_time(day: NaiveDate, step: usize) -> NaiveDateTime {
    day.and_time(NaiveTime::from_hms_opt(9 + (step as u32 % 8), 30, 0).unwrap_or_default())
}
