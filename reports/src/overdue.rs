//! Overdue and upcoming items: requirements past their due date, certifications
//! past their target or expiry, evidence whose coverage lapsed or is lapsing.

use std::collections::HashMap;

use polars::prelude::*;

use certscope_domain::deadline::{Dates, Deadline};
use certscope_domain::evidence::expired_by;
use certscope_domain::{CertificationStatus, RequirementStatus};

use crate::frames::{statuses_at, strings};
use crate::load::{Dataset, date, day};
use crate::model::{DueGroup, DueItem, DueList, ItemKind, KindCounts, Overdue};
use crate::params::ReportParams;

/// Owners listed by name in a due list's summary; the rest are `others`.
pub const MAX_OWNER_GROUPS: usize = 10;

/// Age bands of overdue items (days past) and upcoming items (days ahead):
/// `(key, label, last day of the band)`.
const OVERDUE_AGES: [(&str, &str, i64); 4] = [
    ("1_30", "1–30 days overdue", 30),
    ("31_90", "31–90 days overdue", 90),
    ("91_180", "91–180 days overdue", 180),
    ("over_180", "more than 180 days overdue", i64::MAX),
];
const UPCOMING_AGES: [(&str, &str, i64); 4] = [
    ("0_7", "due within 7 days", 7),
    ("8_30", "due in 8–30 days", 30),
    ("31_90", "due in 31–90 days", 90),
    ("over_90", "due in more than 90 days", i64::MAX),
];

/// Groups sorted by count (most first), then key.
fn groups(counts: HashMap<String, (String, u64)>) -> Vec<DueGroup> {
    let mut v: Vec<DueGroup> = counts
        .into_iter()
        .map(|(key, (label, count))| DueGroup { key, label, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    v
}

fn list(
    mut items: Vec<DueItem>,
    limit: usize,
    names: &HashMap<i64, &str>,
    overdue: bool,
) -> DueList {
    items.sort_by(|a, b| {
        a.date
            .cmp(&b.date)
            .then(a.kind.cmp(&b.kind))
            .then(a.id.cmp(&b.id))
    });
    let mut by_kind = KindCounts::default();
    let mut certs: HashMap<String, (String, u64)> = HashMap::new();
    let mut owners: HashMap<String, (String, u64)> = HashMap::new();
    let bands = if overdue {
        &OVERDUE_AGES
    } else {
        &UPCOMING_AGES
    };
    let mut ages = vec![0u64; bands.len()];
    for item in &items {
        match item.kind {
            ItemKind::Certification => by_kind.certification += 1,
            ItemKind::Requirement => by_kind.requirement += 1,
            ItemKind::Evidence => by_kind.evidence += 1,
        }
        let name = names
            .get(&item.certification_id)
            .map_or_else(|| item.certification_id.to_string(), |n| (*n).to_owned());
        certs
            .entry(item.certification_id.to_string())
            .or_insert((name, 0))
            .1 += 1;
        let owner = item.owner.clone().unwrap_or_default();
        let label = if owner.is_empty() {
            "unassigned".to_owned()
        } else {
            owner.clone()
        };
        owners.entry(owner).or_insert((label, 0)).1 += 1;
        let distance = item.days.unsigned_abs().min(i64::MAX as u64) as i64;
        if let Some(band) = bands.iter().position(|(_, _, last)| distance <= *last) {
            ages[band] += 1;
        }
    }
    let mut by_owner = groups(owners);
    if by_owner.len() > MAX_OWNER_GROUPS {
        let rest: u64 = by_owner[MAX_OWNER_GROUPS..].iter().map(|g| g.count).sum();
        let others = by_owner.len() - MAX_OWNER_GROUPS;
        by_owner.truncate(MAX_OWNER_GROUPS);
        by_owner.push(DueGroup {
            key: "others".to_owned(),
            label: format!("{others} other owners"),
            count: rest,
        });
    }
    let by_age = bands
        .iter()
        .zip(ages)
        .map(|((key, label, _), count)| DueGroup {
            key: (*key).to_owned(),
            label: (*label).to_owned(),
            count,
        })
        .collect();
    let total = items.len() as u64;
    items.truncate(limit);
    DueList {
        total,
        by_kind,
        by_certification: groups(certs),
        by_owner,
        by_age,
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
    // the same last day the loader judged coverage against
    let horizon = day(params.horizon());
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
    let names: HashMap<i64, &str> = data
        .certifications
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    Ok(Overdue {
        horizon_days: params.horizon_days,
        overdue: list(late, params.limit, &names, true),
        upcoming: list(soon, params.limit, &names, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posture::requirements_on;
    use crate::sample::{Cert, Req, as_of, dataset, lapsing, on, params};

    /// Certification 1 (in progress) is 15 days past its target, 2 is
    /// certified until +20, 3 until +100, 4 is withdrawn. Requirements of
    /// certification 1: 1 and 6 in progress due 5 days ago, 8 failed due 15
    /// days ago, 2 not started due in 10 days, 3 implemented (not due any
    /// more) whose evidence lapsed 2 days ago, 4 in progress due in 45 days
    /// whose evidence lapses in 7, 5 not applicable with lapsed evidence, 7
    /// implemented and covered for 60 more days.
    fn due_list() -> Dataset {
        let since = |status| vec![(-300, "in_progress"), (-100, status)];
        dataset(
            vec![
                Cert::new(1, -300, -15),
                Cert::new(2, -600, -400)
                    .expires(20)
                    .history(since("certified")),
                Cert::new(3, -600, -400)
                    .expires(100)
                    .history(since("certified")),
                Cert::new(4, -300, -30).history(since("withdrawn")),
            ],
            vec![
                Req::new(1, 1, vec![(-60, "in_progress")]).due(-5),
                Req::new(2, 1, vec![(-60, "not_started")]).due(10),
                Req::new(3, 1, vec![(-60, "implemented")])
                    .due(-3)
                    .covered_until(-2),
                Req::new(4, 1, vec![(-60, "in_progress")])
                    .due(45)
                    .evidenced(-300)
                    .covered_until(7),
                Req::new(5, 1, vec![(-60, "not_applicable")]).covered_until(-1),
                Req::new(6, 1, vec![(-60, "in_progress")]).due(-5),
                Req::new(7, 1, vec![(-60, "implemented")])
                    .evidenced(-10)
                    .covered_until(60),
                Req::new(8, 1, vec![(-60, "failed")]).due(-15),
            ],
            vec![],
            vec![lapsing(31, 3, -2), lapsing(41, 4, 7), lapsing(51, 5, -1)],
        )
    }

    fn overdue_with(edit: impl FnOnce(&mut crate::RawParams)) -> Overdue {
        let data = due_list();
        let frame = requirements_on(&data, as_of(), "evidenced").unwrap();
        overdue(&data, frame, &params(edit)).unwrap()
    }

    fn items(list: &DueList) -> Vec<(ItemKind, i64, i64, &str)> {
        list.items
            .iter()
            .map(|i| (i.kind, i.id, i.days, i.status.as_str()))
            .collect()
    }

    #[test]
    fn overdue_items_of_every_kind_come_most_overdue_first() {
        let o = overdue_with(|_| {});
        assert_eq!(o.horizon_days, 30);
        assert_eq!(
            items(&o.overdue),
            [
                (ItemKind::Certification, 1, -15, "in_progress"),
                (ItemKind::Requirement, 8, -15, "failed"),
                (ItemKind::Requirement, 1, -5, "in_progress"),
                (ItemKind::Requirement, 6, -5, "in_progress"),
                (ItemKind::Evidence, 31, -2, "expired"),
            ]
        );
        let k = o.overdue.by_kind;
        assert_eq!((k.certification, k.requirement, k.evidence), (1, 3, 1));
        assert_eq!((o.overdue.total, o.overdue.truncated), (5, false));
    }

    #[test]
    fn upcoming_items_within_the_horizon_come_soonest_first() {
        let o = overdue_with(|_| {});
        assert_eq!(
            items(&o.upcoming),
            [
                (ItemKind::Evidence, 41, 7, "expiring"),
                (ItemKind::Requirement, 2, 10, "not_started"),
                (ItemKind::Certification, 2, 20, "certified"),
            ]
        );
        let o = overdue_with(|raw| raw.horizon_days = Some(5));
        assert!(o.upcoming.items.is_empty());
        assert_eq!(o.overdue.total, 5);
    }

    #[test]
    fn an_item_names_what_is_due_its_certification_owner_and_date() {
        let o = overdue_with(|_| {});
        let requirement = &o.overdue.items[2];
        assert_eq!(requirement.title, "AC-1 Requirement 1");
        assert_eq!(requirement.certification_id, 1);
        assert_eq!(requirement.owner.as_deref(), Some("Ada Owner"));
        assert_eq!(requirement.date, on(-5));
        let evidence = &o.upcoming.items[0];
        assert_eq!(evidence.title, "Evidence 41");
        assert_eq!(evidence.certification_id, 1);
        assert_eq!(evidence.date, on(7));
        let certification = &o.upcoming.items[2];
        assert_eq!(certification.title, "Certification 2");
        assert_eq!(certification.date, on(20));
    }

    #[test]
    fn a_list_longer_than_the_limit_is_cut_and_says_so() {
        let o = overdue_with(|raw| raw.limit = Some(2));
        assert_eq!(o.overdue.items.len(), 2);
        assert_eq!((o.overdue.total, o.overdue.truncated), (5, true));
        assert_eq!(o.overdue.by_kind.requirement, 3, "counts cover every item");
        assert_eq!((o.upcoming.total, o.upcoming.truncated), (3, true));
    }

    #[test]
    fn the_summaries_count_every_item_by_certification_owner_and_age_despite_the_limit() {
        let o = overdue_with(|raw| raw.limit = Some(2));
        let g = |groups: &[DueGroup]| -> Vec<(String, String, u64)> {
            groups
                .iter()
                .map(|g| (g.key.clone(), g.label.clone(), g.count))
                .collect()
        };
        assert_eq!(
            g(&o.overdue.by_certification),
            [("1".into(), "Certification 1".into(), 5)]
        );
        assert_eq!(
            g(&o.overdue.by_owner),
            [("Ada Owner".into(), "Ada Owner".into(), 5)]
        );
        let ages: Vec<(&str, u64)> = o
            .overdue
            .by_age
            .iter()
            .map(|a| (a.key.as_str(), a.count))
            .collect();
        assert_eq!(
            ages,
            [("1_30", 5), ("31_90", 0), ("91_180", 0), ("over_180", 0)]
        );
        let ages: Vec<u64> = o.upcoming.by_age.iter().map(|a| a.count).collect();
        // 7 days; 10 and 20 days
        assert_eq!(ages, [1, 2, 0, 0]);
        assert_eq!(
            g(&o.upcoming.by_certification),
            [
                ("1".into(), "Certification 1".into(), 2),
                ("2".into(), "Certification 2".into(), 1)
            ]
        );
    }
}
