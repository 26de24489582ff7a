//! Each kind of change reaches its subscribers with what happened: SQL writes
//! to requirements, evidence, certifications and risks, and the daily expiry
//! sweep. Each test writes, so each has a service of its own.

use std::time::{Duration, Instant};

use certscope_indexer::events as event_log;
use certscope_query_api::Role;
use certscope_query_api::testing::{Params, TestApp};
use serde_json::json;

use crate::client::{Sse, Ws, rooms};
use crate::{is_event, requirement};

/// An officer of the first organization watching the room of the
/// certification of its first requirement that has not failed:
/// (token, organization, requirement, its status, certification, room).
struct Watch {
    token: String,
    org: i64,
    req: i64,
    before: String,
    cert: i64,
    room: String,
}

async fn watch(s: &TestApp) -> Watch {
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let (req, cert, before) = requirement(s, org, "failed").await;
    Watch {
        token: s.officer(&a).await,
        org,
        req,
        before,
        cert,
        room: format!("certification:{cert}"),
    }
}

/// Subscribed to the certification's room, its snapshot read.
async fn in_room(s: &TestApp, w: &Watch) -> Ws {
    let mut ws = Ws::subscribed(s, &w.token, &[&w.room], None).await;
    assert_eq!(ws.next().await["type"], "snapshot");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sql_status_change_reaches_websocket_and_sse_subscribers_with_both_statuses() {
    let s = TestApp::start().await;
    let w = watch(&s).await;
    let (org, cert, room) = (w.org, w.cert, w.room.as_str());

    let mut ws = Ws::open(&s, Some(&w.token)).await;
    let welcome = ws.next().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["organization_id"], org);
    ws.send(json!({"type": "subscribe", "room": room})).await;
    assert_eq!(ws.next().await["type"], "subscribed");
    // the certification's current state comes first
    let snapshot = ws.next().await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["room"], room);
    assert_eq!(snapshot["certification"]["id"], cert);
    let total = snapshot["certification"]["requirements"]["total"]
        .as_i64()
        .unwrap();
    assert!(total > 0, "{snapshot}");
    assert!(snapshot["certification"]["completion_pct"].is_number());

    let mut sse = Sse::connect(&s, &w.token, &rooms(&[room]), None).await;
    let sse_snapshot = sse.next().await;
    assert_eq!(sse_snapshot.event, "snapshot");
    assert_eq!(sse_snapshot.data["certification"]["id"], cert);

    let started = Instant::now();
    s.set_requirement_status(w.req, "failed").await;
    let (event, _) = ws.until(is_event("requirement.status_changed")).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(event["data"]["requirement_id"], w.req);
    assert_eq!(event["data"]["previous"], w.before.as_str());
    assert_eq!(event["data"]["status"], "failed");
    assert_eq!(event["organization_id"], org);
    assert_eq!(event["certification_id"], cert);
    assert!(event["id"].as_i64().unwrap() > 0);
    assert!(event["position"].as_str().is_some_and(|p| p.contains(':')));
    assert!(event["occurred_at"].is_string());
    assert!(event["data"]["certification_completion_pct"].is_number());

    let m = sse.next().await;
    assert_eq!(m.event, "requirement.status_changed");
    assert_eq!(m.id, event["id"].as_i64());
    assert_eq!(m.data, event);

    // the event's position is a search position: asking for it never 503s
    let position = event["position"].as_str().unwrap();
    let r = s
        .get_at(
            &w.token,
            certscope_query_api::paths::REQUIREMENTS,
            &Params::new().with("min_position", position),
        )
        .await;
    assert_eq!(r.status(), 200);
}

/// Inserts a pending evidence row under the certification's first requirement.
async fn submit_evidence(s: &TestApp, org: i64, cert: i64) -> i64 {
    let evidence_req: i64 = sqlx::query_scalar(
        "SELECT id FROM requirements WHERE certification_id = $1 ORDER BY id LIMIT 1",
    )
    .bind(cert)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    sqlx::query_scalar(
        "INSERT INTO evidence (organization_id, requirement_id, title, file_name, media_type, sha256, status, collected_on) \
         VALUES ($1, $2, 'Quarterly access review', 'review.pdf', 'application/pdf', repeat('ab', 32), 'pending', current_date) \
         RETURNING id",
    )
    .bind(org)
    .bind(evidence_req)
    .fetch_one(&s.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_and_reviewed_evidence_is_announced_in_order() {
    let s = TestApp::start().await;
    let w = watch(&s).await;
    let mut ws = in_room(&s, &w).await;
    let evidence = submit_evidence(&s, w.org, w.cert).await;
    let (submitted, _) = ws.until(is_event("evidence.submitted")).await;
    assert_eq!(submitted["data"]["evidence_id"], evidence);
    assert_eq!(submitted["data"]["status"], "pending");
    sqlx::query("UPDATE evidence SET status = 'accepted' WHERE id = $1")
        .bind(evidence)
        .execute(&s.pool)
        .await
        .unwrap();
    let (reviewed, _) = ws.until(is_event("evidence.reviewed")).await;
    assert_eq!(reviewed["data"]["previous"], "pending");
    assert_eq!(reviewed["data"]["status"], "accepted");
    assert!(reviewed["id"].as_i64() > submitted["id"].as_i64());
}

/// Expiry is a fact of time, not of a write: the daily sweep announces it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_sweep_announces_an_expired_evidence_once() {
    let s = TestApp::start().await;
    let w = watch(&s).await;
    let mut ws = in_room(&s, &w).await;
    let evidence = submit_evidence(&s, w.org, w.cert).await;
    sqlx::query(
        "UPDATE evidence SET status = 'accepted', collected_on = current_date - 30, \
         expires_on = current_date - 1 WHERE id = $1",
    )
    .bind(evidence)
    .execute(&s.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE event_cursor SET expiry_swept_until = current_date - 2")
        .execute(&s.pool)
        .await
        .unwrap();
    assert!(event_log::sweep_expiry(&s.pool).await.unwrap() >= 1);
    assert_eq!(event_log::sweep_expiry(&s.pool).await.unwrap(), 0);
    let (expired, _) = ws
        .until(|m| m["kind"] == "evidence.expired" && m["data"]["evidence_id"] == evidence)
        .await;
    assert_eq!(expired["certification_id"], w.cert);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certification_status_change_is_announced_with_its_completion() {
    let s = TestApp::start().await;
    let w = watch(&s).await;
    let mut ws = in_room(&s, &w).await;
    let old_status: String = sqlx::query_scalar("SELECT status FROM certifications WHERE id = $1")
        .bind(w.cert)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let new_status = if old_status == "under_audit" {
        "in_progress"
    } else {
        "under_audit"
    };
    sqlx::query("UPDATE certifications SET status = $2 WHERE id = $1")
        .bind(w.cert)
        .bind(new_status)
        .execute(&s.pool)
        .await
        .unwrap();
    let (changed, _) = ws.until(is_event("certification.status_changed")).await;
    assert_eq!(changed["data"]["previous"], old_status.as_str());
    assert_eq!(changed["data"]["status"], new_status);
    assert!(changed["data"]["completion_pct"].is_number());
}

/// Risks: levels before and after, on the organization's room and on the rooms
/// of the certifications the risk is linked to, where an auditor of that
/// certification sees it too (as in search).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_risk_change_reaches_the_organization_its_certifications_and_their_auditors() {
    let s = TestApp::start().await;
    let w = watch(&s).await;
    let (org, cert) = (w.org, w.cert);
    let mut ws = in_room(&s, &w).await;
    let mut org_ws = Ws::subscribed(&s, &w.token, &["org"], None).await;
    let (a, _) = s.orgs().await;
    let auditor = s.token(&a, Role::Auditor, Some(vec![cert])).await;
    let mut audit_ws = Ws::subscribed(&s, &auditor, &[&w.room], None).await;
    assert_eq!(audit_ws.next().await["type"], "snapshot");
    let (risk, il, ii, rl, ri): (i64, i16, i16, i16, i16) = sqlx::query_as(
        "SELECT k.id, k.inherent_likelihood, k.inherent_impact, k.residual_likelihood, k.residual_impact \
         FROM risks k WHERE k.organization_id = $1 AND k.residual_likelihood > 1 \
         AND EXISTS (SELECT 1 FROM risk_requirements rr JOIN requirements r ON r.id = rr.requirement_id \
                     WHERE rr.risk_id = k.id AND r.certification_id = $2) \
         ORDER BY k.id LIMIT 1",
    )
    .bind(org)
    .bind(cert)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE risks SET residual_likelihood = residual_likelihood - 1 WHERE id = $1")
        .bind(risk)
        .execute(&s.pool)
        .await
        .unwrap();
    let (r, _) = org_ws.until(is_event("risk.changed")).await;
    assert_eq!(r["data"]["risk_id"], risk);
    assert_eq!(r["data"]["previous"]["residual"]["likelihood"], rl);
    assert_eq!(r["data"]["current"]["residual"]["likelihood"], rl - 1);
    assert_eq!(r["data"]["current"]["residual"]["score"], (rl - 1) * ri);
    assert_eq!(r["data"]["current"]["inherent"]["score"], il * ii);
    // the risk's other certifications are not named (an auditor may not see them)
    assert!(r["data"].get("certification_ids").is_none(), "{r}");
    let (in_room, _) = ws.until(is_event("risk.changed")).await;
    assert_eq!(in_room, r);
    let (audited, _) = audit_ws.until(is_event("risk.changed")).await;
    assert_eq!(audited, r);
}

/// Subscribers arriving at once share certification snapshots instead of each
/// taking a database connection (200 at once exhausted the pool in the soak),
/// and a snapshot is only shared when its read began after the subscriber's
/// position: one subscribing after a change gets the changed state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_share_certification_snapshots_but_never_an_older_one() {
    use std::sync::atomic::Ordering::Relaxed;
    let s = TestApp::start().await;
    let w = watch(&s).await;
    let metrics = &s.state.events.metrics;
    let counts = || {
        (
            metrics.snapshots_read.load(Relaxed),
            metrics.snapshots_shared.load(Relaxed),
        )
    };

    // twelve subscribers at once, with no change among them
    let subscribers = (0..12).map(|_| async {
        let mut ws = Ws::subscribed(&s, &w.token, &[&w.room], None).await;
        let snapshot = ws.next().await;
        assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
        (ws, snapshot["certification"].clone())
    });
    let opened = futures_util::future::join_all(subscribers).await;
    let (read, shared) = counts();
    assert_eq!(read + shared, 12, "every subscriber got a snapshot");
    assert!(
        read <= 2,
        "{read} reads for twelve subscribers at one position"
    );
    let first = opened[0].1.clone();
    assert!(opened.iter().all(|(_, c)| *c == first), "one state for all");
    let failed = |c: &serde_json::Value| c["requirements"]["failed"].as_i64().unwrap();

    // a change, heard by a subscriber: the hub's position has passed it
    let (mut ws, _) = opened.into_iter().next().unwrap();
    s.set_requirement_status(w.req, "failed").await;
    let (event, _) = ws.until(is_event("requirement.status_changed")).await;
    assert_eq!(event["data"]["requirement_id"], w.req);

    // a subscriber after it gets a snapshot read after it, with the change
    let mut late = Ws::subscribed(&s, &w.token, &[&w.room], None).await;
    let snapshot = late.next().await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(
        failed(&snapshot["certification"]),
        failed(&first) + 1,
        "the late subscriber sees the change: {snapshot}"
    );
    assert_eq!(counts().0, read + 1, "it was read, not shared");
}
