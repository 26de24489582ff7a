//! Metrics and the board PDF over real HTTP against a seeded database: every
//! aggregate against an independent SQL computation (tables and status
//! history, never the report code path), edge cases, the PDF parsed back,
//! tenancy and auditor scope, bad input, ETag/304, CSV and coalescing.

#[path = "../../reports/tests/support/pdf_text.rs"]
mod pdf_text;

use std::collections::{BTreeMap, HashMap};

use certscope_query_api::Role;
use certscope_query_api::testing::TestApp;
use chrono::{Days, NaiveDate};
use serde_json::Value;
use sqlx::PgPool;

/// The text of each page of a PDF, parsed back with lopdf.
fn page_texts(pdf: &[u8]) -> Vec<String> {
    pdf_text::Pdf::load(pdf)
        .expect("a valid PDF")
        .page_texts()
        .expect("text")
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn pct(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn u(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// A new organization `(slug, name)` with one officer `(email, name)` and one
/// certification in progress `(name, started days ago, target in days)` of
/// the first framework; returns the organization's and certification's ids.
async fn programme(
    pool: &PgPool,
    (slug, name): (&str, &str),
    (email, officer): (&str, &str),
    (certification, started, target): (&str, i32, i32),
) -> (i64, i64) {
    let org: i64 =
        sqlx::query_scalar("INSERT INTO organizations (slug, name) VALUES ($1, $2) RETURNING id")
            .bind(slug)
            .bind(name)
            .fetch_one(pool)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO users (organization_id, email, display_name, role) VALUES ($1, $2, $3, 'officer')",
    )
    .bind(org)
    .bind(email)
    .bind(officer)
    .execute(pool)
    .await
    .unwrap();
    let cert: i64 = sqlx::query_scalar(
        "INSERT INTO certifications (organization_id, framework_id, name, status, started_on, target_date) \
         SELECT $1, min(id), $2, 'in_progress', current_date - $3, current_date + $4 \
           FROM frameworks RETURNING id",
    )
    .bind(org)
    .bind(certification)
    .bind(started)
    .bind(target)
    .fetch_one(pool)
    .await
    .unwrap();
    (org, cert)
}

/// (implemented, applicable, failed) of `org`'s requirements at the end of
/// `day`, from the status history alone.
async fn history_counts(
    pool: &PgPool,
    org: i64,
    day: NaiveDate,
    cert: Option<i64>,
) -> (i64, i64, i64) {
    sqlx::query_as(
        "WITH last AS ( \
           SELECT DISTINCT ON (h.entity_id) h.entity_id, h.to_status \
             FROM status_history h JOIN requirements r ON r.id = h.entity_id \
            WHERE h.organization_id = $1 AND h.entity = 'requirement' \
              AND h.changed_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC' \
              AND ($3::bigint IS NULL OR r.certification_id = $3) \
            ORDER BY h.entity_id, h.changed_at DESC, h.id DESC) \
         SELECT count(*) FILTER (WHERE to_status = 'implemented'), \
                count(*) FILTER (WHERE to_status <> 'not_applicable'), \
                count(*) FILTER (WHERE to_status = 'failed') FROM last",
    )
    .bind(org)
    .bind(day)
    .bind(cert)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A sentence states `value` (the JSON field a source points at) the way the
/// JSON holds it; a zero may read "no"/"none"/"nothing", a negative day count
/// as days past.
fn states(text: &str, value: &Value) -> bool {
    let printed = match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => format!("{:.1}", n.as_f64().unwrap()),
        Value::String(s) => s.clone(),
        _ => return true,
    };
    let printed = printed.trim_start_matches('-');
    text.contains(printed)
        || (printed == "0"
            && ["No ", "None", "Nothing", "no "]
                .iter()
                .any(|w| text.contains(w)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_summary_sentence_states_fields_the_other_sections_serve() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let summary = s.json(&token, "/v1/metrics/summary").await;
    let body = &summary["summary"];
    let status = body["status"].as_str().unwrap();
    assert!(
        ["on_track", "at_risk", "off_track", "no_data"].contains(&status),
        "{status}"
    );
    assert_eq!(
        status == "on_track",
        body["reasons"].as_array().unwrap().is_empty()
    );
    let messages = body["messages"].as_array().unwrap();
    assert!((3..=5).contains(&messages.len()), "{messages:?}");
    let mut sections: HashMap<String, Value> = HashMap::new();
    let mut checked = 0;
    for part in ["reasons", "messages", "decisions"] {
        for m in body[part].as_array().unwrap() {
            let text = m["text"].as_str().unwrap();
            for pointer in m["sources"].as_array().unwrap() {
                let pointer = pointer.as_str().unwrap();
                let name = pointer.split('/').nth(1).unwrap().to_owned();
                if !sections.contains_key(&name) {
                    let answer = if name == "meta" {
                        summary.clone()
                    } else {
                        s.json(&token, &format!("/v1/metrics/{name}")).await
                    };
                    sections.insert(name.clone(), answer);
                }
                let value = sections[&name]
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{pointer} is not in /v1/metrics/{name}"));
                assert!(
                    states(text, value),
                    "{text:?} does not state {pointer} = {value}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} sources");
    // the decisions name every risk above appetite, and only those
    let heatmap = s.json(&token, "/v1/metrics/heatmap").await;
    let mut above: Vec<i64> = heatmap["heatmap"]["above_appetite"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| u(&r["id"]))
        .collect();
    let mut decided: Vec<i64> = body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["risk_id"].as_i64())
        .collect();
    above.sort_unstable();
    decided.sort_unstable();
    assert_eq!(above, decided);
    // the PDF's first page prints the same status
    let pdf = s
        .get(&token, "/v1/reports/board.pdf")
        .await
        .bytes()
        .await
        .unwrap();
    let pages = page_texts(&pdf);
    let first = pdf_text::normalize_space(&pages[0]);
    // every page drawn, none blank; the images stay under target/ for review
    let review = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/board-review");
    let images = pdf_text::rasterize(&format!("seeded-{a}"), &pdf, &review);
    assert_eq!(images.len(), pages.len());
    for (i, page) in images.iter().enumerate() {
        assert!(!pdf_text::is_blank(page), "page {} is blank", i + 1);
    }
    let label = match status {
        "on_track" => "On track",
        "at_risk" => "At risk",
        "off_track" => "Off track",
        _ => "No data",
    };
    assert!(
        first.contains(&format!("Overall status: {label}")),
        "{first}"
    );
    for m in messages {
        let text = pdf_text::normalize_space(m["text"].as_str().unwrap());
        assert!(first.contains(&text), "page 1 lacks {text}");
    }
    // CSV: the status row first, then one row per sentence
    let csv = s
        .get(&token, "/v1/metrics/summary?format=csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("part,key,text,risk_id,certification_id\r\nstatus,"));

    // the comparison date of the previous pack, as asked
    let previous = today() - Days::new(10);
    let kpis = s
        .json(
            &token,
            &format!("/v1/metrics/kpis?previous_as_of={previous}"),
        )
        .await;
    for k in kpis["kpis"].as_array().unwrap() {
        assert_eq!(k["previous_as_of"], previous.to_string());
        if k["unit"] == "" {
            assert!(k["value"].is_u64() && k["previous"].is_u64(), "{k}");
        }
    }
    let heat = s
        .json(
            &token,
            &format!("/v1/metrics/heatmap?previous_as_of={previous}"),
        )
        .await;
    assert_eq!(heat["heatmap"]["previous_as_of"], previous.to_string());

    // CSV holds counts as integers too
    let csv = s
        .get(&token, "/v1/metrics/kpis?format=csv")
        .await
        .text()
        .await
        .unwrap();
    let mut rows = csv.lines().map(csv_fields);
    let header = rows.next().unwrap();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (unit, value, target) = (col("unit"), col("value"), col("target"));
    let mut counts = 0;
    for row in rows.filter(|r| r[unit].is_empty()) {
        for i in [value, target] {
            assert!(row[i].parse::<u64>().is_ok(), "{row:?}");
        }
        counts += 1;
    }
    assert!(counts >= 5, "{csv}");
}

/// The fields of one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aggregate_matches_independent_sql() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let today = today();

    // posture: overall and per family from the requirements table
    let posture = s.json(&token, "/v1/metrics/posture").await;
    let p = &posture["posture"];
    let (total, implemented, failed, na, evidenced, fresh): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE status = 'implemented'), \
                    count(*) FILTER (WHERE status = 'failed'), \
                    count(*) FILTER (WHERE status = 'not_applicable'), \
                    count(*) FILTER (WHERE status <> 'not_applicable' AND ev.newest IS NOT NULL), \
                    count(*) FILTER (WHERE status <> 'not_applicable' AND ev.newest >= $2::date - 180) \
               FROM requirements r \
               LEFT JOIN LATERAL (SELECT max(collected_on) AS newest FROM evidence e \
                                   WHERE e.requirement_id = r.id AND e.status = 'accepted' \
                                     AND e.collected_on <= $2 \
                                     AND (e.expires_on IS NULL OR e.expires_on >= $2)) ev ON true \
              WHERE r.organization_id = $1",
        )
        .bind(org)
        .bind(today)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let overall = &p["overall"];
    assert_eq!(u(&overall["counts"]["total"]), total);
    assert_eq!(u(&overall["counts"]["implemented"]), implemented);
    assert_eq!(u(&overall["counts"]["failed"]), failed);
    assert_eq!(u(&overall["counts"]["not_applicable"]), na);
    assert_eq!(f(&overall["readiness_pct"]), pct(implemented, total - na));
    assert_eq!(u(&overall["evidenced"]), evidenced);
    assert_eq!(
        f(&overall["evidence_coverage_pct"]),
        pct(evidenced, total - na)
    );
    assert_eq!(u(&overall["fresh"]), fresh);
    assert!(
        total > 100 && implemented > 0 && evidenced > 0,
        "seed too thin"
    );

    let families: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT f.slug || '/' || c.family_key, count(*), count(*) FILTER (WHERE r.status = 'implemented') \
           FROM requirements r JOIN controls c ON c.id = r.control_id JOIN frameworks f ON f.id = c.framework_id \
          WHERE r.organization_id = $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(org)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let served: HashMap<&str, &Value> = p["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r))
        .collect();
    assert_eq!(served.len(), families.len());
    for (key, n, done) in &families {
        let row = served[key.as_str()];
        assert_eq!(u(&row["counts"]["total"]), *n, "{key}");
        assert_eq!(u(&row["counts"]["implemented"]), *done, "{key}");
    }

    // matrix: family × status of each certification
    let matrix = s.json(&token, "/v1/metrics/matrix").await;
    let cells: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT r.certification_id, c.family_key, r.status, count(*) FROM requirements r \
           JOIN controls c ON c.id = r.control_id WHERE r.organization_id = $1 GROUP BY 1, 2, 3",
    )
    .bind(org)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let mut served = BTreeMap::new();
    for m in matrix["matrix"].as_array().unwrap() {
        for row in m["families"].as_array().unwrap() {
            for status in [
                "implemented",
                "in_progress",
                "not_started",
                "failed",
                "not_applicable",
            ] {
                let n = u(&row["counts"][status]);
                if n > 0 {
                    served.insert(
                        (
                            u(&m["certification_id"]),
                            row["family_key"].as_str().unwrap().to_owned(),
                            status.to_owned(),
                        ),
                        n,
                    );
                }
            }
        }
    }
    let expected: BTreeMap<_, _> = cells
        .into_iter()
        .map(|(c, k, st, n)| ((c, k, st), n))
        .collect();
    assert_eq!(served, expected);

    // heat-maps: every cell's risk ids, inherent and residual
    let heat = s.json(&token, "/v1/metrics/heatmap").await;
    for (grid, l, i) in [
        ("inherent", "inherent_likelihood", "inherent_impact"),
        ("residual", "residual_likelihood", "residual_impact"),
    ] {
        let rows: Vec<(i16, i16, Vec<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {l}, {i}, array_agg(id ORDER BY id) FROM risks \
              WHERE organization_id = $1 AND status <> 'closed' GROUP BY 1, 2"
        )))
        .bind(org)
        .fetch_all(&s.pool)
        .await
        .unwrap();
        let expected: HashMap<(i64, i64), Vec<i64>> = rows
            .into_iter()
            .map(|(l, i, ids)| ((i64::from(l), i64::from(i)), ids))
            .collect();
        let cells = heat["heatmap"][grid]["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 25);
        for c in cells {
            let ids: Vec<i64> = c["risk_ids"].as_array().unwrap().iter().map(u).collect();
            let want = expected
                .get(&(u(&c["likelihood"]), u(&c["impact"])))
                .cloned()
                .unwrap_or_default();
            assert_eq!(ids, want, "{grid} cell {c}");
            assert_eq!(u(&c["count"]), want.len() as i64);
        }
    }
    let above: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM risks WHERE organization_id = $1 AND status <> 'closed' \
            AND residual_likelihood * residual_impact > 12",
    )
    .bind(org)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert_eq!(
        heat["heatmap"]["above_appetite"].as_array().unwrap().len() as i64,
        above
    );

    // trends: each point's implemented count from the history
    let trends = s.json(&token, "/v1/metrics/trends?interval=month").await;
    let points = trends["trends"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 13);
    for point in points {
        let day: NaiveDate = point["date"].as_str().unwrap().parse().unwrap();
        let (done, applicable, _) = history_counts(&s.pool, org, day, None).await;
        assert_eq!(u(&point["implemented"]), done, "{day}");
        assert_eq!(u(&point["applicable"]), applicable, "{day}");
    }
    let last = points.last().unwrap();
    let overdue_now: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM requirements WHERE organization_id = $1 AND due_date < $2 \
            AND status NOT IN ('implemented', 'not_applicable')",
    )
    .bind(org)
    .bind(today)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert_eq!(u(&last["overdue_requirements"]), overdue_now);
    let open_by_level: Vec<(String, i64)> = sqlx::query_as(
        "SELECT CASE WHEN s <= 4 THEN 'low' WHEN s <= 9 THEN 'medium' WHEN s <= 14 THEN 'high' ELSE 'critical' END, count(*) \
           FROM (SELECT residual_likelihood * residual_impact AS s FROM risks \
                  WHERE organization_id = $1 AND status IN ('open', 'treating')) x GROUP BY 1",
    )
    .bind(org)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    for (level, n) in &open_by_level {
        assert_eq!(u(&last["open_risks"][level]), *n, "{level}");
    }

    // overdue lists: counts by kind
    let overdue = s.json(&token, "/v1/metrics/overdue?limit=1000").await;
    let o = &overdue["overdue"]["overdue"];
    assert_eq!(u(&o["by_kind"]["requirement"]), overdue_now);
    let certs_late: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM certifications WHERE organization_id = $1 AND \
           ((status IN ('planned', 'in_progress', 'under_audit') AND target_date < $2) \
            OR (status = 'certified' AND expires_on < $2))",
    )
    .bind(org)
    .bind(today)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert_eq!(u(&o["by_kind"]["certification"]), certs_late);
    for item in o["items"].as_array().unwrap() {
        assert!(u(&item["days"]) < 0, "{item}");
    }

    // KPIs: the same numbers as the sections, previous values from history
    let kpis = s.json(&token, "/v1/metrics/kpis").await;
    let kpi: HashMap<&str, &Value> = kpis["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["key"].as_str().unwrap(), k))
        .collect();
    assert!((6..=10).contains(&kpi.len()));
    assert_eq!(f(&kpi["readiness"]["value"]), pct(implemented, total - na));
    assert_eq!(f(&kpi["failed_requirements"]["value"]), failed as f64);
    assert_eq!(f(&kpi["overdue_requirements"]["value"]), overdue_now as f64);
    assert_eq!(f(&kpi["risks_above_appetite"]["value"]), above as f64);
    let prev: NaiveDate = kpi["readiness"]["previous_as_of"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (pd, pa, pf) = history_counts(&s.pool, org, prev, None).await;
    assert_eq!(f(&kpi["readiness"]["previous"]), pct(pd, pa));
    assert_eq!(f(&kpi["failed_requirements"]["previous"]), pf as f64);

    // forecast: velocity refitted here from weekly history samples
    let forecast = s.json(&token, "/v1/metrics/forecast").await;
    let certs = forecast["forecast"]["certifications"].as_array().unwrap();
    assert!(!certs.is_empty());
    for c in certs {
        let id = u(&c["certification_id"]);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for k in 0..=12i64 {
            let day = today - Days::new((84 - 7 * k) as u64);
            xs.push((7 * k) as f64);
            ys.push(history_counts(&s.pool, org, day, Some(id)).await.0 as f64);
        }
        let (mx, my) = (xs.iter().sum::<f64>() / 13.0, ys.iter().sum::<f64>() / 13.0);
        let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
        let per_week = ((sxy / sxx) * 7.0 * 10.0).round() / 10.0;
        assert_eq!(f(&c["velocity_per_week"]), per_week, "{c}");
        let (done, applicable, _) = history_counts(&s.pool, org, today, Some(id)).await;
        assert_eq!(u(&c["done"]), done);
        assert_eq!(u(&c["total"]), applicable);
        let target: NaiveDate = c["target_date"].as_str().unwrap().parse().unwrap();
        match (
            c["outlook"].as_str().unwrap(),
            c["projected_completion"].as_str(),
        ) {
            ("on_track", Some(p)) => assert!(p.parse::<NaiveDate>().unwrap() <= target),
            ("at_risk", Some(p)) => assert!(p.parse::<NaiveDate>().unwrap() > target),
            ("stalled", None) => assert!(per_week <= 0.0),
            ("complete", None) => assert_eq!(done, applicable),
            other => panic!("inconsistent forecast {other:?}"),
        }
    }
    let backtest = &forecast["forecast"]["backtest"];
    assert!(u(&backtest["certifications"]) >= 1, "{backtest}");
    for item in backtest["items"].as_array().unwrap() {
        let cutoff: NaiveDate = item["cutoff"].as_str().unwrap().parse().unwrap();
        assert_eq!(cutoff, today - Days::new(56));
        let (done, _, _) =
            history_counts(&s.pool, org, today, Some(u(&item["certification_id"]))).await;
        assert_eq!(u(&item["actual_done"]), done);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_cases_and_past_dates() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org_a = s.org_id(&a).await;

    // a new organization: non-Latin name, no risks, a certification with no requirements
    let name = "Ελληνική Ασφάλεια АО «Щит» Łódź 東京";
    let (_, cert) = programme(
        &s.pool,
        ("unicode-org", name),
        ("anna@unicode.example", "Άννα Παπαδοπούλου"),
        ("Программа соответствия", 30, 60),
    )
    .await;
    s.caught_up().await;
    let token = s.officer("unicode-org").await;
    let heat = s.json(&token, "/v1/metrics/heatmap").await;
    assert_eq!(u(&heat["heatmap"]["risks"]), 0);
    assert!(
        heat["heatmap"]["residual"]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| u(&c["count"]) == 0)
    );
    let posture = s.json(&token, "/v1/metrics/posture").await;
    let certs = posture["posture"]["certifications"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["key"], cert.to_string());
    assert_eq!(u(&certs[0]["counts"]["total"]), 0);
    assert_eq!(f(&certs[0]["readiness_pct"]), 0.0);
    assert_eq!(posture["meta"]["organization"]["name"], name);
    for section in ["matrix", "trends", "forecast", "overdue", "kpis"] {
        s.json(&token, &format!("/v1/metrics/{section}")).await;
    }
    let pdf = s.get(&token, "/v1/reports/board.pdf").await;
    assert_eq!(pdf.status(), 200);
    let pages = page_texts(&pdf.bytes().await.unwrap());
    assert!(
        pages.join("\n").contains(name),
        "organization name not in the PDF text"
    );

    // an empty period long before any data: zeros, one point per interval
    let old = s
        .json(&token, "/v1/metrics/trends?from=2001-01-01&to=2001-03-31")
        .await;
    let points = old["trends"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    assert!(points.iter().all(|p| u(&p["applicable"]) == 0));
    let single = s
        .json(
            &token,
            &format!("/v1/metrics/trends?from={0}&to={0}", today()),
        )
        .await;
    assert_eq!(single["trends"]["points"].as_array().unwrap().len(), 1);

    // a 5×5 cell with hundreds of risks
    let officer = s.officer(&a).await;
    sqlx::query(
        "INSERT INTO risks (organization_id, title, category, inherent_likelihood, inherent_impact, \
                            residual_likelihood, residual_impact, treatment, status) \
         SELECT $1, 'Ransomware wave ' || g, 'security', 5, 5, 5, 5, 'mitigate', 'open' \
           FROM generate_series(1, 300) g",
    )
    .bind(org_a)
    .execute(&s.pool)
    .await
    .unwrap();
    s.caught_up().await;
    let heat = s.json(&officer, "/v1/metrics/heatmap").await;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM risks WHERE organization_id = $1 AND status <> 'closed' \
            AND residual_likelihood = 5 AND residual_impact = 5",
    )
    .bind(org_a)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let cell = heat["heatmap"]["residual"]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| u(&c["likelihood"]) == 5 && u(&c["impact"]) == 5)
        .unwrap()
        .clone();
    assert!(n >= 300);
    assert_eq!(u(&cell["count"]), n);
    assert_eq!(cell["risk_ids"].as_array().unwrap().len() as i64, n);
    assert_eq!(s.get(&officer, "/v1/reports/board.pdf").await.status(), 200);

    // as of yesterday: today's status changes are not in it, and the numbers are that day's
    let changed: Vec<i64> = sqlx::query_scalar(
        "UPDATE requirements SET status = 'implemented' WHERE id IN \
           (SELECT id FROM requirements WHERE organization_id = $1 AND status = 'in_progress' LIMIT 25) \
         RETURNING id",
    )
    .bind(org_a)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    assert_eq!(changed.len(), 25);
    s.caught_up().await;
    let yesterday = today() - Days::new(1);
    let then = s
        .json(&officer, &format!("/v1/metrics/posture?as_of={yesterday}"))
        .await;
    let now = s.json(&officer, "/v1/metrics/posture").await;
    let (done_then, applicable_then, _) = history_counts(&s.pool, org_a, yesterday, None).await;
    assert_eq!(
        u(&then["posture"]["overall"]["counts"]["implemented"]),
        done_then
    );
    assert_eq!(
        f(&then["posture"]["overall"]["readiness_pct"]),
        pct(done_then, applicable_then)
    );
    assert_eq!(
        u(&now["posture"]["overall"]["counts"]["implemented"]),
        done_then + 25
    );
    assert_eq!(then["meta"]["as_of"], yesterday.to_string());
}

/// The KPI values of `kpis` formatted as the PDF prints them.
fn kpi_strings(kpis: &Value) -> Vec<String> {
    kpis["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| match (&k["value"], k["unit"].as_str().unwrap()) {
            (Value::Null, _) => "no data".to_owned(),
            (v, "%") => format!("{:.1}%", f(v)),
            // a count is an integer in JSON (u() refuses 27.0) and in the PDF
            (v, _) => u(v).to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_pdf_parses_back_with_the_json_numbers() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let name: String = sqlx::query_scalar("SELECT name FROM organizations WHERE slug = $1")
        .bind(&a)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let params = "interval=week&appetite=9";
    let kpis = s.json(&token, &format!("/v1/metrics/kpis?{params}")).await;
    let posture = s
        .json(&token, &format!("/v1/metrics/posture?{params}"))
        .await;
    for (size, w, h) in [("a4", 595.0, 842.0), ("letter", 612.0, 792.0)] {
        let r = s
            .get(
                &token,
                &format!("/v1/reports/board.pdf?{params}&size={size}"),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/pdf");
        let bytes = r.bytes().await.unwrap();
        let doc = lopdf::Document::load_mem(&bytes).expect("a valid PDF");
        let pages = doc.get_pages();
        assert!(pages.len() >= 4, "{size}: {} pages", pages.len());
        for (_, id) in pages.iter() {
            let page = doc.get_dictionary(*id).unwrap();
            let mb = page.get(b"MediaBox").unwrap().as_array().unwrap();
            let num = |o: &lopdf::Object| {
                o.as_float()
                    .map(f64::from)
                    .or_else(|_| o.as_i64().map(|v| v as f64))
                    .unwrap()
            };
            assert!(
                (num(&mb[2]) - w).abs() < 1.0 && (num(&mb[3]) - h).abs() < 1.0,
                "{size} media box"
            );
        }
        let embedded = doc
            .objects
            .values()
            .any(|o| o.as_dict().is_ok_and(|d| d.has(b"FontFile2")));
        assert!(embedded, "{size}: no embedded TrueType font");
        let text = page_texts(&bytes);
        assert_eq!(text.len(), pages.len());
        let all = text.join("\n");
        assert!(all.contains(&name), "{size}: organization name missing");
        for value in kpi_strings(&kpis) {
            assert!(all.contains(&value), "{size}: KPI value {value} missing");
        }
        let readiness = format!("{:.1}%", f(&posture["posture"]["overall"]["readiness_pct"]));
        assert!(
            all.contains(&readiness),
            "{size}: readiness {readiness} missing"
        );
        let position = posture["meta"]["position"].as_str().unwrap();
        assert!(
            all.contains(position),
            "{size}: data position {position} missing from {all}"
        );
        assert!(
            text.last()
                .unwrap()
                .contains(&format!("Page {0} of {0}", pages.len()))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_scope_and_http_behaviour() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let org_a = s.org_id(&a).await;
    let org_b = s.org_id(&b).await;
    let canary = "xylophonewombat";
    sqlx::query("UPDATE certifications SET name = name || ' ' || $2 WHERE organization_id = $1")
        .bind(org_b)
        .bind(canary)
        .execute(&s.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE risks SET title = title || ' ' || $2 WHERE organization_id = $1")
        .bind(org_b)
        .bind(canary)
        .execute(&s.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE users SET display_name = display_name || ' ' || $2 WHERE organization_id = $1",
    )
    .bind(org_b)
    .bind(canary)
    .execute(&s.pool)
    .await
    .unwrap();
    s.caught_up().await;
    let token = s.officer(&a).await;
    let b_certs: Vec<i64> = s.certification_ids(org_b).await;
    let b_risks: Vec<i64> = sqlx::query_scalar("SELECT id FROM risks WHERE organization_id = $1")
        .bind(org_b)
        .fetch_all(&s.pool)
        .await
        .unwrap();
    for section in [
        "summary", "posture", "heatmap", "matrix", "trends", "forecast", "overdue", "kpis",
    ] {
        for format in ["json", "csv"] {
            let r = s
                .get(
                    &token,
                    &format!("/v1/metrics/{section}?format={format}&limit=1000"),
                )
                .await;
            assert_eq!(r.status(), 200);
            let body = r.text().await.unwrap();
            assert!(
                !body.contains(canary),
                "{section} {format} leaks organization B"
            );
        }
    }
    let heat = s.json(&token, "/v1/metrics/heatmap").await;
    for c in heat["heatmap"]["inherent"]["cells"].as_array().unwrap() {
        for id in c["risk_ids"].as_array().unwrap() {
            assert!(!b_risks.contains(&u(id)));
        }
    }
    let pdf = s
        .get(&token, "/v1/reports/board.pdf")
        .await
        .bytes()
        .await
        .unwrap();
    let text = page_texts(&pdf).join("\n");
    assert!(!text.contains(canary), "the PDF leaks organization B");
    // B's certification through A's token: not found, like any id A cannot see
    let r = s
        .get(
            &token,
            &format!("/v1/metrics/posture?certification={}", b_certs[0]),
        )
        .await;
    assert_eq!(r.status(), 404);

    // an auditor sees only its certifications
    let a_certs: Vec<i64> = s.certification_ids(org_a).await;
    let mine = a_certs[0];
    let auditor = s.token(&a, Role::Auditor, Some(vec![mine])).await;
    let posture = s.json(&auditor, "/v1/metrics/posture").await;
    let listed: Vec<&str> = posture["posture"]["certifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![mine.to_string().as_str()]);
    assert_eq!(posture["meta"]["restricted"], true);
    let (done, applicable, _) = history_counts(&s.pool, org_a, today(), Some(mine)).await;
    assert_eq!(
        u(&posture["posture"]["overall"]["counts"]["implemented"]),
        done
    );
    assert_eq!(
        u(&posture["posture"]["overall"]["counts"]["total"])
            - u(&posture["posture"]["overall"]["counts"]["not_applicable"]),
        applicable
    );
    let overdue = s.json(&auditor, "/v1/metrics/overdue?limit=1000").await;
    for list in ["overdue", "upcoming"] {
        for item in overdue["overdue"][list]["items"].as_array().unwrap() {
            assert_eq!(u(&item["certification_id"]), mine, "{item}");
        }
    }
    let linked: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT rr.risk_id FROM risk_requirements rr JOIN requirements r ON r.id = rr.requirement_id \
          WHERE r.certification_id = $1",
    )
    .bind(mine)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let heat = s.json(&auditor, "/v1/metrics/heatmap").await;
    for c in heat["heatmap"]["residual"]["cells"].as_array().unwrap() {
        for id in c["risk_ids"].as_array().unwrap() {
            assert!(linked.contains(&u(id)), "auditor sees unlinked risk {id}");
        }
    }
    let r = s
        .get(
            &auditor,
            &format!("/v1/metrics/posture?certification={}", a_certs[1]),
        )
        .await;
    assert_eq!(r.status(), 403);
    let pdf = s.get(&auditor, "/v1/reports/board.pdf").await;
    assert_eq!(pdf.status(), 200);

    // bad input: precise 4xx
    let cases = [
        (
            "/v1/metrics/posture?framework=no-such-framework",
            400,
            "unknown_framework",
        ),
        (
            "/v1/metrics/trends?from=2026-05-01&to=2026-01-01",
            400,
            "inverted_period",
        ),
        ("/v1/metrics/kpis?as_of=2999-01-01", 400, "future_as_of"),
        (
            "/v1/metrics/summary?as_of=2026-01-31&previous_as_of=2026-01-31",
            400,
            "bad_parameter",
        ),
        (
            "/v1/metrics/kpis?previous_as_of=last-month",
            400,
            "bad_parameter",
        ),
        ("/v1/metrics/posture?format=xml", 400, "unsupported_format"),
        ("/v1/metrics/posture?colour=blue", 400, "unknown_parameter"),
        ("/v1/metrics/trends?interval=day", 400, "bad_parameter"),
        ("/v1/metrics/heatmap?appetite=0", 400, "bad_parameter"),
        ("/v1/metrics/kpis?target.bogus=3", 400, "unknown_kpi"),
        (
            "/v1/metrics/kpis?target.readiness=50&warning.readiness=80",
            400,
            "bad_parameter",
        ),
        ("/v1/metrics/posture?as_of=yesterday", 400, "bad_parameter"),
        ("/v1/metrics/posture?certification=-4", 400, "bad_parameter"),
        ("/v1/reports/board.pdf?size=a3", 400, "bad_parameter"),
        ("/v1/metrics/bogus", 404, ""),
    ];
    for (path, status, code) in cases {
        let r = s.get(&token, path).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        if !code.is_empty() {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], code, "{path}: {v}");
        }
    }
    let r = with_header(
        &s,
        &token,
        "/v1/metrics/posture",
        "accept",
        "application/xml",
    )
    .await;
    assert_eq!(r.status(), 406);
    let r = s
        .http
        .get(format!("{}/v1/metrics/posture", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // CSV by Accept header, the same numbers as JSON
    let r = with_header(&s, &token, "/v1/metrics/posture", "accept", "text/csv").await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let json = s.json(&token, "/v1/metrics/posture").await;
    let overall = csv.lines().nth(1).unwrap();
    let o = &json["posture"]["overall"];
    assert!(
        overall.starts_with(&format!(
            "overall,all,All requirements,{},{},{},{},{},{},{:.1}",
            o["counts"]["implemented"],
            o["counts"]["in_progress"],
            o["counts"]["not_started"],
            o["counts"]["failed"],
            o["counts"]["not_applicable"],
            o["counts"]["total"],
            f(&o["readiness_pct"])
        )),
        "{overall}"
    );

    // ETag and 304; a change moves the data position and the tag
    let r = s.get(&token, "/v1/metrics/kpis").await;
    let tag = r.headers()["etag"].to_str().unwrap().to_owned();
    let again = with_header(&s, &token, "/v1/metrics/kpis", "if-none-match", &tag).await;
    assert_eq!(again.status(), 304);
    sqlx::query("UPDATE requirements SET status = 'failed' WHERE id = (SELECT min(id) FROM requirements WHERE organization_id = $1)")
        .bind(org_a)
        .execute(&s.pool)
        .await
        .unwrap();
    s.caught_up().await;
    let changed = with_header(&s, &token, "/v1/metrics/kpis", "if-none-match", &tag).await;
    assert_eq!(changed.status(), 200);
    let new_tag = changed.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_tag, tag);
    let tag = new_tag;
    // versions are per organization: a write in B leaves A's cached report
    // and its tag as they were
    let reports_before = computed(&s).await;
    sqlx::query("UPDATE requirements SET status = 'failed' WHERE id = (SELECT min(id) FROM requirements WHERE organization_id = $1)")
        .bind(org_b)
        .execute(&s.pool)
        .await
        .unwrap();
    s.caught_up().await;
    let unchanged = with_header(&s, &token, "/v1/metrics/kpis", "if-none-match", &tag).await;
    assert_eq!(unchanged.status(), 304, "a write in B moved A's tag");
    let r = s.get(&token, "/v1/metrics/kpis").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), tag);
    assert_eq!(
        computed(&s).await,
        reports_before,
        "A's report was recomputed"
    );
    // a rename of A is in A's reports, though no document carries it
    sqlx::query("UPDATE organizations SET name = name || ' Group' WHERE id = $1")
        .bind(org_a)
        .execute(&s.pool)
        .await
        .unwrap();
    s.caught_up().await;
    let renamed = with_header(&s, &token, "/v1/metrics/kpis", "if-none-match", &tag).await;
    assert_eq!(renamed.status(), 200, "a rename must move A's tag");
    let v: Value = renamed.json().await.unwrap();
    assert!(
        v["meta"]["organization"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with(" Group")),
        "{}",
        v["meta"]
    );

    // concurrent identical requests: one computation
    let before = computed(&s).await;
    let mut calls = Vec::new();
    for _ in 0..8 {
        let (http, base, token) = (s.http.clone(), s.base.clone(), token.clone());
        calls.push(tokio::spawn(async move {
            http.get(format!("{base}/v1/metrics/trends?interval=week&appetite=7"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap(), 200);
    }
    assert_eq!(computed(&s).await, before + 1);
}

/// GET with one extra request header.
async fn with_header(
    s: &TestApp,
    token: &str,
    path: &str,
    name: &str,
    value: &str,
) -> reqwest::Response {
    s.http
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .header(name, value)
        .send()
        .await
        .unwrap()
}

async fn computed(s: &TestApp) -> u64 {
    s.prometheus()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("certscope_reports_computed "))
        .and_then(|v| v.trim().parse().ok())
        .expect("reports counter")
}

/// Coverage, freshness and lapses of one requirement per way its evidence can
/// stand, in an organization of its own, against values worked out by hand:
/// the report reads each requirement's evidence newest collection first and
/// stops at the first valid entry, so every case where that entry is not the
/// answer is here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_freshness_and_lapses_follow_each_requirements_evidence() {
    let s = TestApp::start().await;
    let (org, cert) = programme(
        &s.pool,
        ("coverage-org", "Coverage Ltd"),
        ("ines@coverage.example", "Inês Duarte"),
        ("Coverage programme", 400, 300),
    )
    .await;
    let reqs: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO requirements (organization_id, certification_id, control_id, status) \
         SELECT $1, $2, id, 'in_progress' FROM controls \
          WHERE framework_id = (SELECT framework_id FROM certifications WHERE id = $2) \
          ORDER BY id LIMIT 7 RETURNING id",
    )
    .bind(org)
    .bind(cert)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    assert_eq!(reqs.len(), 7);
    // the programme started 60 days ago, so 30 days ago is in its history
    sqlx::query(
        "INSERT INTO status_history (organization_id, entity, entity_id, to_status, changed_at) \
         SELECT $1, 'certification', $2, 'in_progress', now() - interval '60 days' \
         UNION ALL \
         SELECT $1, 'requirement', r, 'in_progress', now() - interval '60 days' FROM unnest($3::bigint[]) r",
    )
    .bind(org)
    .bind(cert)
    .bind(&reqs)
    .execute(&s.pool)
    .await
    .unwrap();
    // (requirement, status, collected, expires) in days from today
    let evidence: [(usize, &str, i32, Option<i32>); 11] = [
        // 1: an old item that never expires behind a newer expired one:
        // covered, not fresh, never lapses
        (0, "accepted", -400, None),
        (0, "accepted", -10, Some(-5)),
        // 2: fresh, lapsing in 10 days
        (1, "accepted", -20, Some(10)),
        // 3: lapsed 3 days ago; a rejected item does not count
        (2, "accepted", -100, Some(-3)),
        (2, "rejected", -2, None),
        // 4: the newest valid item lapses soon, an older one lasts past the
        // horizon: covered, fresh, no lapse
        (3, "accepted", -50, Some(10)),
        (3, "accepted", -300, Some(200)),
        // 5: pending only
        (4, "pending", -5, None),
        // 6: collected in the future
        (5, "accepted", 5, None),
        // 7: valid 30 days ago, lapsed 20 days ago
        (6, "accepted", -60, Some(-20)),
        (6, "rejected", -1, Some(100)),
    ];
    for (i, (r, status, collected, expires)) in evidence.into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO evidence (organization_id, requirement_id, title, file_name, media_type, \
                                   sha256, status, collected_on, expires_on) \
             VALUES ($1, $2, $3, 'proof.pdf', 'application/pdf', encode(sha256(convert_to($3, 'UTF8')), 'hex'), \
                     $4, current_date + $5, current_date + $6)",
        )
        .bind(org)
        .bind(reqs[r])
        .bind(format!("Proof {i} of requirement {}", r + 1))
        .bind(status)
        .bind(collected)
        .bind(expires)
        .execute(&s.pool)
        .await
        .unwrap();
    }
    s.caught_up().await;
    let token = s.officer("coverage-org").await;
    let previous = today() - Days::new(30);

    let posture = s.json(&token, "/v1/metrics/posture").await;
    let overall = &posture["posture"]["overall"];
    assert_eq!(u(&overall["evidenced"]), 3, "1, 2 and 4: {overall}");
    assert_eq!(u(&overall["fresh"]), 2, "2 and 4: {overall}");

    let kpis = s
        .json(
            &token,
            &format!("/v1/metrics/kpis?previous_as_of={previous}"),
        )
        .await;
    let coverage = kpis["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "evidence_coverage")
        .unwrap()
        .clone();
    assert_eq!(f(&coverage["value"]), pct(3, 7), "{coverage}");
    // 30 days ago: 1, 3, 4 and 7
    assert_eq!(f(&coverage["previous"]), pct(4, 7), "{coverage}");

    let overdue = s.json(&token, "/v1/metrics/overdue?limit=100").await;
    let lapses = |list: &str| -> Vec<(String, String, i64)> {
        let mut items: Vec<(String, String, i64)> = overdue["overdue"][list]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "evidence")
            .map(|i| {
                (
                    i["title"].as_str().unwrap().to_owned(),
                    i["status"].as_str().unwrap().to_owned(),
                    u(&i["days"]),
                )
            })
            .collect();
        items.sort();
        items
    };
    let item = |t: &str, st: &str, d: i64| (t.to_owned(), st.to_owned(), d);
    assert_eq!(
        lapses("overdue"),
        [
            item("Proof 3 of requirement 3", "expired", -3),
            item("Proof 9 of requirement 7", "expired", -20),
        ]
    );
    assert_eq!(
        lapses("upcoming"),
        [item("Proof 2 of requirement 2", "expiring", 10)]
    );
}
