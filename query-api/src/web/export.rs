//! "Export CSV": every hit of the page's search (up to [`MAX_ROWS`]), with its
//! filters and sort, streamed page by page on one pinned searcher (the
//! search's cursor), so a large export neither waits nor holds everything.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use certscope_reports::csv::Csv;
use futures_util::stream;
use serde_json::Value;

use super::session::Session;
use super::{PageError, page_pairs, pages, search_json};
use crate::AppState;

/// The most rows one export holds.
pub const MAX_ROWS: usize = 100_000;
const PAGE: usize = 100;

const COLUMNS: [&str; 13] = [
    "kind",
    "id",
    "title",
    "status",
    "control",
    "framework",
    "certification",
    "owner",
    "risk_level",
    "due_date",
    "expires_on",
    "updated_at",
    "link",
];

fn text(hit: &Value, field: &str) -> String {
    match hit.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn row(csv: &mut Csv, hit: &Value) {
    for column in &COLUMNS[..COLUMNS.len() - 1] {
        csv.text(&text(hit, column));
    }
    let link = pages::hit_link(hit).unwrap_or_default();
    csv.text(&link);
    csv.end();
}

struct Export {
    state: AppState,
    session: Session,
    pairs: Vec<(String, String)>,
    cursor: Option<String>,
    written: usize,
    csv: Csv,
    done: bool,
}

pub async fn search_csv(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let mut pairs = page_pairs(raw, &["cursor", "limit", pages::TRAIL, "collapse"])?;
    pairs.push(("limit".into(), PAGE.to_string()));
    // one row per document: what the counts say
    pairs.push(("collapse".into(), "none".into()));
    pairs.push(("facets".into(), "none".into()));
    // the first page is asked for before answering, so a bad search is a
    // 400 page rather than a broken download
    let first = search_json(&state, &session, &pairs).await?;
    let mut export = Export {
        state,
        session,
        pairs,
        cursor: None,
        written: 0,
        csv: Csv::new(&COLUMNS),
        done: false,
    };
    let header = export.take_page(&first);
    let body = stream::unfold((export, Some(header)), |(mut e, pending)| async move {
        if let Some(chunk) = pending {
            return Some((Ok::<_, std::io::Error>(chunk), (e, None)));
        }
        if e.done {
            return None;
        }
        let mut pairs = e.pairs.clone();
        if let Some(c) = &e.cursor {
            pairs.push(("cursor".into(), c.clone()));
        }
        match search_json(&e.state, &e.session, &pairs).await {
            Ok(page) => {
                let chunk = e.take_page(&page);
                Some((Ok(chunk), (e, None)))
            }
            Err(err) => {
                // the download ends short; said in the log, not in the file
                tracing::warn!(error = %err, rows = e.written, "search export ended early");
                None
            }
        }
    });
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"certscope-search.csv\""),
    );
    Ok(r)
}

impl Export {
    /// The rows of one answer page; notes where the next one starts.
    fn take_page(&mut self, page: &Value) -> String {
        let hits = page
            .get("hits")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for hit in hits {
            if self.written >= MAX_ROWS {
                break;
            }
            row(&mut self.csv, hit);
            self.written += 1;
        }
        self.cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.done = self.cursor.is_none() || self.written >= MAX_ROWS || hits.is_empty();
        self.csv.take()
    }
}
