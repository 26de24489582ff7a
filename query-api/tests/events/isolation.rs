//! Organizations and auditors are kept apart: rooms a caller may not see are
//! refused with a reason, and no event of another organization reaches a
//! client, whatever it subscribed to.

use certscope_query_api::Role;
use certscope_query_api::testing::TestApp;
use serde_json::{Value, json};

use crate::client::{Sse, Ws, rooms};
use crate::{notice, requirement};

/// The two organizations and what the tests subscribe to.
struct Orgs {
    a: String,
    b: String,
    org_a: i64,
    org_b: i64,
    /// A's certifications, in id order.
    certs_a: Vec<i64>,
    cert_b: i64,
    user_b: i64,
}

async fn orgs(s: &TestApp) -> Orgs {
    let (a, b) = s.orgs().await;
    let (org_a, org_b) = (s.org_id(&a).await, s.org_id(&b).await);
    let cert_b: i64 = s.certification_ids(org_b).await[0];
    let certs_a: Vec<i64> = s.certification_ids(org_a).await;
    let user_b: i64 = sqlx::query_scalar("SELECT id FROM users WHERE organization_id = $1 LIMIT 1")
        .bind(org_b)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    Orgs {
        a,
        b,
        org_a,
        org_b,
        certs_a,
        cert_b,
        user_b,
    }
}

/// Every room an officer of A may join.
fn rooms_of_a(o: &Orgs) -> Vec<String> {
    let mut rooms: Vec<String> = vec!["org".into(), "user".into(), "notices".into()];
    rooms.extend(o.certs_a.iter().map(|c| format!("certification:{c}")));
    rooms
}

/// An officer of A on a WebSocket subscribed to every room of A, the
/// certifications' snapshots read.
async fn subscribed_to_all_of_a(s: &TestApp, o: &Orgs, token: &str) -> Ws {
    let mut ws = Ws::open(s, Some(token)).await;
    ws.next().await;
    ws.send(json!({"type": "subscribe", "rooms": rooms_of_a(o)}))
        .await;
    ws.until(|m| m["type"] == "subscribed").await;
    for _ in &o.certs_a {
        assert_eq!(ws.next().await["type"], "snapshot");
    }
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_room_is_named_with_the_reason_and_the_connection_goes_on() {
    let s = TestApp::shared().await;
    let o = orgs(&s).await;
    let token_a = s.officer(&o.a).await;
    let mut ws = subscribed_to_all_of_a(&s, &o, &token_a).await;
    for (room, code) in [
        (format!("org:{}", o.org_b), "forbidden"),
        (format!("certification:{}", o.cert_b), "not_found"),
        (format!("user:{}", o.user_b), "forbidden"),
    ] {
        ws.send(json!({"type": "subscribe", "room": room})).await;
        let e = ws.next().await;
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["code"], code, "{e}");
        assert_eq!(e["room"], room.as_str());
        assert!(e["message"].as_str().unwrap().len() > 10);
        // and the subscribe is still answered: nothing granted
        let ack = ws.next().await;
        assert_eq!(ack["type"], "subscribed", "{ack}");
        assert_eq!(ack["rooms"], json!([]));
        assert_eq!(ack["refused"], json!([room]));
    }
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
    let metrics = s.prometheus().await;
    assert!(metrics.contains("certscope_events_refused_rooms_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_room_of_an_event_stream_arrives_in_the_stream_which_goes_on() {
    let s = TestApp::shared().await;
    let o = orgs(&s).await;
    let token_a = s.officer(&o.a).await;
    let refused_room = format!("certification:{}", o.cert_b);
    let r = Sse::open(&s, &token_a, &rooms(&["org", &refused_room]), None).await;
    assert_eq!(r.status(), 200);
    let mut refused = Sse::reading(r);
    let e = refused.next().await;
    assert_eq!(e.event, "error");
    assert_eq!(e.data["room"], refused_room);
    assert_eq!(refused.next().await.event, "subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_may_join_neither_the_organizations_room_nor_unassigned_certifications() {
    let s = TestApp::shared().await;
    let o = orgs(&s).await;
    let auditor = s.token(&o.a, Role::Auditor, Some(vec![o.certs_a[0]])).await;
    let mut aw = Ws::open(&s, Some(&auditor)).await;
    aw.next().await;
    aw.send(json!({"type": "subscribe", "rooms": ["org"]}))
        .await;
    assert_eq!(aw.next().await["code"], "forbidden");
    assert_eq!(aw.next().await["rooms"], json!([]));
    let other = o.certs_a[1];
    aw.send(json!({"type": "subscribe", "room": format!("certification:{other}")}))
        .await;
    assert_eq!(aw.next().await["code"], "forbidden");
    assert_eq!(aw.next().await["rooms"], json!([]));
}

/// Writes a burst of changes of B, so it needs a service of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_of_another_organization_ever_reaches_a_client() {
    let s = TestApp::start().await;
    let o = orgs(&s).await;
    let token_a = s.officer(&o.a).await;
    let mut ws = subscribed_to_all_of_a(&s, &o, &token_a).await;
    let all_a: Vec<String> = rooms_of_a(&o);
    let all_a: Vec<&str> = all_a.iter().map(String::as_str).collect();
    let mut sse = Sse::connect(&s, &token_a, &rooms(&all_a), None).await;

    // a burst of B's changes of every kind, then one canary change of A's
    let org_b = o.org_b;
    sqlx::query(
        "UPDATE requirements SET status = CASE WHEN status = 'implemented' THEN 'in_progress' ELSE 'implemented' END \
         WHERE organization_id = $1",
    )
    .bind(org_b)
    .execute(&s.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE evidence SET status = 'rejected' WHERE organization_id = $1 AND status = 'pending'",
    )
    .bind(org_b)
    .execute(&s.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE risks SET status = 'treating' WHERE organization_id = $1 AND status = 'open'",
    )
    .bind(org_b)
    .execute(&s.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE certifications SET status = 'under_audit' WHERE organization_id = $1 AND status <> 'under_audit'")
        .bind(org_b)
        .execute(&s.pool)
        .await
        .unwrap();
    notice(&s, Some(org_b), "maintenance for B only").await;
    let (canary, _, _) = requirement(&s, o.org_a, "failed").await;
    s.set_requirement_status(canary, "failed").await;

    let is_canary = |m: &Value| m["type"] == "event" && m["data"]["requirement_id"] == canary;
    let (_, before) = ws.until(is_canary).await;
    for m in &before {
        assert_ne!(m["organization_id"], org_b, "B's event reached A: {m}");
        assert!(!m.to_string().contains("maintenance for B"), "{m}");
    }
    loop {
        let m = sse.next().await;
        assert_ne!(
            m.data["organization_id"], org_b,
            "B's event reached A over SSE: {m:?}"
        );
        if m.data["data"]["requirement_id"] == canary {
            break;
        }
    }
    // and B's events did happen: B's own client replays them
    let token_b = s.officer(&o.b).await;
    let mut wb = Ws::subscribed(&s, &token_b, &["org", "notices"], Some(0)).await;
    let (m, _) = wb
        .until(|m| m["type"] == "event" && m["kind"] == "notice")
        .await;
    assert_eq!(m["organization_id"], org_b);
}
