//! Search over real HTTP against the running service: relevance on the NIST
//! catalogue, facets against SQL, pagination under writes, per-organization
//! statistics, read-your-writes.

use std::collections::{BTreeMap, HashSet};

use certscope_query_api::testing::{TestApp, controls_of, enc, facet, hits, total};
use serde_json::Value;

#[tokio::test]
async fn a_compliance_officer_finds_the_right_controls_first() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    let q = |q: &str| format!("/v1/search?facets=none&limit=5&q={}", enc(q));

    // an exact control id wins, in both of its spellings
    for id in ["AC-2(1)", "ac-2.1", "ac-2(1)"] {
        let r = s.json(&t, &q(id)).await;
        let top = controls_of(&r, 3);
        assert!(
            !top.is_empty() && top.iter().all(|c| c == "AC-2(1)"),
            "{id}: {top:?}"
        );
    }
    // AC-2 is not AC-2(1): the exact control first, then its enhancements
    // in natural order (never a fuzzy or prefix match above them)
    let r = s
        .json(&t, "/v1/search?facets=none&limit=5&kind=control&q=AC-2")
        .await;
    assert_eq!(
        controls_of(&r, 4),
        ["AC-2", "AC-2(1)", "AC-2(2)", "AC-2(3)"],
        "{:?}",
        controls_of(&r, 5)
    );

    // words a compliance officer would type
    for (query, control) in [
        ("least privilege", "AC-6"),
        ("account management", "AC-2"),
        ("\"access enforcement\"", "AC-3"),
        ("separation of duties", "AC-5"),
        ("contingency plan", "CP-2"),
        ("incident response plan", "IR-8"),
    ] {
        let r = s.json(&t, &q(query)).await;
        assert_eq!(
            controls_of(&r, 1).first().map(String::as_str),
            Some(control),
            "{query}: {:?}",
            controls_of(&r, 5)
        );
    }

    // a misspelt word still finds its control
    let r = s.json(&t, &q("separaton of duties")).await;
    assert_eq!(
        controls_of(&r, 1),
        ["AC-5"],
        "typo: {:?}",
        controls_of(&r, 5)
    );
    let r = s.json(&t, &q("authenticaton")).await;
    assert!(
        hits(&r)
            .iter()
            .take(5)
            .any(|h| h["title"].as_str().unwrap_or("").contains("Authentication")),
        "typo: {r}"
    );

    // a phrase beats the same words scattered
    let phrase = s.json(&t, &q("\"audit record\"")).await;
    let words = s.json(&t, &q("audit record")).await;
    assert!(total(&phrase) <= total(&words));
    let top = hits(&phrase)[0]["title"].as_str().unwrap().to_lowercase();
    assert!(top.contains("audit record"), "phrase top hit: {top}");

    // a sha256 finds exactly its evidence
    let (id, sha): (i64, String) = sqlx::query_as(
        "SELECT e.id, e.sha256 FROM evidence e JOIN organizations o ON o.id = e.organization_id \
         WHERE o.slug = $1 ORDER BY e.id LIMIT 1",
    )
    .bind(&a)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let r = s.json(&t, &q(&sha)).await;
    assert_eq!(total(&r), 1, "{r}");
    assert_eq!(hits(&r)[0]["id"], id);
    assert_eq!(hits(&r)[0]["kind"], "evidence");

    // evidence text is searched, with highlighted snippets
    let r = s.json(&t, &q("access review")).await;
    assert!(hits(&r).iter().any(|h| h["kind"] == "evidence"), "{r}");
    assert!(
        hits(&r)
            .iter()
            .any(|h| h["snippet"].as_str().unwrap().contains("<b>"))
    );

    // prefix search on unstemmed title words, and exclusion
    let r = s.json(&t, &q("authenticat*")).await;
    assert!(total(&r) > 0);
    let r = s
        .json(
            &t,
            &format!(
                "/v1/search?facets=none&limit=100&q={}",
                enc("privilege -least")
            ),
        )
        .await;
    assert!(
        hits(&r).iter().all(|h| !h["title"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("least")),
        "exclusion"
    );

    // suggestions on titles and control ids
    let r = s.json(&t, "/v1/suggest?q=least%20priv").await;
    assert!(
        r["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["title"] == "Least Privilege"),
        "{r}"
    );
    let r = s.json(&t, "/v1/suggest?q=AC-2(").await;
    let sug = r["suggestions"].as_array().unwrap();
    assert!(
        !sug.is_empty()
            && sug
                .iter()
                .all(|x| x["control"].as_str().unwrap_or("").starts_with("AC-2(")),
        "{r}"
    );
}

async fn count(s: &TestApp, sql: &str, org: i64) -> u64 {
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(org)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    n as u64
}

#[tokio::test]
async fn facet_counts_equal_sql_and_follow_multi_select_semantics() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let t = s.officer(&a).await;

    // no query, no selection: every facet equals a GROUP BY
    let r = s.json(&t, "/v1/search?facet_size=100&limit=1").await;
    let kinds: BTreeMap<String, u64> = facet(&r, "kind").into_iter().collect();
    let expect_kinds = BTreeMap::from([
        (
            "certification".to_owned(),
            count(
                &s,
                "SELECT count(*) FROM certifications WHERE organization_id = $1",
                org,
            )
            .await,
        ),
        (
            "requirement".to_owned(),
            count(
                &s,
                "SELECT count(*) FROM requirements WHERE organization_id = $1",
                org,
            )
            .await,
        ),
        (
            "evidence".to_owned(),
            count(
                &s,
                "SELECT count(*) FROM evidence WHERE organization_id = $1",
                org,
            )
            .await,
        ),
        (
            "risk".to_owned(),
            count(
                &s,
                "SELECT count(*) FROM risks WHERE organization_id = $1",
                org,
            )
            .await,
        ),
        (
            "control".to_owned(),
            count(&s, "SELECT count(*) FROM controls WHERE $1 > 0", org).await,
        ),
    ]);
    assert_eq!(kinds, expect_kinds);
    assert_eq!(total(&r), expect_kinds.values().sum::<u64>());

    // multi-select: OR within status, AND with kind; each facet without its own selection
    let r = s
        .json(
            &t,
            "/v1/search?kind=evidence&status=accepted&status=pending&facet_size=100&limit=1",
        )
        .await;
    let ev = |statuses: &str| {
        format!(
            "SELECT count(*) FROM evidence WHERE organization_id = $1 AND status IN ({statuses})"
        )
    };
    assert_eq!(total(&r), count(&s, &ev("'accepted','pending'"), org).await);
    let statuses: BTreeMap<String, u64> = facet(&r, "status").into_iter().collect();
    for st in ["accepted", "pending", "rejected"] {
        let expected = count(&s, &ev(&format!("'{st}'")), org).await;
        assert_eq!(
            statuses.get(st).copied().unwrap_or(0),
            expected,
            "status {st}"
        );
    }
    let kinds: BTreeMap<String, u64> = facet(&r, "kind").into_iter().collect();
    let risks_accepted = count(
        &s,
        "SELECT count(*) FROM risks WHERE organization_id = $1 AND status = 'accepted'",
        org,
    )
    .await;
    assert_eq!(kinds.get("risk").copied().unwrap_or(0), risks_accepted);
    assert_eq!(kinds.get("evidence").copied().unwrap_or(0), total(&r));

    // framework and certification facets against SQL, within requirements
    let r = s
        .json(&t, "/v1/search?kind=requirement&facet_size=100&limit=1")
        .await;
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT certification_id, count(*) FROM requirements WHERE organization_id = $1 GROUP BY 1",
    )
    .bind(org)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let expect: BTreeMap<String, u64> = rows
        .into_iter()
        .map(|(c, n)| (c.to_string(), n as u64))
        .collect();
    let got: BTreeMap<String, u64> = facet(&r, "certification").into_iter().collect();
    assert_eq!(got, expect);

    // due buckets against SQL (the deadline rule restated independently: a
    // certification is due by its target while in flight and by its expiry once
    // certified; buckets reach their last day)
    let r = s.json(&t, "/v1/search?facet_size=100&limit=1").await;
    let due: BTreeMap<String, u64> = facet(&r, "due").into_iter().collect();
    let overdue = count(
        &s,
        "SELECT (SELECT count(*) FROM requirements WHERE organization_id = $1 AND due_date < current_date \
                   AND status NOT IN ('implemented', 'not_applicable')) \
              + (SELECT count(*) FROM evidence WHERE organization_id = $1 AND expires_on < current_date \
                   AND status <> 'rejected') \
              + (SELECT count(*) FROM certifications WHERE organization_id = $1 \
                   AND ((status IN ('planned', 'in_progress', 'under_audit') AND target_date < current_date) \
                     OR (status = 'certified' AND expires_on < current_date))) \
              + (SELECT count(*) FROM risks WHERE organization_id = $1 AND due_date < current_date \
                   AND status NOT IN ('closed', 'accepted'))",
        org,
    )
    .await;
    assert_eq!(due.get("overdue").copied().unwrap_or(0), overdue);
    let due30 = count(
        &s,
        "SELECT (SELECT count(*) FROM requirements WHERE organization_id = $1 AND due_date >= current_date \
                   AND due_date <= current_date + 30 AND status NOT IN ('implemented', 'not_applicable')) \
              + (SELECT count(*) FROM evidence WHERE organization_id = $1 AND expires_on >= current_date \
                   AND expires_on <= current_date + 30 AND status <> 'rejected') \
              + (SELECT count(*) FROM certifications WHERE organization_id = $1 \
                   AND ((status IN ('planned', 'in_progress', 'under_audit') \
                         AND target_date BETWEEN current_date AND current_date + 30) \
                     OR (status = 'certified' AND expires_on BETWEEN current_date AND current_date + 30))) \
              + (SELECT count(*) FROM risks WHERE organization_id = $1 AND due_date >= current_date \
                   AND due_date <= current_date + 30 AND status NOT IN ('closed', 'accepted'))",
        org,
    )
    .await;
    assert_eq!(due.get("due_30").copied().unwrap_or(0), due30);
    // selecting the bucket gives that many hits
    let r = s.json(&t, "/v1/search?due=overdue&limit=1").await;
    assert_eq!(total(&r), overdue);

    // a date range filter against SQL
    let r = s
        .json(
            &t,
            "/v1/search?kind=evidence&expires_after=2026-01-01&expires_before=2026-07-01&limit=1",
        )
        .await;
    let expected = count(
        &s,
        "SELECT count(*) FROM evidence WHERE organization_id = $1 \
         AND expires_on >= '2026-01-01' AND expires_on < '2026-07-01'",
        org,
    )
    .await;
    assert_eq!(total(&r), expected);
}

#[tokio::test]
async fn pages_never_repeat_or_skip_a_hit_while_writes_happen() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let t = s.officer(&a).await;
    for sort in ["-updated_at", "title", "relevance"] {
        let base = if sort == "relevance" {
            "/v1/search?q=access&facets=none&limit=9&sort=relevance".to_owned()
        } else {
            format!("/v1/search?kind=evidence&facets=none&limit=9&sort={sort}")
        };
        let first = s.json(&t, &base).await;
        // what the pages list: documents, or with a control's requirements
        // collapsed into it (relevance over mixed kinds) one hit per control
        let expected = first["results"].as_u64().unwrap();
        let mut seen: Vec<(String, i64)> = Vec::new();
        let mut page = first;
        let mut round = 0;
        loop {
            for h in hits(&page) {
                seen.push((
                    h["kind"].as_str().unwrap().to_owned(),
                    h["id"].as_i64().unwrap(),
                ));
            }
            // writes between pages: new evidence, and updates that move sort keys
            sqlx::query(
                "UPDATE evidence SET title = title || ' (access reviewed)' \
                 WHERE id IN (SELECT id FROM evidence WHERE organization_id = $1 ORDER BY random() LIMIT 3)",
            )
            .bind(org)
            .execute(&s.pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO evidence (organization_id, requirement_id, title, content, file_name, media_type, sha256, status, collected_on) \
                 SELECT organization_id, requirement_id, 'New access evidence ' || $2, 'access log export', 'new.txt', 'text/plain', \
                        md5(random()::text) || md5(random()::text), 'pending', current_date \
                 FROM evidence WHERE organization_id = $1 LIMIT 1",
            )
            .bind(org)
            .bind(round)
            .execute(&s.pool)
            .await
            .unwrap();
            round += 1;
            let Some(cursor) = page["next_cursor"].as_str() else {
                break;
            };
            page = s.json(&t, &format!("{base}&cursor={cursor}")).await;
        }
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a hit was repeated");
        assert_eq!(
            seen.len() as u64,
            expected,
            "{sort}: hits were skipped or added"
        );
    }
}

#[tokio::test]
async fn scores_of_one_organization_do_not_move_when_another_grows() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let ta = s.officer(&a).await;
    let path = "/v1/search?q=access%20control%20policy&facets=none&limit=10";
    let before = s.json(&ta, path).await;
    let scores = |v: &Value| -> Vec<(String, i64, f64)> {
        hits(v)
            .iter()
            .map(|h| {
                (
                    h["kind"].as_str().unwrap().to_owned(),
                    h["id"].as_i64().unwrap(),
                    h["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    // organization B gets 2,000 documents full of the same words
    let org_b = s.org_id(&b).await;
    sqlx::query(
        "INSERT INTO evidence (organization_id, requirement_id, title, content, file_name, media_type, sha256, status, collected_on) \
         SELECT $1, r.id, 'Access control policy ' || g, repeat('access control policy ', 1 + g % 7), 'p.pdf', \
                'application/pdf', md5(g::text) || md5((g + 1)::text), 'accepted', current_date \
         FROM generate_series(1, 2000) g, LATERAL (SELECT id FROM requirements WHERE organization_id = $1 LIMIT 1) r",
    )
    .bind(org_b)
    .execute(&s.pool)
    .await
    .unwrap();
    s.caught_up().await;
    let tb = s.officer(&b).await;
    assert!(total(&s.json(&tb, path).await) >= 2000);
    let after = s.json(&ta, path).await;
    let (x, y) = (scores(&before), scores(&after));
    assert_eq!(x.len(), y.len());
    for (p, q) in x.iter().zip(&y) {
        assert_eq!((&p.0, p.1), (&q.0, q.1), "order changed");
        assert!((p.2 - q.2).abs() < 1e-4, "score changed: {p:?} -> {q:?}");
    }
}

#[tokio::test]
async fn a_sha256_matches_whole_beyond_what_the_index_holds_of_it() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let q = |q: &str| format!("/v1/search?facets=none&limit=10&q={}", enc(q));
    // alike in their first 40 characters (the index holds 16): two in A, and
    // the first of them in B too
    let same = "5e1f00aa".repeat(5);
    let one = format!("{same}{}", "1".repeat(24));
    let two = format!("{same}{}", "2".repeat(24));
    for (org, sha) in [(&a, &one), (&a, &two), (&b, &one)] {
        sqlx::query(
            "INSERT INTO evidence (organization_id, requirement_id, title, content, file_name, media_type, sha256, status, collected_on) \
             SELECT organization_id, requirement_id, 'Hashed export', 'export', 'export.bin', 'application/octet-stream', $2, 'pending', current_date \
             FROM evidence WHERE organization_id = $1 LIMIT 1",
        )
        .bind(s.org_id(org).await)
        .bind(sha)
        .execute(&s.pool)
        .await
        .unwrap();
    }
    s.caught_up().await;
    let (ta, tb) = (s.officer(&a).await, s.officer(&b).await);
    let shas = |r: &Value| -> Vec<String> {
        let mut v: Vec<String> = hits(r)
            .iter()
            .map(|h| h["sha256"].as_str().unwrap_or_default().to_owned())
            .collect();
        v.sort();
        v
    };
    // a whole hash: itself only, in text or as a field, in any case
    for text in [one.clone(), format!("sha256:{}", one.to_uppercase())] {
        let r = s.json(&ta, &q(&text)).await;
        assert_eq!(shas(&r), [one.as_str()], "{text}: {r}");
    }
    // a prefix longer than what is indexed: both of A's, none of B's
    for text in [
        same.clone(),
        format!("sha256:{same}"),
        same[..20].to_owned(),
    ] {
        let r = s.json(&ta, &q(&text)).await;
        assert_eq!(shas(&r), [one.as_str(), two.as_str()], "{text}: {r}");
    }
    let r = s.json(&ta, &q(&format!("{same}2"))).await;
    assert_eq!(shas(&r), [two.as_str()], "{r}");
    // B finds its own copy, never A's
    let r = s.json(&tb, &q(&format!("sha256:{same}*"))).await;
    assert_eq!(shas(&r), [one.as_str()], "{r}");
    // alike in 40 characters is not the hash
    let r = s.json(&ta, &q(&format!("{same}{}", "3".repeat(24)))).await;
    assert_eq!(total(&r), 0, "{r}");
}

#[tokio::test]
async fn a_request_can_wait_for_its_own_write() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let t = s.officer(&a).await;
    let id: i64 = sqlx::query_scalar(
        "UPDATE requirements SET status = 'failed' WHERE id = \
         (SELECT id FROM requirements WHERE organization_id = $1 AND status <> 'failed' ORDER BY id LIMIT 1) RETURNING id",
    )
    .bind(org)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let position = s.snapshot().await.to_string();
    let r = s
        .json(
            &t,
            &format!(
                "/v1/requirements?status=failed&limit=100&facets=none&min_position={}",
                enc(&position)
            ),
        )
        .await;
    assert!(
        hits(&r).iter().any(|h| h["id"] == id),
        "the write is visible"
    );
    // the same through the header
    let r = s
        .http
        .get(format!("{}/v1/search?q=zzz", s.base))
        .bearer_auth(&t)
        .header("x-certscope-min-position", &position)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let at = r.headers()["x-certscope-position"]
        .to_str()
        .unwrap()
        .to_owned();
    let reached = certscope_indexer::Snapshot::parse(&at).unwrap();
    assert!(reached.covers(&certscope_indexer::Snapshot::parse(&position).unwrap()));

    // a transaction that changes nothing indexed still moves the position; an
    // answer from the unchanged index says it covers the newer position
    let _ = s.json(&t, "/v1/search?q=access").await;
    let _: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let later = s.snapshot().await;
    let r = s
        .http
        .get(format!(
            "{}/v1/search?q=access&min_position={}",
            s.base,
            enc(&later.to_string())
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let at =
        certscope_indexer::Snapshot::parse(r.headers()["x-certscope-position"].to_str().unwrap())
            .unwrap();
    assert!(at.covers(&later), "answered at {at}, asked for {later}");

    // a position the database has not reached was never returned: 400 at
    // once, not a wait
    let far = format!("{}:{}:", u32::MAX, u32::MAX);
    let asked = std::time::Instant::now();
    let r = s
        .get(
            &t,
            &format!("/v1/search?q=access&min_position={}", enc(&far)),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(asked.elapsed() < std::time::Duration::from_secs(2));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_position", "{body}");

    // a real position the index cannot reach in time (the indexer held up on
    // a lock of the change log's horizon): 503 with Retry-After
    let mut hold = s.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE change_log_horizon IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let _: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let ahead = s.snapshot().await.to_string();
    let r = s
        .get(
            &t,
            &format!("/v1/search?q=access&min_position={}", enc(&ahead)),
        )
        .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    hold.rollback().await.unwrap();
}

#[tokio::test]
async fn listings_and_details_serve_what_a_compliance_app_needs() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let t = s.officer(&a).await;
    let r = s.json(&t, "/v1/certifications").await;
    let n = count(
        &s,
        "SELECT count(*) FROM certifications WHERE organization_id = $1",
        org,
    )
    .await;
    assert_eq!(total(&r), n);
    let names: Vec<String> = hits(&r)
        .iter()
        .map(|h| h["title"].as_str().unwrap().to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "certifications sorted by name");

    let r = s
        .json(
            &t,
            "/v1/requirements?status=not_started&sort=due_date&due_after=2000-01-01&limit=50",
        )
        .await;
    let dues: Vec<String> = hits(&r)
        .iter()
        .map(|h| h["due_date"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = dues.clone();
    sorted.sort();
    assert_eq!(dues, sorted);
    assert!(
        hits(&r)
            .iter()
            .all(|h| h["status"] == "not_started" && h["kind"] == "requirement")
    );

    let cert = hits(&s.json(&t, "/v1/certifications").await)[0]["id"]
        .as_i64()
        .unwrap();
    let d = s
        .json(
            &t,
            &format!("/v1/certifications/{cert}?include=requirements,evidence,risks,history"),
        )
        .await;
    assert_eq!(d["id"], cert);
    let reqs = count(
        &s,
        &format!("SELECT count(*) FROM requirements WHERE organization_id = $1 AND certification_id = {cert}"),
        org,
    )
    .await;
    assert_eq!(d["requirements"]["total"].as_u64(), Some(reqs));
    assert!(d["requirements"]["items"].as_array().unwrap().len() <= 50);
    assert_eq!(d["requirements"]["truncated"], reqs > 50);
    assert!(d["history"]["items"].as_array().is_some());

    let req = d["requirements"]["items"][0]["id"].as_i64().unwrap();
    let d = s
        .json(
            &t,
            &format!("/v1/requirements/{req}?include=evidence,risks,history"),
        )
        .await;
    assert_eq!(d["certification_id"], cert);
    assert!(d["statement"].as_str().is_some());
    let risk: i64 = sqlx::query_scalar("SELECT id FROM risks WHERE organization_id = $1 LIMIT 1")
        .bind(org)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let d = s
        .json(
            &t,
            &format!("/v1/risks/{risk}?include=requirements,history"),
        )
        .await;
    assert_eq!(d["id"], risk);
    let ev: i64 = sqlx::query_scalar("SELECT id FROM evidence WHERE organization_id = $1 LIMIT 1")
        .bind(org)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let d = s
        .json(&t, &format!("/v1/evidence/{ev}?include=history"))
        .await;
    assert_eq!(d["id"], ev);
    assert_eq!(d["sha256"].as_str().map(str::len), Some(64));
}
