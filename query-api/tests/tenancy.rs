//! Tenancy over real HTTP: canary words of one organization never reach another
//! through any route; auditors see only their certifications; a property test
//! checks every hit of random queries against PostgreSQL.

use std::collections::HashSet;

use certscope_query_api::Role;
use certscope_query_api::testing::{TestApp, enc, hits, total};
use rand::{Rng, SeedableRng};
use serde_json::Value;

const CANARY_A: &str = "zanzibarquokka";
const CANARY_B: &str = "xylophonewombat";

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

#[tokio::test]
async fn no_route_ever_returns_another_organizations_data() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let (org_a, org_b) = (s.org_id(&a).await, s.org_id(&b).await);
    let (ev_a, _, cert_a) = plant(&s, org_a, CANARY_A).await;
    let (ev_b, risk_b, cert_b) = plant(&s, org_b, CANARY_B).await;
    s.caught_up().await;
    let ta = s.officer(&a).await;
    let tb = s.officer(&b).await;

    // each organization finds its own canary
    assert!(total(&s.json(&ta, &format!("/v1/search?q={CANARY_A}")).await) >= 3);
    assert!(total(&s.json(&tb, &format!("/v1/search?q={CANARY_B}")).await) >= 3);

    let position = s.snapshot().await.to_string();
    let routes = [
        format!("/v1/search?q={CANARY_B}"),
        "/v1/search?q=xylophone*".to_owned(),
        format!("/v1/search?q=title:{CANARY_B}"),
        format!("/v1/search?q={CANARY_B}&min_position={}", enc(&position)),
        format!("/v1/search?certification={cert_b}"),
        "/v1/search?facet_size=100&limit=100".to_owned(),
        "/v1/suggest?q=xylophonew".to_owned(),
        format!("/v1/suggest?q={CANARY_B}"),
        "/v1/certifications?limit=100".to_owned(),
        format!("/v1/certifications?q={CANARY_B}"),
        format!("/v1/requirements?certification={cert_b}"),
        "/v1/requirements?limit=100&facets=certification,status,owner".to_owned(),
    ];
    let b_certs: HashSet<i64> =
        sqlx::query_scalar("SELECT id FROM certifications WHERE organization_id = $1")
            .bind(org_b)
            .fetch_all(&s.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for path in &routes {
        let r = s.get(&ta, path).await;
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains(CANARY_B), "{path} leaked B's canary");
        let v: Value = serde_json::from_str(&body).unwrap();
        if let Some(facet) = v["facets"]["certification"].as_array() {
            for f in facet {
                let id: i64 = f["value"].as_str().unwrap().parse().unwrap();
                assert!(
                    !b_certs.contains(&id) || f["count"] == 0,
                    "{path}: B's certification {id} counted"
                );
            }
        }
        for h in v["hits"].as_array().into_iter().flatten() {
            if let Some(c) = h["certification_id"].as_i64() {
                assert!(!b_certs.contains(&c), "{path}: hit of B");
            }
        }
    }
    // details of B's ids are 404 for A, exactly like ids that do not exist
    for path in [
        format!("/v1/evidence/{ev_b}"),
        format!("/v1/risks/{risk_b}"),
        format!("/v1/certifications/{cert_b}?include=requirements,evidence,risks,history"),
        "/v1/evidence/999999999".to_owned(),
    ] {
        let r = s.get(&ta, &path).await;
        assert_eq!(r.status(), 404, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains(CANARY_B));
    }
    let req_b: i64 =
        sqlx::query_scalar("SELECT min(id) FROM requirements WHERE organization_id = $1")
            .bind(org_b)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(
        s.get(&ta, &format!("/v1/requirements/{req_b}"))
            .await
            .status(),
        404
    );
    // and A's own are there
    assert_eq!(
        s.get(&ta, &format!("/v1/evidence/{ev_a}")).await.status(),
        200
    );
    assert_eq!(
        s.get(&ta, &format!("/v1/certifications/{cert_a}"))
            .await
            .status(),
        200
    );
    // errors name nothing of B either
    let r = s.get(&ta, &format!("/v1/search?q={CANARY_B}:x")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn an_auditor_sees_only_its_certifications() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let certs: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM certifications WHERE organization_id = $1 ORDER BY id")
            .bind(org)
            .fetch_all(&s.pool)
            .await
            .unwrap();
    let (mine, other) = (certs[0], certs[1]);
    // a risk linked to a requirement of each certification
    let risk: i64 = sqlx::query_scalar("SELECT min(id) FROM risks WHERE organization_id = $1")
        .bind(org)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    for cert in [mine, other] {
        sqlx::query(
            "INSERT INTO risk_requirements (organization_id, risk_id, requirement_id) \
             SELECT $1, $2, min(id) FROM requirements WHERE certification_id = $3 ON CONFLICT DO NOTHING",
        )
        .bind(org)
        .bind(risk)
        .bind(cert)
        .execute(&s.pool)
        .await
        .unwrap();
    }
    s.caught_up().await;
    let t = s.token(&a, Role::Auditor, Some(vec![mine])).await;
    let r = s
        .json(&t, "/v1/search?kind=risk&limit=100&facets=none")
        .await;
    let hit = hits(&r)
        .iter()
        .find(|h| h["id"] == risk)
        .expect("the shared risk is visible");
    assert_eq!(hit["certification_id"], serde_json::json!([mine]), "{hit}");
    assert!(
        hit.get("control").is_none(),
        "controls reached through other certifications: {hit}"
    );
    let d = s
        .json(&t, &format!("/v1/risks/{risk}?include=requirements"))
        .await;
    assert_eq!(d["certification_ids"], serde_json::json!([mine]), "{d}");
    let items = d["requirements"]["items"].as_array().unwrap();
    assert!(
        !items.is_empty() && items.iter().all(|i| i["certification_id"] == mine),
        "{d}"
    );
    assert_eq!(
        d["requirements"]["total"].as_u64(),
        Some(items.len() as u64)
    );
    let r = s.json(&t, "/v1/search?limit=100&facet_size=100").await;
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
    let facet = certscope_query_api::testing::facet(&r, "certification");
    assert_eq!(
        facet.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
        vec![mine.to_string()]
    );
    let listing = s.json(&t, "/v1/certifications").await;
    assert_eq!(total(&listing), 1);
    assert_eq!(
        s.get(&t, &format!("/v1/certifications/{mine}"))
            .await
            .status(),
        200
    );
    assert_eq!(
        s.get(&t, &format!("/v1/certifications/{other}"))
            .await
            .status(),
        403
    );
    let r = s
        .get(&t, &format!("/v1/search?certification={other}"))
        .await;
    assert_eq!(r.status(), 403);
    let other_req: i64 =
        sqlx::query_scalar("SELECT min(id) FROM requirements WHERE certification_id = $1")
            .bind(other)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(
        s.get(&t, &format!("/v1/requirements/{other_req}"))
            .await
            .status(),
        403
    );
}

/// Property: for random queries, filters and sorts, every hit of every page
/// belongs to the caller's organization (or is a shared control).
#[tokio::test]
async fn every_hit_of_random_queries_belongs_to_the_caller() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
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
    let filters = [
        "",
        "&kind=evidence",
        "&kind=risk,requirement",
        "&status=accepted",
        "&due=overdue",
        "&risk_level=high,critical",
        "&sort=-due_date",
        "&sort=title",
        "&expires_after=2026-01-01",
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    for (slug, other) in [(&a, &b), (&b, &a)] {
        let org = s.org_id(slug).await;
        let other_org = s.org_id(other).await;
        let t = s.officer(slug).await;
        for _ in 0..40 {
            let n = rng.random_range(1..=3);
            let q: Vec<&str> = (0..n)
                .map(|_| words[rng.random_range(0..words.len())])
                .collect();
            let f = filters[rng.random_range(0..filters.len())];
            let path = format!("/v1/search?limit=50&q={}{f}", enc(&q.join(" ")));
            let r = s.get(&t, &path).await;
            assert_eq!(r.status(), 200, "{path}");
            let v: Value = r.json().await.unwrap();
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
                assert_eq!(owner, org, "{path}: {kind} {id} belongs to {other_org}");
            }
        }
    }
}
