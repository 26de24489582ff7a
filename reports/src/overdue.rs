//! Overdue and upcoming items: requirements past their due date, certifications
//! past their target or expiry, evidence whose coverage lapsed or is lapsing.

use std::collections::HashMap;

use polars::prelude::*;

use crate::frames::{CERTIFICATION_ACTIVE, REQUIREMENT_DONE, is_in, statuses_at, strings};
use crate::load::{Dataset, date, day};
use crate::model::{DueItem, DueList, ItemKind, KindCounts, Overdue};
use crate::params::ReportParams;

fn list(mut items: Vec<DueItem>, limit: usize) -> DueList {
    items.sort_by(|a, b| {
        a.date
            .cmp(&b.date)
            .then(a.kind.cmp(&b.kind))
            .then(a.id.cmp(&b.id))
    });
    let mut by_kind = KindCounts::default();
    for item in &items {
        match item.kind {
            ItemKind::Certification => by_kind.certification += 1,
            ItemKind::Requirement => by_kind.requirement += 1,
            ItemKind::Evidence => by_kind.evidence += 1,
        }
    }
    let total = items.len() as u64;
    items.truncate(limit);
    DueList {
        total,
        by_kind,
        truncated: total > items.len() as u64,
        items,
    }
}

/// `requirements` is the requirement frame as of the report date.
pub fn overdue(
    data: &Dataset,
    requirements: LazyFrame,
    params: &ReportParams,
) -> PolarsResult<Overdue> {
    let as_of = params.as_of;
    let today = day(as_of);
    let horizon = today + params.horizon_days as i32;
    let mut late = Vec::new();
    let mut soon = Vec::new();
    let mut push = |item: DueItem| {
        if item.days < 0 {
            late.push(item)
        } else {
            soon.push(item)
        }
    };

    // requirements not closed with a due date up to the horizon, and the
    // evidence coverage of applicable ones that lapsed or lapses by then
    let open = requirements
        .filter(col("status").neq(lit("not_applicable")))
        .filter(
            col("due")
                .lt_eq(lit(horizon))
                .and(is_in("status", &REQUIREMENT_DONE).not())
                .or(col("covered_until").lt_eq(lit(horizon))),
        )
        .collect()?;
    let ids = open.column("id")?.i64()?;
    let certs = open.column("certification_id")?.i64()?;
    let due = open.column("due")?.i32()?;
    let covered = open.column("covered_until")?.i32()?;
    let evidenced = open.column("evidenced")?.bool()?;
    let controls = strings(&open, "control")?;
    let titles = strings(&open, "title")?;
    let owners = strings(&open, "owner")?;
    let statuses = strings(&open, "status")?;
    let lapsing: HashMap<i64, &crate::load::EvidenceRow> = data
        .lapsing_evidence
        .iter()
        .map(|e| (e.requirement_id, e))
        .collect();
    for i in 0..open.height() {
        let (Some(id), Some(cert)) = (ids.get(i), certs.get(i)) else {
            continue;
        };
        let status = statuses[i].clone().unwrap_or_default();
        let owner = owners[i].clone();
        if let Some(d) = due.get(i)
            && d <= horizon
            && !REQUIREMENT_DONE.contains(&status.as_str())
        {
            push(DueItem {
                kind: ItemKind::Requirement,
                id,
                certification_id: cert,
                title: format!(
                    "{} {}",
                    controls[i].as_deref().unwrap_or(""),
                    titles[i].as_deref().unwrap_or("")
                ),
                status: status.clone(),
                owner: owner.clone(),
                date: date(d),
                days: i64::from(d - today),
            });
        }
        if let (Some(until), Some(evidence)) = (covered.get(i), lapsing.get(&id)) {
            // lapsed: no valid evidence left; lapsing: the last valid one expires soon
            let lapsed = until < today && evidenced.get(i) != Some(true);
            let lapsing_soon = until >= today && until <= horizon;
            if lapsed || lapsing_soon {
                push(DueItem {
                    kind: ItemKind::Evidence,
                    id: evidence.id,
                    certification_id: cert,
                    title: evidence.title.clone(),
                    status: if lapsed { "expired" } else { "expiring" }.to_owned(),
                    owner,
                    date: date(until),
                    days: i64::from(until - today),
                });
            }
        }
    }

    // certifications: target dates of those in flight, expiry of certified ones
    let status = statuses_at(&data.certification_history, today)?;
    for cert in &data.certifications {
        let Some(s) = status.get(&cert.id) else {
            continue;
        };
        let when = if CERTIFICATION_ACTIVE.contains(&s.as_str()) {
            Some(cert.target_date)
        } else if s == "certified" {
            cert.expires_on
        } else {
            None
        };
        if let Some(when) = when.filter(|w| day(*w) <= horizon) {
            push(DueItem {
                kind: ItemKind::Certification,
                id: cert.id,
                certification_id: cert.id,
                title: cert.name.clone(),
                status: s.clone(),
                owner: cert.owner.clone(),
                date: when,
                days: (when - as_of).num_days(),
            });
        }
    }
    Ok(Overdue {
        horizon_days: params.horizon_days,
        overdue: list(late, params.limit),
        upcoming: list(soon, params.limit),
    })
}
