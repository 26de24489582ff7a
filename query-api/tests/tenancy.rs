//! Tenancy over real HTTP: canary words of one organization never reach another
//! through any route; auditors see only their certifications; a property test
//! checks every hit of random queries against PostgreSQL.
//!
//! The tests share the binary's service. Its fixture (canaries planted in both
//! organizations, a risk linked to two certifications) is written once, before
//! any test reads; after that every test only reads.

use std::collections::HashSet;

use certscope_domain::Kind;
use certscope_query_api::testing::{Params, TestApp, facet, hits, total};
use certscope_query_api::{Role, paths};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::sync::OnceCell;

const CANARY_A: &str = "zanzibarquokka";
const CANARY_B: &str = "xylophonewombat";

/// What the tests look for, planted once in the shared service's database.
struct Fixture {
    /// The two organizations' slugs.
    a: String,
    b: String,
    /// A's canary evidence and certification.
    ev_a: i64,
    cert_a: i64,
    /// B's canary evidence, risk and certification, and another of its rows.
    ev_b: i64,
    risk_b: i64,
    cert_b: i64,
    req_b: i64,
    b_certs: HashSet<i64>,
    /// The index position once everything was planted.
    position: String,
    /// A's first certification (the auditor's) and its second.
    mine: i64,
    other: i64,
    /// A risk of A linked to a requirement of each.
    shared_risk: i64,
    /// A requirement of `other`.
    other_req: i64,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

/// The shared service, with the fixture planted by the first caller.
async fn fixture() -> (TestApp, &'static Fixture) {
    let s = TestApp::shared().await;
    let fx = FIXTURE.get_or_init(|| plant_fixture(&s)).await;
    (s, fx)
}

async fn plant_fixture(s: &TestApp) -> Fixture {
    let (a, b) = s.orgs().await;
    let (org_a, org_b) = (s.org_id(&a).await, s.org_id(&b).await);
    let (ev_a, _, cert_a) = plant(s, org_a, CANARY_A).await;
    let (ev_b, risk_b, cert_b) = plant(s, org_b, CANARY_B).await;
    let req_b: i64 =
        sqlx::query_scalar("SELECT min(id) FROM requirements WHERE organization_id = $1")
            .bind(org_b)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    let b_certs: HashSet<i64> = s.certification_ids(org_b).await.into_iter().collect();

    let certs: Vec<i64> = s.certification_ids(org_a).await;
    let (mine, other) = (certs[0], certs[1]);
    // a risk linked to a requirement of each certification
    let shared_risk: i64 =
        sqlx::query_scalar("SELECT min(id) FROM risks WHERE organization_id = $1")
            .bind(org_a)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    for cert in [mine, other] {
        sqlx::query(
            "INSERT INTO risk_requirements (organization_id, risk_id, requirement_id) \
             SELECT $1, $2, min(id) FROM requirements WHERE certification_id = $3 ON CONFLICT DO NOTHING",
        )
        .bind(org_a)
        .bind(shared_risk)
        .bind(cert)
        .execute(&s.pool)
        .await
        .unwrap();
    }
    let other_req: i64 =
        sqlx::query_scalar("SELECT min(id) FROM requirements WHERE certification_id = $1")
            .bind(other)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    s.caught_up().await;
    Fixture {
        a,
        b,
        ev_a,
        cert_a,
        ev_b,
        risk_b,
        cert_b,
        req_b,
        b_certs,
        position: s.snapshot().await.to_string(),
        mine,
        other,
        shared_risk,
        other_req,
    }
}

/// Plants a canary word in the first evidence (title and text), risk and
/// certification of `org`; returns their ids.
async fn plant(s: &TestApp, org: i64, word: &str) -> (i64, i64, i64) {
    let mut ids = Vec::new();
    for (table, set) in [
        (
            "evidence",
            "title = title || ' ' || $2, content = content || ' ' || $2",
        ),
        ("risks", "title = title || ' ' || $2"),
        ("certifications", "name = name || ' ' || $2"),
    ] {
        let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET {set} WHERE id = (SELECT min(id) FROM {table} WHERE organization_id = $1) RETURNING id"
        )))
        .bind(org)
        .bind(word)
        .fetch_one(&s.pool)
        .await
        .unwrap();
        ids.push(id);
    }
    (ids[0], ids[1], ids[2])
}

/// Asserts that A's answer from `path` holds nothing of B: not its canary,
/// not its certifications in facets (except with a zero count), not its hits.
async fn assert_nothing_of_b(s: &TestApp, fx: &Fixture, token: &str, path: &str, params: Params) {
    let what = format!("{path}{}", params.query_string());
    let r = s.get_at(token, path, &params).await;
    assert_eq!(r.status(), 200, "{what}");
    let body = r.text().await.unwrap();
    assert!(!body.contains(CANARY_B), "{what} leaked B's canary");
    let v: Value = serde_json::from_str(&body).unwrap();
    if let Some(facet) = v["facets"]["certification"].as_array() {
        for f in facet {
            let id: i64 = f["value"].as_str().unwrap().parse().unwrap();
            assert!(
                !fx.b_certs.contains(&id) || f["count"] == 0,
                "{what}: B's certification {id} counted"
            );
        }
    }
    for h in v["hits"].as_array().into_iter().flatten() {
        if let Some(c) = h["certification_id"].as_i64() {
            assert!(!fx.b_certs.contains(&c), "{what}: hit of B");
        }
    }
}

#[tokio::test]
async fn each_organization_finds_its_own_canary() {
    let (s, fx) = fixture().await;
    let ta = s.officer(&fx.a).await;
    let tb = s.officer(&fx.b).await;
    assert!(total(&s.search(&ta, &Params::q(CANARY_A)).await) >= 3);
    assert!(total(&s.search(&tb, &Params::q(CANARY_B)).await) >= 3);
}

#[tokio::test]
async fn no_search_returns_another_organizations_data() {
    let (s, fx) = fixture().await;
    let ta = s.officer(&fx.a).await;
    for params in [
        Params::q(CANARY_B),
        Params::q("xylophone*"),
        Params::q(&format!("title:{CANARY_B}")),
        Params::q(CANARY_B).with("min_position", &fx.position),
        Params::new().with("certification", fx.cert_b),
        Params::new().with("facet_size", 100).with("limit", 100),
    ] {
        assert_nothing_of_b(&s, fx, &ta, paths::SEARCH, params).await;
    }
}

#[tokio::test]
async fn no_suggestion_comes_from_another_organizations_data() {
    let (s, fx) = fixture().await;
    let ta = s.officer(&fx.a).await;
    for params in [Params::q("xylophonew"), Params::q(CANARY_B)] {
        assert_nothing_of_b(&s, fx, &ta, paths::SUGGEST, params).await;
    }
}

#[tokio::test]
async fn no_listing_returns_another_organizations_data() {
    let (s, fx) = fixture().await;
    let ta = s.officer(&fx.a).await;
    for (path, params) in [
        (paths::CERTIFICATIONS, Params::new().with("limit", 100)),
        (paths::CERTIFICATIONS, Params::q(CANARY_B)),
        (
            paths::REQUIREMENTS,
            Params::new().with("certification", fx.cert_b),
        ),
        (
            paths::REQUIREMENTS,
            Params::new()
                .with("limit", 100)
                .with("facets", "certification,status,owner"),
        ),
    ] {
        assert_nothing_of_b(&s, fx, &ta, path, params).await;
    }
}

#[tokio::test]
async fn another_organizations_records_are_not_found_exactly_like_missing_ones() {
    let (s, fx) = fixture().await;
    let ta = s.officer(&fx.a).await;
    for (kind, id, include) in [
        (Kind::Evidence, fx.ev_b, &[][..]),
        (Kind::Risk, fx.risk_b, &[][..]),
        (
            Kind::Certification,
            fx.cert_b,
            &["requirements", "evidence", "risks", "history"][..],
        ),
        (Kind::Evidence, 999_999_999, &[][..]),
        (Kind::Requirement, fx.req_b, &[][..]),
    ] {
        let r = s.detail(&ta, kind, id, include).await;
        assert_eq!(r.status(), 404, "{kind} {id}");
        let body = r.text().await.unwrap();
        assert!(!body.contains(CANARY_B));
    }
    // and A's own are there
    for (kind, id) in [(Kind::Evidence, fx.ev_a), (Kind::Certification, fx.cert_a)] {
        assert_eq!(
            s.detail(&ta, kind, id, &[]).await.status(),
            200,
            "{kind} {id}"
        );
    }
}

#[tokio::test]
async fn a_query_using_another_organizations_word_as_a_field_finds_none_of_its_documents() {
    let (s, fx) = fixture().await;
    let ta = s.officer(&fx.a).await;
    // not a field: text, searched in A's documents only (and typo tolerance
    // and statistics never reach B's words)
    let r = s
        .search_response(&ta, &Params::q(&format!("{CANARY_B}:x")))
        .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(!body.contains(CANARY_B), "{body}");
}

/// An auditor of A's first certification.
async fn auditor(s: &TestApp, fx: &Fixture) -> String {
    s.token(&fx.a, Role::Auditor, Some(vec![fx.mine])).await
}

#[tokio::test]
async fn an_auditor_sees_a_risk_shared_with_another_certification_as_its_own_only() {
    let (s, fx) = fixture().await;
    let t = auditor(&s, fx).await;
    let params = Params::new()
        .with("kind", "risk")
        .with("limit", 100)
        .with("facets", "none");
    let r = s.search(&t, &params).await;
    let hit = hits(&r)
        .iter()
        .find(|h| h["id"] == fx.shared_risk)
        .expect("the shared risk is visible");
    assert_eq!(
        hit["certification_id"],
        serde_json::json!([fx.mine]),
        "{hit}"
    );
    assert!(
        hit.get("control").is_none(),
        "controls reached through other certifications: {hit}"
    );
}

#[tokio::test]
async fn an_auditor_reads_only_its_certifications_requirements_of_a_shared_risk() {
    let (s, fx) = fixture().await;
    let t = auditor(&s, fx).await;
    let d = s
        .detail_json(&t, Kind::Risk, fx.shared_risk, &["requirements"])
        .await;
    assert_eq!(d["certification_ids"], serde_json::json!([fx.mine]), "{d}");
    let items = d["requirements"]["items"].as_array().unwrap();
    assert!(
        !items.is_empty() && items.iter().all(|i| i["certification_id"] == fx.mine),
        "{d}"
    );
    assert_eq!(
        d["requirements"]["total"].as_u64(),
        Some(items.len() as u64)
    );
}

#[tokio::test]
async fn every_search_hit_and_certification_facet_of_an_auditor_is_its_certification() {
    let (s, fx) = fixture().await;
    let t = auditor(&s, fx).await;
    let r = s
        .search(
            &t,
            &Params::new().with("limit", 100).with("facet_size", 100),
        )
        .await;
    let mine = fx.mine;
    for h in hits(&r) {
        match h["kind"].as_str().unwrap() {
            "control" => {}
            "risk" => assert!(
                h["certification_id"]
                    .as_array()
                    .is_some_and(|a| a.contains(&Value::from(mine)))
                    || h["certification_id"] == mine
            ),
            _ => assert_eq!(h["certification_id"], mine, "{h}"),
        }
    }
    assert_eq!(
        facet(&r, "certification")
            .iter()
            .map(|f| f.0.clone())
            .collect::<Vec<_>>(),
        vec![mine.to_string()]
    );
}

#[tokio::test]
async fn an_auditor_lists_and_reads_its_certification() {
    let (s, fx) = fixture().await;
    let t = auditor(&s, fx).await;
    let listing = s.listing(&t, Kind::Certification, &Params::new()).await;
    assert_eq!(total(&listing), 1);
    assert_eq!(
        s.detail(&t, Kind::Certification, fx.mine, &[])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_auditor_is_forbidden_the_other_certifications_of_its_organization() {
    let (s, fx) = fixture().await;
    let t = auditor(&s, fx).await;
    assert_eq!(
        s.detail(&t, Kind::Certification, fx.other, &[])
            .await
            .status(),
        403
    );
    let r = s
        .search_response(&t, &Params::new().with("certification", fx.other))
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        s.detail(&t, Kind::Requirement, fx.other_req, &[])
            .await
            .status(),
        403
    );
}

/// Property: for random queries, filters and sorts, every hit of every page
/// belongs to the caller's organization (or is a shared control).
#[tokio::test]
async fn every_hit_of_random_queries_belongs_to_the_caller() {
    let (s, fx) = fixture().await;
    let words = [
        "access",
        "control",
        "policy",
        "review",
        "audit",
        "risk",
        "incident",
        "backup",
        "encryption",
        "account",
        "privilege",
        "log",
        "vendor",
        "training",
        "AC-2",
        "AU-6",
        "acc*",
        "\"access control\"",
        "-policy",
        "status:accepted",
        "kind:evidence",
        "(audit OR backup)",
        "supplier",
    ];
    let filters: [&[(&str, &str)]; 9] = [
        &[],
        &[("kind", "evidence")],
        &[("kind", "risk,requirement")],
        &[("status", "accepted")],
        &[("due", "overdue")],
        &[("risk_level", "high,critical")],
        &[("sort", "-due_date")],
        &[("sort", "title")],
        &[("expires_after", "2026-01-01")],
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    for (slug, other) in [(&fx.a, &fx.b), (&fx.b, &fx.a)] {
        let org = s.org_id(slug).await;
        let other_org = s.org_id(other).await;
        let t = s.officer(slug).await;
        for _ in 0..40 {
            let n = rng.random_range(1..=3);
            let q: Vec<&str> = (0..n)
                .map(|_| words[rng.random_range(0..words.len())])
                .collect();
            let f = filters[rng.random_range(0..filters.len())];
            let params = f.iter().fold(
                Params::new().with("limit", 50).with("q", q.join(" ")),
                |p, (name, value)| p.with(name, value),
            );
            let what = params.query_string();
            let v = s.search(&t, &params).await;
            for h in hits(&v) {
                let kind = h["kind"].as_str().unwrap();
                let id = h["id"].as_i64().unwrap();
                let table = match kind {
                    "control" => continue,
                    "certification" => "certifications",
                    "requirement" => "requirements",
                    "evidence" => "evidence",
                    _ => "risks",
                };
                let owner: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT organization_id FROM {table} WHERE id = $1"
                )))
                .bind(id)
                .fetch_one(&s.pool)
                .await
                .unwrap();
                assert_eq!(owner, org, "{what}: {kind} {id} belongs to {other_org}");
            }
        }
    }
}
