//! The web interface end to end: a real headless Chromium (over WebDriver)
//! and real HTTP against the service on a seeded database. One service for
//! the binary; each scenario signs in with its own link.
//!
//! Screenshots of every page, at 1280 px and 375 px wide, are saved under
//! `target/screenshots/` for reviewers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use certscope_query_api::Role;
use certscope_query_api::testing::TestApp;
use certscope_query_api::webdriver::Browser;
use serde_json::{Value, json};
use tokio::sync::{OnceCell, Semaphore};

#[path = "../../reports/tests/support/pdf_text.rs"]
mod pdf_text;

/// Chromium is heavy on two cores: two browsers at a time.
static BROWSERS: Semaphore = Semaphore::const_new(2);

/// The service of this binary, with XSS titles planted once (before any test
/// reads) in the first organization's first certification.
struct Fixture {
    a: String,
    b: String,
    /// A's first certification: the auditor's.
    mine: i64,
    /// A's second certification: not the auditor's.
    other: i64,
    other_name: String,
    b_cert: i64,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

const XSS_SCRIPT: &str = "<script>alert(1)</script> xsscanary";
const XSS_IMG: &str = "\"><img src=x onerror=alert(2)> xsscanary";

async fn fixture() -> (TestApp, &'static Fixture) {
    let s = TestApp::shared().await;
    let fx = FIXTURE
        .get_or_init(|| async {
            let (a, b) = s.orgs().await;
            let org_a = s.org_id(&a).await;
            let certs = s.certification_ids(org_a).await;
            let (mine, other) = (certs[0], certs[1]);
            let other_name: String =
                sqlx::query_scalar("SELECT name FROM certifications WHERE id = $1")
                    .bind(other)
                    .fetch_one(&s.pool)
                    .await
                    .unwrap();
            let req: i64 = sqlx::query_scalar(
                "SELECT id FROM requirements WHERE certification_id = $1 ORDER BY id LIMIT 1",
            )
            .bind(mine)
            .fetch_one(&s.pool)
            .await
            .unwrap();
            for (title, file) in [(XSS_SCRIPT, "x.pdf"), (XSS_IMG, "y.pdf")] {
                sqlx::query(
                    "INSERT INTO evidence (organization_id, requirement_id, title, description, file_name, media_type, sha256, status, collected_on) \
                     VALUES ($1, $2, $3, $3, $4, 'application/pdf', repeat('a', 64), 'pending', current_date)",
                )
                .bind(org_a)
                .bind(req)
                .bind(title)
                .bind(file)
                .execute(&s.pool)
                .await
                .expect("plant an XSS title");
            }
            let org_b = s.org_id(&b).await;
            let b_cert = s.certification_ids(org_b).await[0];
            s.caught_up().await;
            Fixture {
                a,
                b,
                mine,
                other,
                other_name,
                b_cert,
            }
        })
        .await;
    (s, fx)
}

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// Signs the browser in with `link`: the confirmation page, then its button.
async fn sign_in(b: &Browser, link: &str) {
    b.goto(link).await;
    let button = b.find("main form button[type=submit]").await;
    b.click(&button).await;
    b.find("header.top .who").await;
}

/// Screenshots of the current page at desktop and phone widths.
async fn screenshot(b: &Browser, name: &str) {
    b.set_size(1280, 900).await;
    b.screenshot(&shots().join(format!("{name}-1280.png")))
        .await;
    b.set_size(375, 812).await;
    b.screenshot(&shots().join(format!("{name}-375.png"))).await;
    b.set_size(1280, 900).await;
    b.zoom(Some((200, 1280, 900))).await;
    b.screenshot(&shots().join(format!("{name}-1280-zoom200.png")))
        .await;
    b.zoom(None).await;
}

/// The page needs no sideways scrolling (WCAG 1.4.10 reflow): nothing wider
/// than the viewport.
async fn reflows(b: &Browser, page: &str, how: &str) {
    let wide = b
        .execute(
            "const w = document.documentElement.clientWidth;
             const over = document.documentElement.scrollWidth > w;
             const culprits = Array.from(document.querySelectorAll('body *'))
                .filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest('.table-wrap'))
                .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
             return over ? { width: w, scroll: document.documentElement.scrollWidth, culprits } : null;",
            vec![],
        )
        .await;
    assert!(wide.is_null(), "{page} at {how} scrolls sideways: {wide}");
}

/// axe-core in the page, at desktop and phone widths: no serious or critical
/// violation.
async fn accessible(b: &Browser, page: &str) {
    let modules = certscope_query_api::testing::npm_ci("axe", &["axe-core"]);
    let axe = std::fs::read_to_string(modules.join("axe-core/axe.min.js")).expect("axe.min.js");
    for width in [1280, 375] {
        b.set_size(width, 900).await;
        b.execute(&axe, vec![]).await;
        let result = b
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                    .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                        .map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))))
                    .catch(e => done([{ id: 'axe-error', help: String(e) }]));",
                vec![],
            )
            .await;
        let bad = result.as_array().cloned().unwrap_or_default();
        assert!(
            bad.is_empty(),
            "{page} at {width}px: serious or critical accessibility violations: {}",
            serde_json::to_string_pretty(&bad).unwrap()
        );
        reflows(b, page, &format!("{width}px")).await;
    }
    b.set_size(320, 900).await;
    reflows(b, page, "320px").await;
    // a 1280-pixel window at 200 % zoom, and at 400 % (WCAG's reflow case)
    b.set_size(1280, 900).await;
    for percent in [200, 400] {
        b.zoom(Some((percent, 1280, 900))).await;
        reflows(b, page, &format!("{percent} % zoom")).await;
    }
    b.zoom(None).await;
}

async fn checked_facet_values(b: &Browser) -> Vec<String> {
    b.execute(
        "return Array.from(document.querySelectorAll('.facets input[type=checkbox]:checked')).map(e => e.name + '=' + e.value)",
        vec![],
    )
    .await
    .as_array()
    .cloned()
    .unwrap_or_default()
    .iter()
    .filter_map(|v| v.as_str().map(str::to_owned))
    .collect()
}

/// Waits until the browser is at a URL ending with `path`.
async fn wait_for_url(b: &Browser, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.url().await.ends_with(path) {
        assert!(Instant::now() < deadline, "never reached {path}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the first element matching `css` now (no element reference
/// kept: live pages replace theirs).
async fn text_now(b: &Browser, css: &str) -> String {
    b.execute(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        vec![json!(css)],
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

async fn summary(b: &Browser) -> String {
    let e = b.find("p.summary").await;
    b.text(&e).await
}

#[tokio::test]
async fn an_officer_searches_filters_goes_back_and_opens_a_detail() {
    let (s, fx) = fixture().await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let b = Browser::start(1280, 900).await;
    sign_in(&b, &s.signin_link(&fx.a, Role::Officer, None).await).await;
    assert_eq!(
        b.url().await,
        format!("{}/", s.base),
        "officers land on search"
    );
    screenshot(&b, "search-empty").await;

    // `/` focuses the box; type a question and submit
    b.execute("document.body.focus()", vec![]).await;
    let body = b.find("body").await;
    b.send_keys(&body, "/").await;
    let focused = b.execute("return document.activeElement.id", vec![]).await;
    assert_eq!(focused, json!("q"), "`/` focuses the search box");
    let q = b.find("#q").await;
    b.send_keys(&q, "access control\u{E007}").await;
    b.wait_for("ol.results li", Duration::from_secs(5))
        .await
        .expect("results for `access control`");
    let url = b.url().await;
    assert!(url.contains("q=access+control"), "{url}");
    let before = summary(&b).await;
    screenshot(&b, "search-results").await;
    accessible(&b, "search results").await;

    // tick the first status value: results and URL change
    let boxes = b.find_all(".facets fieldset input[name=status]").await;
    assert!(!boxes.is_empty(), "a status facet is shown");
    let value = b.attribute(&boxes[0], "value").await.unwrap();
    b.click(&boxes[0]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.url().await.contains(&format!("status={value}")) {
        assert!(
            Instant::now() < deadline,
            "the facet click did not reach the URL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.find("p.summary").await;
    assert!(
        checked_facet_values(&b)
            .await
            .contains(&format!("status={value}")),
        "the ticked value stays ticked"
    );
    let filtered = summary(&b).await;
    assert_ne!(before, filtered, "the facet changed the results");

    // back restores the unfiltered search
    b.back().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.url().await.contains("status=") {
        assert!(Instant::now() < deadline, "back did not restore the URL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(summary(&b).await, before, "back restores the results");
    assert!(checked_facet_values(&b).await.is_empty());

    // the next page and back by "Previous"
    if let Some(next) = b.find_all("a[rel=next]").await.into_iter().next() {
        let first_page: Vec<Value> = b
            .execute(
                "return Array.from(document.querySelectorAll('ol.results h2 a')).map(a => a.href)",
                vec![],
            )
            .await
            .as_array()
            .cloned()
            .unwrap();
        b.click(&next).await;
        let prev = b.find("a[rel=prev]").await;
        let second: Value = b
            .execute(
                "return Array.from(document.querySelectorAll('ol.results h2 a')).map(a => a.href)",
                vec![],
            )
            .await;
        assert_ne!(json!(first_page), second, "page 2 differs from page 1");
        b.click(&prev).await;
        b.find("ol.results").await;
        let again = b
            .execute(
                "return Array.from(document.querySelectorAll('ol.results h2 a')).map(a => a.href)",
                vec![],
            )
            .await;
        assert_eq!(json!(first_page), again, "Previous returns to page 1");
    }

    // open the first result with a detail page (a catalogue control's
    // link is the search for its id)
    let link = b.find("ol.results h2 a:not([href^='/?'])").await;
    let title = b.text(&link).await;
    let href = b.attribute(&link, "href").await.unwrap();
    b.click(&link).await;
    wait_for_url(&b, &href).await;
    let h1 = b.find("main h1").await;
    let heading = b.text(&h1).await;
    assert!(
        heading.contains(title.trim()) || title.contains(heading.trim()),
        "detail heading {heading:?} for result {title:?}"
    );
    screenshot(&b, "detail").await;
    accessible(&b, "detail").await;
}

#[tokio::test]
async fn suggestions_appear_and_arrows_choose_one() {
    let (s, fx) = fixture().await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let b = Browser::start(1280, 900).await;
    sign_in(&b, &s.signin_link(&fx.a, Role::Officer, None).await).await;
    let q = b.find("#q").await;
    b.send_keys(&q, "AC-").await;
    b.wait_for("#suggestions li", Duration::from_secs(5))
        .await
        .expect("suggestions for `AC-`");
    b.send_keys(&q, "\u{E015}").await; // arrow down
    let active = b
        .execute(
            "return document.getElementById('q').getAttribute('aria-activedescendant')",
            vec![],
        )
        .await;
    assert_eq!(active, json!("suggestion-0"));
    b.send_keys(&q, "\u{E007}").await; // enter
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.url().await == format!("{}/", s.base) {
        assert!(
            Instant::now() < deadline,
            "choosing a suggestion went nowhere"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client that keeps no cookies and follows no redirects: the test reads
/// both.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Spends a link over HTTP: the session cookie (`name=value`).
async fn session_cookie(link: &str) -> String {
    let r = raw_client().post(link).send().await.unwrap();
    assert_eq!(r.status(), 303, "spending a link redirects");
    let set = r
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "cookie lacks {attr}: {set}");
    }
    set.split(';').next().unwrap().to_owned()
}

fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf-token\" content=\"";
    let at = page.find(marker).expect("csrf meta") + marker.len();
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn links_are_single_use_and_expire_and_sign_out_ends_the_session() {
    let (s, fx) = fixture().await;
    let http = raw_client();
    let link = s.signin_link(&fx.a, Role::Officer, None).await;
    // the confirmation page spends nothing, nor does another site's form
    let r = http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(&link)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another site cannot spend a link");
    let cookie = session_cookie(&link).await;
    let again = http.post(&link).send().await.unwrap();
    assert_eq!(again.status(), 401, "a link works once");
    assert!(again.text().await.unwrap().contains("already been used"));

    let expired = s.signin_link(&fx.a, Role::Officer, None).await;
    let token = expired.rsplit('/').next().unwrap();
    use sha2::Digest;
    sqlx::query("UPDATE web_signin_links SET expires_at = now() - interval '1 second' WHERE token_hash = $1")
        .bind(sha2::Sha256::digest(token.as_bytes()).to_vec())
        .execute(&s.pool)
        .await
        .unwrap();
    let r = http.post(&expired).send().await.unwrap();
    assert_eq!(r.status(), 401, "an expired link opens nothing");
    assert!(r.text().await.unwrap().contains("expired"));
    let r = http
        .get(format!("{}/signin/sl_made-up", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // the session works; sign-out without the CSRF token is refused
    let page = http
        .get(format!("{}/", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // the page's server time, split out for the browser's Performance API
    let timing: Vec<&str> = page
        .headers()
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for part in ["search;dur=", "render;dur=", "app;dur="] {
        assert!(
            timing.iter().any(|t| t.starts_with(part)),
            "Server-Timing lacks {part}: {timing:?}"
        );
    }
    let csrf = csrf_of(&page.text().await.unwrap());
    // people's mistakes are 4xx pages that say what was wrong
    for (path, status, says) in [
        ("/certifications/abc", 400, "positive whole number"),
        ("/dashboard?as_of=2999-01-01", 400, "future"),
        ("/dashboard?colour=red", 400, "unknown parameter `colour`"),
        (
            "/dashboard/cell?grid=inherent&likelihood=9&impact=1",
            400,
            "1 to 5",
        ),
        ("/ui/metrics/nope", 404, "no report section"),
        ("/?sort=bogus", 400, "unknown sort"),
        ("/signin/sso/nobody", 404, "no identity provider"),
        ("/assets/app.0000.css", 404, "no such asset"),
    ] {
        let r = http
            .get(format!("{}{path}", s.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{path}: {text}");
    }
    let r = http
        .post(format!("{}/signout", s.base))
        .header("cookie", &cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token, no sign-out");
    let r = http
        .post(format!("{}/ui/events/ticket", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token, no ticket");
    let r = http
        .post(format!("{}/signout", s.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = http
        .get(format!("{}/dashboard", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the ended session opens nothing");
    assert!(r.text().await.unwrap().contains("Sign in to Certscope"));
    let r = http
        .get(format!("{}/ui/suggest?q=ac", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_heat_map_cell_lists_exactly_the_risks_sql_puts_in_it() {
    let (s, fx) = fixture().await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let b = Browser::start(1280, 900).await;
    sign_in(&b, &s.signin_link(&fx.a, Role::Executive, None).await).await;
    assert!(
        b.url().await.ends_with("/dashboard"),
        "executives land on the dashboard"
    );
    b.find("#kpis").await;
    screenshot(&b, "dashboard").await;
    accessible(&b, "dashboard").await;
    // the fullest inherent cell
    let org = s.org_id(&fx.a).await;
    let (l, i, n): (i16, i16, i64) = sqlx::query_as(
        "SELECT inherent_likelihood, inherent_impact, count(*) FROM risks \
         WHERE organization_id = $1 AND status <> 'closed' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 1",
    )
    .bind(org)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let cell = b
        .find(&format!(
            ".heatmap a[href*='grid=inherent'][href*='likelihood={l}'][href*='impact={i}']"
        ))
        .await;
    let shown = b.text(&cell).await;
    assert_eq!(
        shown.trim(),
        n.to_string(),
        "the cell shows its count as text"
    );
    b.click(&cell).await;
    b.find("main h1").await;
    let ids: Vec<i64> = b
        .execute(
            "return Array.from(document.querySelectorAll('tr[data-risk]')).map(r => Number(r.dataset.risk))",
            vec![],
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let mut sql: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM risks WHERE organization_id = $1 AND status <> 'closed' \
         AND inherent_likelihood = $2 AND inherent_impact = $3",
    )
    .bind(org)
    .bind(l)
    .bind(i)
    .fetch_all(&s.pool)
    .await
    .unwrap();
    let mut got = ids.clone();
    got.sort_unstable();
    sql.sort_unstable();
    assert_eq!(got, sql, "the cell's page lists exactly its risks");
    screenshot(&b, "heatmap-cell").await;
    accessible(&b, "heat-map cell").await;
}

#[tokio::test]
async fn a_status_change_reaches_the_feed_and_the_kpi_tile_without_reload() {
    let (s, fx) = fixture().await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let b = Browser::start(1280, 900).await;
    // organization B: its figures are no other scenario's
    sign_in(&b, &s.signin_link(&fx.b, Role::Executive, None).await).await;
    b.find("#kpis").await;
    let live = b.find("[data-live]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.attribute(&live, "data-state").await.as_deref() != Some("live") {
        assert!(Instant::now() < deadline, "the dashboard never went live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tile = "[data-kpi=failed_requirements] .value";
    b.find(tile).await;
    let before = text_now(&b, tile).await;
    b.execute("window.__marker = 1", vec![]).await;
    let (req, was): (i64, String) = sqlx::query_as(
        "SELECT id, status FROM requirements WHERE certification_id = $1 AND status <> 'failed' ORDER BY id LIMIT 1",
    )
    .bind(fx.b_cert)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let changed_at = Instant::now();
    s.set_requirement_status(req, "failed").await;
    b.wait_for("#feed li", Duration::from_secs(2))
        .await
        .expect("the change in the activity feed within 2 s");
    let mut after = before.clone();
    while changed_at.elapsed() < Duration::from_secs(2) && after == before {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = text_now(&b, tile).await;
    }
    if after == before {
        // what the page's refresh gets now, for the failure message
        let probe = b
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch('/dashboard/kpis').then(r => r.text().then(t => { const d = new DOMParser().parseFromString(t, 'text/html'); const v = d.querySelector('[data-kpi=failed_requirements] .value'); done(r.status + ': failed requirements ' + (v ? v.textContent : t.slice(0, 200))); })).catch(e => done(String(e)));",
                vec![],
            )
            .await;
        panic!(
            "the failed-requirements tile still shows {before} 2 s after the change; /dashboard/kpis now answers {probe}"
        );
    }
    assert_eq!(
        after.trim().parse::<u64>().unwrap(),
        before.trim().parse::<u64>().unwrap() + 1,
        "the failed-requirements tile counts the change"
    );
    assert_eq!(
        b.execute("return window.__marker", vec![]).await,
        json!(1),
        "no reload"
    );
    let feed = text_now(&b, "#feed li").await;
    assert!(feed.contains("failed"), "{feed}");

    // a network drop: the stream closes, the page says so, and the change made
    // meanwhile arrives once it is back (resumed from the last event id)
    b.execute("window.dispatchEvent(new Event('offline'))", vec![])
        .await;
    assert_eq!(
        b.attribute(&live, "data-state").await.as_deref(),
        Some("reconnecting"),
        "a visible reconnecting state"
    );
    let (second, second_was): (i64, String) = sqlx::query_as(
        "SELECT id, status FROM requirements WHERE certification_id = $1 AND status <> 'failed' AND id <> $2 ORDER BY id LIMIT 1",
    )
    .bind(fx.b_cert)
    .bind(req)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    s.set_requirement_status(second, "failed").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let items = b
            .execute(
                "return document.querySelectorAll('#feed li').length",
                vec![],
            )
            .await;
        if items.as_u64() >= Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change made while offline never reached the feed ({items} items)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        b.attribute(&live, "data-state").await.as_deref(),
        Some("live")
    );
    s.set_requirement_status(second, &second_was).await;
    // the tile links to the very requirements it counts
    let href = b
        .attribute(&b.find("[data-kpi=failed_requirements] a").await, "href")
        .await
        .unwrap();
    assert!(
        href.contains("status=failed") && href.contains("kind=requirement"),
        "{href}"
    );
    // restore B for reruns of this binary's other readers
    s.set_requirement_status(req, &was).await;
}

/// A minimal RFC 4180 reader: rows of fields (quotes, doubled quotes,
/// separators and line breaks inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quote");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[tokio::test]
async fn the_board_pack_names_the_organization_and_every_csv_parses() {
    let (s, fx) = fixture().await;
    let cookie = session_cookie(&s.signin_link(&fx.a, Role::Executive, None).await).await;
    let http = raw_client();
    let get = |path: String| {
        let http = http.clone();
        let cookie = cookie.clone();
        let base = s.base.clone();
        async move {
            http.get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    };
    let page = get("/dashboard".into()).await.text().await.unwrap();
    let hrefs: Vec<String> = page
        .match_indices("href=\"")
        .map(|(at, _)| {
            let rest = &page[at + 6..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect();
    let pdf = hrefs
        .iter()
        .find(|h| h.starts_with("/ui/board.pdf"))
        .expect("board pack link");
    let r = get(pdf.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let bytes = r.bytes().await.unwrap();
    let name: String = sqlx::query_scalar("SELECT name FROM organizations WHERE slug = $1")
        .bind(&fx.a)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let text = pdf_text::Pdf::load(&bytes)
        .unwrap()
        .page_texts()
        .unwrap()
        .join("\n");
    assert!(text.contains(&name), "the board pack names {name}");
    let csvs: Vec<&String> = hrefs
        .iter()
        .filter(|h| h.starts_with("/ui/metrics/"))
        .collect();
    assert!(csvs.len() >= 5, "a CSV link on every section: {csvs:?}");
    for href in csvs {
        let r = get(href.clone()).await;
        assert_eq!(r.status(), 200, "{href}");
        let rows = parse_csv(&r.text().await.unwrap());
        assert!(rows.len() >= 2, "{href}: a header and rows");
        assert!(
            rows.iter().all(|r| r.len() == rows[0].len()),
            "{href}: ragged rows"
        );
    }
    // the search export: every hit of the search, with its filters
    let api = s.officer(&fx.a).await;
    let v = s
        .search(
            &api,
            &certscope_query_api::testing::Params::new()
                .with("kind", "requirement")
                .with("collapse", "none"),
        )
        .await;
    let total = v["total"].as_u64().unwrap();
    let r = get("/export.csv?kind=requirement".into()).await;
    assert_eq!(r.status(), 200);
    let rows = parse_csv(&r.text().await.unwrap());
    assert_eq!(rows[0][0], "kind");
    assert_eq!(rows.len() as u64 - 1, total, "the export holds every hit");
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[0] == "requirement" && r.len() == rows[0].len())
    );
    let r = get("/export.csv?status=nonsense".into()).await;
    assert_eq!(r.status(), 400, "a bad search is a 400, not a broken file");
}

#[tokio::test]
async fn an_auditor_never_sees_another_certification_and_xss_stays_inert() {
    let (s, fx) = fixture().await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let b = Browser::start(1280, 900).await;
    sign_in(
        &b,
        &s.signin_link(&fx.a, Role::Auditor, Some(vec![fx.mine]))
            .await,
    )
    .await;
    // the planted titles, as text, and no dialog
    b.goto(&format!("{}/?q=xsscanary&collapse=none", s.base))
        .await;
    b.find("ol.results").await;
    assert_eq!(b.dialog().await, None, "no script ran on the results page");
    let page = b
        .execute("return document.querySelector('main').innerText", vec![])
        .await;
    let page = page.as_str().unwrap();
    assert!(
        page.contains("<script>alert(1)</script>"),
        "the title shows as text"
    );
    assert!(
        page.contains("\"><img src=x onerror=alert(2)>"),
        "the title shows as text"
    );
    assert_eq!(
        b.execute(
            "return document.querySelectorAll('main img, main script').length",
            vec![]
        )
        .await,
        json!(0)
    );
    screenshot(&b, "search-xss").await;
    let link = b.find("ol.results h2 a").await;
    let href = b.attribute(&link, "href").await.unwrap();
    b.click(&link).await;
    wait_for_url(&b, &href).await;
    let h1 = text_now(&b, "main h1").await;
    assert!(h1.contains("xsscanary"), "{h1}");
    assert_eq!(b.dialog().await, None, "no script ran on the detail page");

    // every page: nothing of the other certification
    for path in [
        "/".to_owned(),
        "/?q=control".to_owned(),
        "/dashboard".to_owned(),
        format!("/certifications/{}", fx.mine),
    ] {
        b.goto(&format!("{}{path}", s.base)).await;
        b.find("main").await;
        let text = b
            .execute("return document.documentElement.outerHTML", vec![])
            .await;
        let text = text.as_str().unwrap();
        assert!(
            !text.contains(&fx.other_name),
            "{path} shows the certification {:?} outside the auditor's scope",
            fx.other_name
        );
        assert_eq!(b.dialog().await, None);
    }
    b.goto(&format!("{}/dashboard", s.base)).await;
    b.find("#kpis").await;
    let options = b
        .execute(
            "return Array.from(document.querySelectorAll('select[name=certification] option')).map(o => o.value).filter(v => v)",
            vec![],
        )
        .await;
    assert_eq!(
        options,
        json!([fx.mine.to_string()]),
        "the dashboard offers only its certification"
    );
    b.goto(&format!("{}/certifications/{}", s.base, fx.other))
        .await;
    let h1 = b.text(&b.find("main h1").await).await;
    assert_eq!(h1, "Forbidden", "another certification of its organization");
    b.goto(&format!("{}/certifications/{}", s.base, fx.b_cert))
        .await;
    let h1 = b.text(&b.find("main h1").await).await;
    assert_eq!(h1, "Not Found", "another organization's id is not found");
    screenshot(&b, "not-found").await;
    accessible(&b, "error page").await;
}

#[tokio::test]
async fn the_sign_in_pages_are_accessible() {
    let (s, fx) = fixture().await;
    let _permit = BROWSERS.acquire().await.unwrap();
    let b = Browser::start(1280, 900).await;
    b.goto(&s.signin_link(&fx.a, Role::Officer, None).await)
        .await;
    b.find("main form").await;
    screenshot(&b, "signin").await;
    accessible(&b, "sign-in confirmation").await;
    b.goto(&format!("{}/", s.base)).await;
    let h1 = b.text(&b.find("main h1").await).await;
    assert_eq!(h1, "Sign in to Certscope", "no session: the sign-in page");
    accessible(&b, "signed out").await;
}
