//! Overdue and upcoming items: requirements past their due date, certifications
//! past their target or expiry, evidence whose coverage lapsed or is lapsing.

use std::collections::HashMap;

use polars::prelude::*;

use certscope_domain::deadline::{Dates, Deadline};
use certscope_domain::evidence::expired_by;
use certscope_domain::{CertificationStatus, RequirementStatus};

use crate::frames::{statuses_at, strings};
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

    // requirements due by the horizon, and those whose evidence coverage
    // lapsed or lapses by then; which of them count is the domain's rule below
    let open = requirements
        .filter(
            col("due")
                .lt_eq(lit(horizon))
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
        let Some(status) = statuses[i]
            .as_deref()
            .and_then(|s| RequirementStatus::parse(s).ok())
        else {
            continue;
        };
        let owner = owners[i].clone();
        let deadline = Deadline::of(
            status.into(),
            Dates {
                due_date: due.get(i).map(date),
                ..Dates::default()
            },
        );
        if let Some(d) = deadline.filter(|d| day(d.date) <= horizon) {
            push(DueItem {
                kind: ItemKind::Requirement,
                id,
                certification_id: cert,
                title: format!(
                    "{} {}",
                    controls[i].as_deref().unwrap_or(""),
                    titles[i].as_deref().unwrap_or("")
                ),
                status: status.as_str().to_owned(),
                owner: owner.clone(),
                date: d.date,
                days: d.days_from(as_of),
            });
        }
        if !status.is_applicable() {
            continue;
        }
        if let (Some(until), Some(evidence)) = (covered.get(i), lapsing.get(&id)) {
            // lapsed: no valid evidence left; lapsing: the last valid one expires soon
            // (`lapsing` holds only requirements whose coverage ends by the horizon)
            let lapsed = expired_by(Some(date(until)), as_of) && evidenced.get(i) != Some(true);
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

    // certifications: the target of those in flight, the renewal of certified ones
    let status = statuses_at(&data.certification_history, today)?;
    for cert in &data.certifications {
        let Some(s) = status
            .get(&cert.id)
            .and_then(|s| CertificationStatus::parse(s).ok())
        else {
            continue;
        };
        let dates = Dates {
            target_date: Some(cert.target_date),
            expires_on: cert.expires_on,
            ..Dates::default()
        };
        if let Some(d) = Deadline::of(s.into(), dates).filter(|d| day(d.date) <= horizon) {
            push(DueItem {
                kind: ItemKind::Certification,
                id: cert.id,
                certification_id: cert.id,
                title: cert.name.clone(),
                status: s.as_str().to_owned(),
                owner: cert.owner.clone(),
                date: d.date,
                days: d.days_from(as_of),
            });
        }
    }
    Ok(Overdue {
        horizon_days: params.horizon_days,
        overdue: list(late, params.limit),
        upcoming: list(soon, params.limit),
    })
}
