//! The pages, as typed templates (maud): every interpolated value is escaped;
//! the one place markup from elsewhere is kept is a snippet's highlights, which
//! [`snippet`] rebuilds from escaped text and `<mark>` alone.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use certscope_domain::{Kind, RiskLevel, Status};
use certscope_reports::model::{Grid, Kpi, KpiState, Report};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::assets;
use super::paths;
use super::session::{CSRF_FIELD, LinkInfo, Session};
use crate::AppState;
use crate::error::ApiError;
use crate::search::collect::Facet;

/// The search page's own parameter: the cursors of the pages before this one
/// (dot-separated), so "Previous" works without server state.
pub const TRAIL: &str = "trail";
/// Pages of history "Previous" can walk back.
const MAX_TRAIL: usize = 40;

/// An HTML response.
pub fn html(status: StatusCode, body: Markup) -> Response {
    let mut r = (status, body.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// Why a page cannot be shown: as a page, never as JSON.
#[derive(Debug)]
pub enum PageError {
    SignedOut {
        back_to: String,
        /// Identity providers people may sign in with.
        providers: Vec<String>,
    },
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignedOut { back_to, providers } => html(
                StatusCode::UNAUTHORIZED,
                signed_out(None, &providers, Some(&back_to)),
            ),
            PageError::Api(e) => {
                let status = e.status();
                let mut r = html(status, error_page(status, &e.public_message()));
                if let ApiError::Internal(cause) = e {
                    // logged once by the HTTP layer, as for the API
                    r.extensions_mut().insert(cause);
                }
                r
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Nav {
    Search,
    Dashboard,
    None,
}

fn layout(session: Option<&Session>, title: &str, nav: Nav, main: Markup) -> Markup {
    page(session, title, nav, main, None)
}

/// A page; `go_to` makes the browser move on to that address at once (a
/// navigation, which the CSP's `form-action 'self'` does not govern).
fn page(
    session: Option<&Session>,
    title: &str,
    nav: Nav,
    main: Markup,
    go_to: Option<&str>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                @if let Some(to) = go_to { meta http-equiv="refresh" content={ "0;url=" (to) }; }
                @if let Some(s) = session { meta name="csrf-token" content=(s.csrf); }
                title { (title) " · Certscope" }
                link rel="stylesheet" href=(assets::css_path());
                script src=(assets::js_path()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href=(paths::SEARCH) { "Certscope" }
                        @if let Some(s) = session {
                            a href=(paths::SEARCH) aria-current=[(nav == Nav::Search).then_some("page")] { "Search" }
                            a href=(paths::DASHBOARD) aria-current=[(nav == Nav::Dashboard).then_some("page")] { "Dashboard" }
                            span.who { (s.user_name) " · " (s.scope.role.label()) " · " (s.organization) }
                            form.inline method="post" action=(paths::SIGNOUT) {
                                input type="hidden" name=(CSRF_FIELD) value=(s.csrf);
                                button.quiet type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (main) }
                footer { "Certscope — search, posture and board reporting for compliance programmes." }
            }
        }
    }
}

fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    layout(
        None,
        title,
        Nav::None,
        html! {
            h1 { (title) }
            p.notice.error role="alert" { (message) }
            p { a href=(paths::SEARCH) { "Back to search" } " · " a href=(paths::DASHBOARD) { "Dashboard" } }
        },
    )
}

/// The page for people without a session (or who just ended it).
pub fn signed_out(message: Option<&str>, providers: &[String], back_to: Option<&str>) -> Markup {
    layout(
        None,
        "Sign in",
        Nav::None,
        html! {
            div.signin {
                h1 { "Sign in to Certscope" }
                @if let Some(m) = message { p.notice role="status" { (m) } }
                @for p in providers {
                    p {
                        a.button href={ "/signin/sso/" (crate::encode_query_value(p))
                            @if let Some(b) = back_to.filter(|b| b.starts_with('/')) { "?return_to=" (crate::encode_query_value(b)) } } {
                            "Sign in with " (p)
                        }
                    }
                }
                p { "Open the sign-in link you were given. Links work once and for ten minutes." }
                p { "An administrator makes one with:" }
                pre { code { "certscope signin-link --org ORGANIZATION --role officer --user you@example.com" } }
            }
        },
    )
}

/// After sign-out from a session an identity provider opened: on to the
/// provider's end-session page.
pub fn signing_out_at(provider_url: &str) -> Markup {
    page(
        None,
        "Signing out",
        Nav::None,
        html! {
            div.signin {
                h1 { "You are signed out of Certscope" }
                p { "Signing you out at your identity provider… "
                    a href=(provider_url) { "Continue" } }
            }
        },
        Some(provider_url),
    )
}

/// The confirmation before a link is spent (mail scanners that fetch links
/// must not use them up): who it signs in, and one button.
pub fn signin_confirm(info: &LinkInfo) -> Markup {
    layout(
        None,
        "Sign in",
        Nav::None,
        html! {
            div.signin {
                h1 { "Sign in to Certscope" }
                p { "This link signs you in as " strong { (info.user) } ", " (info.role.label()) " at " strong { (info.organization) } "." }
                form method="post" {
                    button type="submit" { "Continue to Certscope" }
                }
            }
        },
    )
}

/// A status badge: sign, label and tone (never colour alone).
fn status_badge(kind: Option<Kind>, status: &str) -> Markup {
    let parsed = kind
        .and_then(|k| Status::parse(k, status).ok())
        .or_else(|| {
            Kind::ALL
                .into_iter()
                .find_map(|k| Status::parse(k, status).ok())
        });
    let (label, tone) = match parsed {
        Some(s) => (s.label(), s.tone()),
        None => (status, certscope_domain::Tone::Neutral),
    };
    let sign = match tone {
        certscope_domain::Tone::Good => "✓",
        certscope_domain::Tone::Attention => "◐",
        certscope_domain::Tone::Bad => "✗",
        certscope_domain::Tone::Neutral => "○",
    };
    html! {
        span class={ "status status-" (tone.as_str()) } {
            span aria-hidden="true" { (sign) " " } (label)
        }
    }
}

fn kind_badge(kind: &str) -> Markup {
    let label = Kind::parse(kind).map_or(kind, |k| k.label());
    html! { span.badge { (label) } }
}

fn str_of<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The page of a search hit (or of a related record), when it has one.
pub fn hit_link(hit: &Value) -> Option<String> {
    let kind = Kind::parse(str_of(hit, "kind")?)?;
    let id = hit.get("id")?.as_i64()?;
    match kind {
        // a catalogue control has no page of its own: its search
        Kind::Control => Some(format!(
            "{}?q={}",
            paths::SEARCH,
            crate::encode_query_value(str_of(hit, "control").unwrap_or_default())
        )),
        k => Some(paths::detail(k, id)),
    }
}

/// A snippet from the search: tantivy's HTML (escaped text and `<b>`
/// highlights) rebuilt as escaped text and `<mark>`; any other `<`, `>` would
/// be shown, not run.
fn snippet(html_text: &str) -> Markup {
    let mut out = String::with_capacity(html_text.len() + 16);
    let mut rest = html_text;
    let mut open = false;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("<b>") {
            if !open {
                out.push_str("<mark>");
                open = true;
            }
            rest = r;
        } else if let Some(r) = rest.strip_prefix("</b>") {
            if open {
                out.push_str("</mark>");
                open = false;
            }
            rest = r;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                // entities the search wrote stay; a bare `&` is escaped
                '&' if !is_entity(rest) => out.push_str("&amp;"),
                c => out.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    if open {
        out.push_str("</mark>");
    }
    PreEscaped(out)
}

fn is_entity(s: &str) -> bool {
    let Some(end) = s.find(';') else { return false };
    let name = &s[1..end];
    end <= 8
        && !name.is_empty()
        && (name.chars().all(|c| c.is_ascii_alphanumeric())
            || (name.starts_with('#') && name[1..].chars().all(|c| c.is_ascii_digit())))
}

/// The page URL of `pairs` (a search or dashboard state).
fn url(path: &str, pairs: &[(String, String)]) -> String {
    let q = super::encode(pairs);
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

fn value_of<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn facet_title(name: &str) -> &str {
    match name {
        "kind" => "Kind",
        "framework" => "Framework",
        "family" => "Control family",
        "status" => "Status",
        "owner" => "Owner",
        "certification" => "Certification",
        "risk_level" => "Risk level",
        "due" => "Due",
        other => other,
    }
}

const SORTS: [(&str, &str); 7] = [
    ("", "Best match / latest"),
    ("relevance", "Relevance"),
    ("title", "Title"),
    ("due_date", "Due date, soonest"),
    ("-updated_at", "Recently updated"),
    ("-residual_score", "Highest residual risk"),
    ("expires_on", "Expiring soonest"),
];

/// The date ranges the filter panel offers (the API's `<field>_after` /
/// `<field>_before`).
const RANGES: [(&str, &str); 2] = [("due", "Due"), ("collected", "Collected")];

pub fn search(
    session: &Session,
    pairs: &[(String, String)],
    trail: &str,
    answer: Result<&Value, &str>,
) -> Markup {
    let q = value_of(pairs, "q").unwrap_or_default();
    let selected = |name: &str, value: &str| {
        pairs
            .iter()
            .any(|(k, v)| k == name && v.split(',').any(|x| x.trim() == value))
    };
    // filters in force: facet values, date bounds, a sort
    let filters = pairs
        .iter()
        .filter(|(k, _)| k != "q" && k != "cursor" && k != "collapse")
        .count();
    let title = if q.is_empty() {
        "Search".to_owned()
    } else {
        format!("{q} — Search")
    };
    let main = html! {
        h1.sr-only { "Search" }
        form #search data-clean method="get" action=(paths::SEARCH) role="search" autocomplete="off" {
            div.searchbar {
                label.sr-only for="q" { "Search certifications, requirements, controls, evidence and risks" }
                input #q type="search" name="q" value=(q) autocomplete="off"
                    placeholder="Search: a control (AC-2), a question, an evidence file…"
                    role="combobox" aria-autocomplete="list" aria-expanded="false" aria-controls="suggestions";
                ul #suggestions .suggestions role="listbox" aria-label="Suggestions" hidden {}
                button type="submit" { "Search" }
            }
            div.layout {
                aside.facets aria-label="Filters" {
                  details #filters open {
                    summary { "Filters" @if filters > 0 { " (" (filters) " applied)" } }
                    @if let Ok(answer) = answer {
                        @for (name, values) in answer.get("facets").and_then(Value::as_object).into_iter().flatten() {
                            @let values = values.as_array().cloned().unwrap_or_default();
                            @if !values.is_empty() {
                                fieldset {
                                    legend { (facet_title(name)) }
                                    @for v in &values {
                                        @let value = str_of(v, "value").unwrap_or_default();
                                        @let label = str_of(v, "label").unwrap_or(value);
                                        @let count = v.get("count").and_then(Value::as_u64).unwrap_or(0);
                                        label {
                                            input type="checkbox" name=(name) value=(value) checked[selected(name, value)];
                                            span { (label) }
                                            span.count { (count) span.sr-only { " results" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    // filters the facet list did not show (e.g. a value with no hits) stay applied
                    @for (k, v) in pairs {
                        @if Facet::parse(k).is_some() && !facet_shown(answer, k, v) {
                            input type="hidden" name=(k) value=(v);
                        }
                    }
                    fieldset.dates {
                        legend { "Dates" }
                        @for (field, label_text) in RANGES {
                            @let after = format!("{field}_after");
                            @let before = format!("{field}_before");
                            label { span { (label_text) " from" } input type="date" name=(after) value=(value_of(pairs, &after).unwrap_or_default()); }
                            label { span { "to" } input type="date" name=(before) value=(value_of(pairs, &before).unwrap_or_default()); }
                        }
                    }
                    label for="sort" { "Sort by" }
                    select #sort name="sort" data-auto {
                        @for (value, label_text) in SORTS {
                            option value=(value) selected[value_of(pairs, "sort").unwrap_or_default() == value] { (label_text) }
                        }
                    }
                    p { button type="submit" { "Apply filters" } " " a href=(url(paths::SEARCH, &only_q(pairs))) { "Clear filters" } }
                  }
                }
                section aria-label="Results" {
                    @match answer {
                        Err(message) => {
                            p.notice.error role="alert" { (message) }
                        }
                        Ok(answer) => {
                            (results(answer, pairs, trail, q))
                        }
                    }
                }
            }
        }
    };
    layout(Some(session), &title, Nav::Search, main)
}

fn only_q(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs.iter().filter(|(k, _)| k == "q").cloned().collect()
}

fn facet_shown(answer: Result<&Value, &str>, name: &str, value: &str) -> bool {
    let Ok(answer) = answer else { return false };
    let Some(values) = answer
        .get("facets")
        .and_then(|f| f.get(name))
        .and_then(Value::as_array)
    else {
        return false;
    };
    value
        .split(',')
        .all(|x| values.iter().any(|v| str_of(v, "value") == Some(x.trim())))
}

fn results(answer: &Value, pairs: &[(String, String)], trail: &str, q: &str) -> Markup {
    let total = answer.get("total").and_then(Value::as_u64).unwrap_or(0);
    let shown = answer
        .get("results")
        .and_then(Value::as_u64)
        .unwrap_or(total);
    let hits = answer
        .get("hits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let next = answer.get("next_cursor").and_then(Value::as_str);
    let cursors: Vec<&str> = trail.split('.').filter(|c| !c.is_empty()).collect();
    let current = value_of(pairs, "cursor");
    let base: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let next_url = next.map(|n| {
        let mut p = base.clone();
        p.push(("cursor".into(), n.to_owned()));
        let mut t: Vec<&str> = cursors.clone();
        t.push(current.unwrap_or("-"));
        let t = &t[t.len().saturating_sub(MAX_TRAIL)..];
        p.push((TRAIL.into(), t.join(".")));
        url(paths::SEARCH, &p)
    });
    let prev_url = current.map(|_| {
        let mut p = base.clone();
        if let Some((last, rest)) = cursors.split_last() {
            if *last != "-" {
                p.push(("cursor".into(), (*last).to_owned()));
            }
            if !rest.is_empty() {
                p.push((TRAIL.into(), rest.join(".")));
            }
        }
        url(paths::SEARCH, &p)
    });
    let export = url(paths::EXPORT, &base);
    html! {
        div.tools {
            p.summary role="status" {
                @if shown == total { (total) " results" }
                @else { (shown) " results (" (total) " documents)" }
                @if let Some(m) = answer.get("matching").filter(|m| m.get("fallback").and_then(Value::as_bool) == Some(true)) {
                    " — no document holds every word; showing those holding at least "
                    (m.get("required").and_then(Value::as_u64).unwrap_or(1)) " of " (m.get("words").and_then(Value::as_u64).unwrap_or(1))
                }
            }
            @if total > 0 { a href=(export) download { "Export CSV" } }
        }
        @if hits.is_empty() {
            div.help {
                @if q.is_empty() { p { "Nothing matches these filters." } }
                @else { p { "Nothing matches “" (q) "”." } }
                ul {
                    li { "Check the spelling, or use fewer words." }
                    li { "Search a control by its id: " code { "AC-2" } ", " code { "ia2(1)" } "." }
                    li { "Try a phrase in quotes: " code { "\"incident response\"" } ", or leave out a word with " code { "-draft" } "." }
                    li { a href=(url(paths::SEARCH, &only_q(pairs))) { "Remove all filters" } }
                }
            }
        } @else {
            ol.results {
                @for hit in &hits { li { (result(hit)) } }
            }
        }
        @if prev_url.is_some() || next_url.is_some() {
            nav.pager aria-label="Result pages" {
                @if let Some(p) = &prev_url { a href=(p) rel="prev" { "← Previous page" } }
                @if let Some(n) = &next_url { a href=(n) rel="next" { "Next page →" } }
            }
        }
    }
}

fn result(hit: &Value) -> Markup {
    let kind = str_of(hit, "kind").unwrap_or_default();
    let title = str_of(hit, "title").unwrap_or("(untitled)");
    let href = hit_link(hit);
    let collapsed = hit.get("collapsed");
    html! {
        article {
            h2 {
                (kind_badge(kind))
                @if let Some(control) = str_of(hit, "control").filter(|_| kind != "control") { (control) " " }
                @if let Some(h) = &href { a href=(h) { (title) } } @else { (title) }
            }
            @if let Some(s) = str_of(hit, "snippet") { p.snippet { (snippet(s)) } }
            dl.meta {
                @if let Some(s) = str_of(hit, "status") { div { dt { "Status" } dd { (status_badge(Kind::parse(kind), s)) } } }
                @if let Some(c) = str_of(hit, "control") { div { dt { "Control" } dd { (c) } } }
                @if let Some(c) = str_of(hit, "certification") { div { dt { "Certification" } dd { (c) } } }
                @if let Some(o) = str_of(hit, "owner") { div { dt { "Owner" } dd { (o) } } }
                @if let Some(d) = str_of(hit, "due_date") { div { dt { "Due" } dd { time datetime=(d) { (d) } } } }
                @if let Some(d) = str_of(hit, "expires_on") { div { dt { "Expires" } dd { time datetime=(d) { (d) } } } }
                @if let Some(l) = str_of(hit, "risk_level") { div { dt { "Risk" } dd { (RiskLevel::parse(l).map_or(l, |r| r.label())) } } }
            }
            @if let Some(c) = collapsed {
                @let related = c.get("related").and_then(Value::as_array).cloned().unwrap_or_default();
                @if !related.is_empty() {
                    details {
                        summary { "In " (related.len()) " more " @if related.len() == 1 { "place" } @else { "places" } }
                        ul {
                            @for r in &related {
                                li {
                                    @if let Some(h) = hit_link(r) { a href=(h) { (str_of(r, "certification").or(str_of(r, "framework")).unwrap_or("—")) } }
                                    @else { (str_of(r, "certification").or(str_of(r, "framework")).unwrap_or("—")) }
                                    @if let Some(s) = str_of(r, "status") { " — " (status_badge(str_of(r, "kind").and_then(Kind::parse), s)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Fields shown in a detail page's table, in order, with their labels.
const DETAIL_FIELDS: [(&str, &str); 26] = [
    ("status", "Status"),
    ("control", "Control"),
    ("control_title", "Control title"),
    ("family_title", "Control family"),
    ("framework_name", "Framework"),
    ("certification", "Certification"),
    ("owner", "Owner"),
    ("category", "Category"),
    ("treatment", "Treatment"),
    ("inherent_score", "Inherent score"),
    ("residual_score", "Residual score"),
    ("due_date", "Due"),
    ("started_on", "Started"),
    ("target_date", "Target date"),
    ("certified_on", "Certified"),
    ("expires_on", "Expires"),
    ("collected_on", "Collected"),
    ("file_name", "File"),
    ("media_type", "Media type"),
    ("sha256", "SHA-256"),
    ("size_bytes", "Size (bytes)"),
    ("requirements", "Requirements"),
    ("completion_pct", "Completion %"),
    ("requirement_id", "Requirement"),
    ("version", "Version"),
    ("updated_at", "Updated"),
];

/// Long texts shown as paragraphs.
const DETAIL_TEXTS: [(&str, &str); 5] = [
    ("description", "Description"),
    ("statement", "Control statement"),
    ("guidance", "Guidance"),
    ("notes", "Notes"),
    ("summary", "Summary"),
];

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn detail(session: &Session, kind: Kind, record: &serde_json::Map<String, Value>) -> Markup {
    let v = Value::Object(record.clone());
    let title = str_of(&v, "title")
        .or(str_of(&v, "name"))
        .or(str_of(&v, "control_title"))
        .unwrap_or("(untitled)")
        .to_owned();
    let heading = match str_of(&v, "control") {
        Some(c) if kind == Kind::Requirement => format!("{c} {title}"),
        _ => title.clone(),
    };
    let main = html! {
        p { (kind_badge(kind.as_str())) }
        h1 { (heading) }
        dl.fields {
            @for (field, label) in DETAIL_FIELDS {
                @if let Some(value) = v.get(field).filter(|x| !x.is_null()) {
                    dt { (label) }
                    dd {
                        @if field == "status" { (status_badge(Some(kind), &plain(value))) }
                        @else if field == "certification" && v.get("certification_id").is_some() {
                            a href=(paths::detail(Kind::Certification, v["certification_id"].as_i64().unwrap_or(0))) { (plain(value)) }
                        }
                        @else if field == "requirement_id" {
                            a href=(paths::detail(Kind::Requirement, value.as_i64().unwrap_or(0))) { "Requirement " (plain(value)) }
                        }
                        @else if field.ends_with("_at") { (short_time(&plain(value))) }
                        @else { (plain(value)) }
                    }
                }
            }
        }
        @for (field, label) in DETAIL_TEXTS {
            @if let Some(text) = str_of(&v, field) {
                h2 { (label) }
                p.prose { (text) }
            }
        }
        @for (rel, label, rel_kind) in [("requirements", "Requirements", Kind::Requirement), ("evidence", "Evidence", Kind::Evidence), ("risks", "Risks", Kind::Risk)] {
            @if let Some(list) = v.get(rel) {
                (related(label, rel_kind, list))
            }
        }
        @if let Some(h) = v.get("history") {
            h2 { "Status history" }
            @let items = h.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            @if items.is_empty() { p { "No status change recorded." } }
            @else {
                ol.timeline {
                    @for item in &items {
                        li {
                            time datetime=(str_of(item, "changed_at").unwrap_or_default()) { (str_of(item, "changed_at").map(short_time).unwrap_or_default()) }
                            @match str_of(item, "from_status") {
                                Some(from) => { (status_badge(Some(kind), from)) " → " }
                                None => { "Created as " }
                            }
                            (status_badge(Some(kind), str_of(item, "to_status").unwrap_or("?")))
                            @if let Some(who) = str_of(item, "changed_by_name") { " by " (who) }
                        }
                    }
                }
            }
        }
    };
    layout(Some(session), &title, Nav::None, main)
}

/// `2026-11-30T09:15:02.123+00:00` → `2026-11-30 09:15 UTC`.
fn short_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_owned())
}

fn related(label: &str, kind: Kind, list: &Value) -> Markup {
    let items = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = list.get("total").and_then(Value::as_u64).unwrap_or(0);
    html! {
        h2 { (label) " (" (total) ")" }
        @if items.is_empty() { p { "None." } }
        @else {
            div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways)" {
                table {
                    thead { tr { th scope="col" { "Title" } th scope="col" { "Status" } th scope="col" { "Dates" } } }
                    tbody {
                        @for item in &items {
                            @let id = item.get("id").and_then(Value::as_i64).unwrap_or(0);
                            tr {
                                td {
                                    @if let Some(c) = str_of(item, "control") { (c) " " }
                                    a href=(paths::detail(kind, id)) { (str_of(item, "title").unwrap_or("(untitled)")) }
                                }
                                td { @if let Some(s) = str_of(item, "status") { (status_badge(Some(kind), s)) } }
                                td {
                                    @if let Some(d) = str_of(item, "due_date") { "due " (d) }
                                    @if let Some(d) = str_of(item, "collected_on") { "collected " (d) }
                                    @if let Some(d) = str_of(item, "expires_on") { ", expires " (d) }
                                    @if let Some(s) = item.get("residual_score").and_then(Value::as_i64) { "residual " (s) }
                                }
                            }
                        }
                    }
                }
            }
            @if total > items.len() as u64 { p { "Showing " (items.len()) " of " (total) "." } }
        }
    }
}

/// What the dashboard's filter form offers: the caller's frameworks and
/// certifications (an auditor: its own).
pub struct DashboardChoices {
    pub frameworks: Vec<(String, String)>,
    pub certifications: Vec<(i64, String)>,
}

impl DashboardChoices {
    pub async fn load(state: &AppState, session: &Session) -> Result<Self, ApiError> {
        let scope = &session.scope;
        let certs: Option<Vec<i64>> = scope
            .certifications
            .as_ref()
            .map(|c| c.iter().copied().collect());
        let certifications: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, name FROM certifications WHERE organization_id = $1 \
             AND ($2::bigint[] IS NULL OR id = ANY($2)) ORDER BY name, id",
        )
        .bind(scope.org_id)
        .bind(&certs)
        .fetch_all(&state.pool)
        .await?;
        let frameworks: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT f.slug, f.name FROM certifications x JOIN frameworks f ON f.id = x.framework_id \
             WHERE x.organization_id = $1 AND ($2::bigint[] IS NULL OR x.id = ANY($2)) ORDER BY f.name",
        )
        .bind(scope.org_id)
        .bind(&certs)
        .fetch_all(&state.pool)
        .await?;
        Ok(Self {
            frameworks,
            certifications,
        })
    }
}

/// Search filters that narrow a count the way the dashboard is narrowed; `None`
/// when the search cannot express it (a report as of another day).
fn search_scope(pairs: &[(String, String)]) -> Option<Vec<(String, String)>> {
    if value_of(pairs, "as_of").is_some() {
        return None;
    }
    Some(
        pairs
            .iter()
            .filter(|(k, _)| k == "framework" || k == "certification")
            .cloned()
            .collect(),
    )
}

/// The search listing exactly what a KPI counts, where the search can say it.
fn kpi_search(kpi: &Kpi, pairs: &[(String, String)]) -> Option<String> {
    let filters: &[(&str, &str)] = match kpi.key {
        "failed_requirements" => &[("kind", "requirement"), ("status", "failed")],
        "overdue_requirements" => &[("kind", "requirement"), ("due", "overdue")],
        "overdue_certifications" => &[("kind", "certification"), ("due", "overdue")],
        _ => return None,
    };
    let mut p = search_scope(pairs)?;
    p.extend(
        filters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    p.push(("collapse".into(), "none".into()));
    Some(url(paths::SEARCH, &p))
}

fn kpi_state(state: KpiState) -> (&'static str, &'static str, &'static str) {
    match state {
        KpiState::Good => ("✓", "On target", "good"),
        KpiState::Warning => ("!", "Warning", "warn"),
        KpiState::Breach => ("✗", "Off target", "bad"),
        KpiState::NoData => ("–", "No data", "none"),
    }
}

/// The KPI tiles (also served alone for the live refresh).
pub fn kpi_tiles(report: &Report, pairs: &[(String, String)]) -> Markup {
    html! {
        ul #kpis .tiles aria-label="Key indicators" {
            @for k in &report.kpis {
                @let (sign, words, tone) = kpi_state(k.state);
                li.tile data-kpi=(k.key) {
                    h3 { (k.label) }
                    p.value {
                        @match (kpi_search(k, pairs), k.value) {
                            (Some(href), Some(v)) => { a href=(href) aria-label={ (k.label) ": " (v) ", list them" } { (v) } }
                            (_, v) => { (certscope_reports::model::Figure::show(v)) }
                        }
                    }
                    p class={ "state status-" (tone) } { span aria-hidden="true" { (sign) " " } (words) }
                    p { "Target " (k.target) ", warning at " (k.warning) }
                    p {
                        "Previously " (certscope_reports::model::Figure::show(k.previous))
                        " (" (k.previous_as_of) ")"
                        @match k.improving {
                            Some(true) => { " — improving" }
                            Some(false) => { " — worsening" }
                            None => { " — unchanged" }
                        }
                    }
                }
            }
        }
    }
}

fn heatmap_svg(grid: &Grid, residual: bool, pairs: &[(String, String)], caption: &str) -> Markup {
    const CELL: u32 = 60;
    const LEFT: u32 = 34;
    const TOP: u32 = 8;
    let size = LEFT + 5 * CELL + 4;
    let height = TOP + 5 * CELL + 34;
    let which = if residual { "residual" } else { "inherent" };
    html! {
        figure.heatmap {
            figcaption { h3 { (caption) } }
            svg viewBox={ "0 0 " (size) " " (height) } aria-label={ (caption) ": " (grid.total) " risks by likelihood and impact; each cell shows its count and links to its risks" } {
                @for likelihood in (1..=5u8).rev() {
                    @for impact in 1..=5u8 {
                        @let cell = grid.cell(likelihood, impact);
                        @let count = cell.map_or(0, |c| c.count);
                        @let level = RiskLevel::of_score(likelihood * impact);
                        @let x = LEFT + u32::from(impact - 1) * CELL;
                        @let y = TOP + u32::from(5 - likelihood) * CELL;
                        @let href = cell_url(pairs, which, likelihood, impact);
                        a href=(href) aria-label={ "Likelihood " (likelihood) ", impact " (impact) ", " (level.label()) ": " (count) " risks" } {
                            rect class={ "cell l-" (level.as_str()) } x=(x) y=(y) width=(CELL) height=(CELL) {}
                            text x=(x + CELL / 2) y=(y + CELL / 2 + 5) { (count) }
                        }
                    }
                }
                @for i in 1..=5u32 {
                    text.axis x=(LEFT + (i - 1) * CELL + CELL / 2) y=(TOP + 5 * CELL + 14) { (i) }
                    text.axis x=(LEFT - 12) y=(TOP + (5 - i) * CELL + CELL / 2 + 4) { (i) }
                }
                text.axis x=(LEFT + 5 * CELL / 2) y=(TOP + 5 * CELL + 30) { "Impact →" }
            }
            p.sr-only { "Rows are likelihood 5 (top) to 1; columns impact 1 to 5." }
        }
    }
}

/// The page listing the risks of one heat-map cell, with the dashboard's filters.
fn cell_url(pairs: &[(String, String)], grid: &str, likelihood: u8, impact: u8) -> String {
    let mut p = pairs.to_vec();
    p.extend([
        ("grid".to_owned(), grid.to_owned()),
        ("likelihood".to_owned(), likelihood.to_string()),
        ("impact".to_owned(), impact.to_string()),
    ]);
    url(paths::HEAT_CELL, &p)
}

fn trend_svg(report: &Report) -> Markup {
    let points = &report.trends.points;
    let (w, h, left, bottom) = (640.0f64, 200.0f64, 40.0f64, 24.0f64);
    let n = points.len().max(2) as f64 - 1.0;
    let xy = |i: usize, pct: f64| {
        (
            left + (w - left - 10.0) * (i as f64) / n,
            10.0 + (h - bottom - 10.0) * (1.0 - pct / 100.0),
        )
    };
    let path: String = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = xy(i, p.readiness_pct);
            format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" })
        })
        .collect();
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (w) " " (h) } role="img" aria-labelledby="trend-title" {
                title #trend-title { "Readiness over the period, from "
                    (points.first().map_or(0.0, |p| p.readiness_pct)) "% to "
                    (points.last().map_or(0.0, |p| p.readiness_pct)) "%" }
                @for pct in [0.0, 25.0, 50.0, 75.0, 100.0] {
                    @let (_, y) = xy(0, pct);
                    line.grid x1=(left) x2=(w - 10.0) y1=(y) y2=(y) {}
                    text x="2" y=(y + 4.0) { (pct) "%" }
                }
                path.line d=(path) {}
                @for (i, p) in points.iter().enumerate() {
                    @let (x, y) = xy(i, p.readiness_pct);
                    circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3" {}
                }
                @if let (Some(first), Some(last)) = (points.first(), points.last()) {
                    text x=(left) y=(h - 4.0) { (first.date) }
                    text x=(w - 80.0) y=(h - 4.0) { (last.date) }
                }
            }
            details {
                summary { "Readiness by date (table)" }
                div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways)" { table {
                    thead { tr { th scope="col" { "Date" } th.num scope="col" { "Readiness" } th.num scope="col" { "Overdue requirements" } th.num scope="col" { "Open high or critical risks" } } }
                    tbody { @for p in points { tr { td { (p.date) } td.num { (format!("{:.1}%", p.readiness_pct)) } td.num { (p.overdue_requirements) } td.num { (p.open_risks.high_or_worse()) } } } }
                } }
            }
        }
    }
}

fn section_csv_link(section: &str, pairs: &[(String, String)]) -> Markup {
    html! { a href=(url(&paths::SECTION.replace("{section}", section), pairs)) download { "CSV" } }
}

pub fn dashboard(
    session: &Session,
    pairs: &[(String, String)],
    report: &Report,
    choices: &DashboardChoices,
) -> Markup {
    let chosen = |name: &str, value: &str| value_of(pairs, name) == Some(value);
    let main = html! {
        h1 { "Compliance posture — " (report.meta.organization.name) }
        form.filters data-clean method="get" action=(paths::DASHBOARD) aria-label="Dashboard filters" {
            label { "Framework"
                select name="framework" {
                    option value="" { "All frameworks" }
                    @for (slug, name) in &choices.frameworks { option value=(slug) selected[chosen("framework", slug)] { (name) } }
                }
            }
            label { "Certification"
                select name="certification" {
                    option value="" { "All certifications" }
                    @for (id, name) in &choices.certifications { option value=(id) selected[chosen("certification", &id.to_string())] { (name) } }
                }
            }
            label { "As of" input type="date" name="as_of" value=(value_of(pairs, "as_of").unwrap_or_default()); }
            label { "Interval"
                select name="interval" {
                    option value="" { "Default" }
                    @for i in ["week", "month", "quarter"] { option value=(i) selected[chosen("interval", i)] { (i) } }
                }
            }
            button type="submit" { "Show" }
        }
        div.tools {
            a.button href=(url(paths::BOARD_PDF, pairs)) download { "Download board pack (PDF)" }
            p.live data-live aria-live="polite" { span data-state-text { "Live updates need JavaScript" } }
        }
        p.summary { "As of " (report.meta.as_of) "; " (report.meta.period.from) " to " (report.meta.period.to) " by " (report.meta.period.interval.as_str()) "." }
        h2 { "Key indicators " small { (section_csv_link("kpis", pairs)) } }
        (kpi_tiles(report, pairs))
        h2 { "Risk heat-maps " small { (section_csv_link("heatmap", pairs)) } }
        div.heatmaps {
            (heatmap_svg(&report.heatmap.inherent, false, pairs, "Inherent risk"))
            (heatmap_svg(&report.heatmap.residual, true, pairs, "Residual risk"))
        }
        div.cols {
            section {
                h2 { "Readiness by framework " small { (section_csv_link("posture", pairs)) } }
                (posture_table(&report.posture.frameworks))
                h2 { "Readiness by certification" }
                (posture_table(&report.posture.certifications))
            }
            section {
                h2 { "Readiness trend " small { (section_csv_link("trends", pairs)) } }
                (trend_svg(report))
            }
        }
        h2 { "Forecast " small { (section_csv_link("forecast", pairs)) } }
        p { "Projected from the " (report.forecast.window_days) "-day burn-up. Back-tested over "
            (report.forecast.backtest.certifications) " certifications at " (report.forecast.backtest.horizon_days)
            " days: mean error " (format!("{:.1}", report.forecast.backtest.mean_abs_error_pct)) " points, worst "
            (format!("{:.1}", report.forecast.backtest.max_abs_error_pct)) "." }
        div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways)" { table {
            thead { tr { th scope="col" { "Certification" } th scope="col" { "Target" } th scope="col" { "Projected completion" } th scope="col" { "Outlook" } th.num scope="col" { "Remaining" } } }
            tbody {
                @for f in &report.forecast.certifications {
                    tr {
                        td { a href=(paths::detail(Kind::Certification, f.certification_id)) { (f.name) } }
                        td { (f.target_date) }
                        td { @match f.projected_completion { Some(d) => { (d) } None => { "not at the current pace" } } }
                        td { (f.outlook.as_str().replace('_', " ")) @if let Some(late) = f.days_late { " (" (late) " days late)" } }
                        td.num { (f.remaining) }
                    }
                }
            }
        } }
        div.cols {
            section {
                h2 { "Overdue (" (report.overdue.overdue.total) ") " small { (section_csv_link("overdue", pairs)) } }
                (due_list(&report.overdue.overdue.items))
            }
            section {
                h2 { "Due in the next " (report.overdue.horizon_days) " days (" (report.overdue.upcoming.total) ")" }
                (due_list(&report.overdue.upcoming.items))
            }
        }
        section aria-labelledby="feed-title" {
            h2 #feed-title { "Activity" }
            ul #feed .feed aria-live="polite" aria-label="Recent changes" tabindex="0" {}
        }
    };
    layout(Some(session), "Dashboard", Nav::Dashboard, main)
}

fn posture_table(rows: &[certscope_reports::model::PostureRow]) -> Markup {
    html! {
        div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways)" { table {
            thead { tr { th scope="col" { "Name" } th.num scope="col" { "Readiness" } th.num scope="col" { "Implemented" } th.num scope="col" { "Failed" } th.num scope="col" { "Evidence coverage" } } }
            tbody {
                @for r in rows {
                    tr {
                        td { (r.label) }
                        td.num { (format!("{:.1}%", r.readiness_pct)) }
                        td.num { (r.counts.implemented) " / " (r.counts.applicable()) }
                        td.num { (r.counts.failed) }
                        td.num { (format!("{:.1}%", r.evidence_coverage_pct)) }
                    }
                }
            }
        } }
    }
}

fn due_list(items: &[certscope_reports::model::DueItem]) -> Markup {
    html! {
        @if items.is_empty() { p { "Nothing." } }
        @else {
            ul {
                @for i in items.iter().take(15) {
                    @let kind = Kind::parse(i.kind.as_str());
                    li {
                        @if let Some(k) = kind { a href=(paths::detail(k, i.id)) { (i.title) } } @else { (i.title) }
                        " — " (i.date)
                        @if i.days < 0 { " (" (-i.days) " days ago)" } @else { " (in " (i.days) " days)" }
                        @if let Some(o) = &i.owner { ", " (o) }
                    }
                }
            }
            @if items.len() > 15 { p { "and " (items.len() - 15) " more in the CSV." } }
        }
    }
}

pub fn heat_cell(
    session: &Session,
    pairs: &[(String, String)],
    residual: bool,
    (likelihood, impact): (u8, u8),
    risks: &[Value],
) -> Markup {
    let which = if residual { "Residual" } else { "Inherent" };
    let title = format!("{which} risk: likelihood {likelihood}, impact {impact}");
    let main = html! {
        p { a href=(url(paths::DASHBOARD, pairs)) { "← Dashboard" } }
        h1 { (title) }
        p.summary role="status" { (risks.len()) " risks, " (RiskLevel::of_score(likelihood * impact).label()) }
        @if risks.is_empty() { p { "No risk is in this cell." } }
        @else {
            div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways)" { table {
                thead { tr { th scope="col" { "Risk" } th scope="col" { "Status" } th scope="col" { "Owner" } th.num scope="col" { "Inherent" } th.num scope="col" { "Residual" } } }
                tbody {
                    @for r in risks {
                        tr data-risk=(r.get("id").and_then(Value::as_i64).unwrap_or(0)) {
                            td { a href=(paths::detail(Kind::Risk, r.get("id").and_then(Value::as_i64).unwrap_or(0))) { (str_of(r, "title").unwrap_or("(untitled)")) } }
                            td { @if let Some(s) = str_of(r, "status") { (status_badge(Some(Kind::Risk), s)) } }
                            td { (str_of(r, "owner").unwrap_or("—")) }
                            td.num { (r.get("inherent_score").map(plain).unwrap_or_default()) }
                            td.num { (r.get("residual_score").map(plain).unwrap_or_default()) }
                        }
                    }
                }
            } }
        }
    };
    layout(Some(session), &title, Nav::Dashboard, main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_keep_only_highlights() {
        let s = snippet("a <b>word</b> &amp; &lt;script&gt; <img src=x> & more").into_string();
        assert_eq!(
            s,
            "a <mark>word</mark> &amp; &lt;script&gt; &lt;img src=x&gt; &amp; more"
        );
        // an unclosed highlight is closed
        assert_eq!(snippet("<b>x").into_string(), "<mark>x</mark>");
    }
}
