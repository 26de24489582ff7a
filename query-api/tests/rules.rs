//! One rule, one answer: risk levels and due dates come out the same from
//! search facets, report sections and live events, for every kind and status,
//! because all three ask `certscope_domain`. Each test builds rows of every
//! status with deadlines on both sides of each bucket edge, then compares what
//! each layer says with what the domain says.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use certscope_domain::deadline::{Dates, Deadline};
use certscope_domain::{
    CertificationStatus, DueBucket, Kind, RequirementStatus, RiskLevel, RiskRating,
};
use certscope_query_api::testing::{Params, TestApp, facet, hits};
use certscope_reports::section::Section;
use chrono::{Days, NaiveDate};
use serde_json::Value;

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn on(offset: i64) -> NaiveDate {
    if offset >= 0 {
        today() + Days::new(offset as u64)
    } else {
        today() - Days::new(offset.unsigned_abs())
    }
}

/// Deadlines on both sides of every bucket edge.
const OFFSETS: [i64; 9] = [-40, -1, 0, 30, 31, 60, 61, 90, 91];

/// Ids of every hit of a search, all pages.
async fn ids(s: &TestApp, token: &str, params: Params) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p = params.clone().with("limit", 100).with("facets", "none");
        if let Some(c) = &cursor {
            p = p.with("cursor", c);
        }
        let v = s.search(token, &p).await;
        out.extend(hits(&v).iter().filter_map(|h| h["id"].as_i64()));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// What the domain says about deadline `d` today: the bucket names it falls in.
fn buckets(d: Option<Deadline>) -> BTreeSet<&'static str> {
    let Some(d) = d else {
        return BTreeSet::new();
    };
    DueBucket::ALL
        .into_iter()
        .filter(|b| b.contains(d.days_from(today())))
        .map(DueBucket::as_str)
        .collect()
}

struct Fixture {
    s: TestApp,
    org: i64,
    token: String,
    /// (kind, id) -> deadline by the domain
    expected: HashMap<(Kind, i64), Option<Deadline>>,
}

/// A certification in flight holding one requirement per (status, offset), and
/// one certification per (status, offset) whose target and expiry fall on it.
async fn fixture() -> Fixture {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let framework: i64 = sqlx::query_scalar("SELECT id FROM frameworks ORDER BY id LIMIT 1")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let mut expected = HashMap::new();

    for status in CertificationStatus::ALL {
        for offset in OFFSETS {
            let (target, expires) = (on(offset), on(offset));
            let certified = (*status == CertificationStatus::Certified
                || *status == CertificationStatus::Expired)
                .then(|| on(offset - 400));
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO certifications (organization_id, framework_id, name, status, started_on, \
                 target_date, certified_on, expires_on) \
                 VALUES ($1, $2, 'rules check ' || $3, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(org)
            .bind(framework)
            .bind(status.as_str())
            .bind(on(offset - 500))
            .bind(target)
            .bind(certified)
            .bind(certified.map(|_| expires))
            .fetch_one(&s.pool)
            .await
            .unwrap();
            let dates = Dates {
                target_date: Some(target),
                expires_on: certified.map(|_| expires),
                ..Dates::default()
            };
            expected.insert(
                (Kind::Certification, id),
                Deadline::of((*status).into(), dates),
            );
        }
    }

    let holder: i64 = sqlx::query_scalar(
        "INSERT INTO certifications (organization_id, framework_id, name, status, started_on, target_date) \
         VALUES ($1, $2, 'rules holder', 'in_progress', $3, $4) RETURNING id",
    )
    .bind(org)
    .bind(framework)
    .bind(on(-100))
    .bind(on(400))
    .fetch_one(&s.pool)
    .await
    .unwrap();
    expected.insert(
        (Kind::Certification, holder),
        Deadline::of(
            CertificationStatus::InProgress.into(),
            Dates {
                target_date: Some(on(400)),
                ..Dates::default()
            },
        ),
    );
    let controls: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM controls WHERE framework_id = $1 ORDER BY id LIMIT $2")
            .bind(framework)
            .bind((RequirementStatus::ALL.len() * OFFSETS.len()) as i64)
            .fetch_all(&s.pool)
            .await
            .unwrap();
    let mut control = controls.into_iter();
    for status in RequirementStatus::ALL {
        for offset in OFFSETS {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO requirements (organization_id, certification_id, control_id, status, due_date) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(org)
            .bind(holder)
            .bind(control.next().unwrap())
            .bind(status.as_str())
            .bind(on(offset))
            .fetch_one(&s.pool)
            .await
            .unwrap();
            let dates = Dates {
                due_date: Some(on(offset)),
                ..Dates::default()
            };
            expected.insert(
                (Kind::Requirement, id),
                Deadline::of((*status).into(), dates),
            );
        }
    }
    s.caught_up().await;
    Fixture {
        s,
        org,
        token,
        expected,
    }
}

#[tokio::test]
async fn search_due_buckets_and_the_overdue_report_agree_with_the_domain_for_every_status() {
    let fx = fixture().await;
    let s = &fx.s;
    for kind in [Kind::Certification, Kind::Requirement] {
        for bucket in DueBucket::ALL {
            let found = ids(
                s,
                &fx.token,
                Params::new()
                    .with("kind", kind.as_str())
                    .with("due", bucket.as_str()),
            )
            .await;
            for ((k, id), deadline) in &fx.expected {
                if *k != kind {
                    continue;
                }
                assert_eq!(
                    found.contains(id),
                    buckets(*deadline).contains(bucket.as_str()),
                    "search {kind} {id} in {bucket:?}: deadline {deadline:?}"
                );
            }
        }
    }

    // the report's lists, with a horizon as wide as the widest bucket
    let report = s
        .metric(
            &fx.token,
            Section::Overdue,
            &Params::new()
                .with("horizon_days", DueBucket::WIDEST_DAYS)
                .with("limit", 1000),
        )
        .await;
    let listed = |list: &str| -> BTreeSet<(String, i64)> {
        report["overdue"][list]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["kind"].as_str().unwrap().to_owned(),
                    i["id"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let (late, soon) = (listed("overdue"), listed("upcoming"));
    for ((kind, id), deadline) in &fx.expected {
        let key = (kind.as_str().to_owned(), *id);
        let b = buckets(*deadline);
        assert_eq!(
            late.contains(&key),
            b.contains("overdue"),
            "report overdue {kind} {id}: {deadline:?}"
        );
        assert_eq!(
            soon.contains(&key),
            b.contains("due_90"),
            "report upcoming {kind} {id}: {deadline:?}"
        );
    }

    // a certified certification is due for renewal by its expiry in both
    let renewal: Vec<&(Kind, i64)> = fx
        .expected
        .iter()
        .filter(|(_, d)| {
            d.is_some_and(|d| d.what == certscope_domain::deadline::DeadlineKind::Expiry)
        })
        .map(|(k, _)| k)
        .collect();
    assert!(!renewal.is_empty());
}

#[tokio::test]
async fn the_overdue_trend_counts_what_the_overdue_list_lists() {
    let fx = fixture().await;
    let s = &fx.s;
    let report = s.metric(&fx.token, Section::Trends, &Params::new()).await;
    let last = report["trends"]["points"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let overdue = s
        .metric(
            &fx.token,
            Section::Overdue,
            &Params::new().with("limit", 1000),
        )
        .await;
    let by_kind = &overdue["overdue"]["overdue"]["by_kind"];
    assert_eq!(
        last["overdue_requirements"], by_kind["requirement"],
        "{last}"
    );
    assert_eq!(
        last["overdue_certifications"], by_kind["certification"],
        "{last}"
    );
    let _ = fx.org;
}

#[tokio::test]
async fn risk_levels_are_the_same_in_search_facets_heat_maps_and_events() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    // one open risk in every residual cell of the grid, under a word no seed uses
    let mut level_of = HashMap::new();
    for l in 1..=5i16 {
        for i in 1..=5i16 {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO risks (organization_id, title, category, inherent_likelihood, inherent_impact, \
                 residual_likelihood, residual_impact, treatment, status) \
                 VALUES ($1, 'zyxgridcheck risk', 'security', 5, 5, $2, $3, 'mitigate', 'open') RETURNING id",
            )
            .bind(org)
            .bind(l)
            .bind(i)
            .fetch_one(&s.pool)
            .await
            .unwrap();
            level_of.insert(id, RiskRating::new(l.into(), i.into()).level);
        }
    }
    s.caught_up().await;

    // search: the risk_level facet over exactly those risks
    let v = s
        .search(
            &token,
            &Params::q("zyxgridcheck")
                .with("kind", "risk")
                .with("facets", "risk_level"),
        )
        .await;
    let from_search: HashMap<String, u64> = facet(&v, "risk_level").into_iter().collect();
    for level in RiskLevel::ALL {
        let expected = level_of.values().filter(|l| **l == level).count() as u64;
        assert_eq!(
            from_search.get(level.as_str()).copied().unwrap_or(0),
            expected,
            "search facet {level}"
        );
    }

    // heat-map: each of those risks sits in a cell of its level
    let heat = s.metric(&token, Section::Heatmap, &Params::new()).await;
    for cell in heat["heatmap"]["residual"]["cells"].as_array().unwrap() {
        for id in cell["risk_ids"].as_array().unwrap() {
            if let Some(level) = level_of.get(&id.as_i64().unwrap()) {
                assert_eq!(cell["level"], level.as_str(), "heat-map cell {cell}");
            }
        }
    }

    // events: risk.created carries the same level
    let events: Vec<Value> = {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let rows: Vec<Value> = sqlx::query_scalar(
                "SELECT data FROM events WHERE kind = 'risk.created' AND organization_id = $1 \
                 AND (data->>'risk_id')::bigint = ANY($2)",
            )
            .bind(org)
            .bind(level_of.keys().copied().collect::<Vec<_>>())
            .fetch_all(&s.pool)
            .await
            .unwrap();
            if rows.len() == level_of.len() || std::time::Instant::now() > deadline {
                break rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(events.len(), level_of.len(), "one risk.created per risk");
    for e in events {
        let id = e["risk_id"].as_i64().unwrap();
        assert_eq!(
            e["current"]["residual"]["level"],
            level_of[&id].as_str(),
            "event {e}"
        );
    }
}
