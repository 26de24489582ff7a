//! `GET /metrics`: Prometheus text exposition of the indexer's figures and the
//! database pool, and per-route HTTP latency histograms and status counts.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use certscope_domain::Kind;
use certscope_indexer::metrics::Histogram;

use crate::AppState;
use crate::error::ApiError;

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    histogram_series(out, name, "", h);
}

/// The series of one histogram; `labels` like `route="/v1/search",`.
fn histogram_series(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let (buckets, sum, count) = h.snapshot();
    for (bound, cumulative) in buckets {
        let le = if bound.is_infinite() {
            "+Inf".to_owned()
        } else {
            bound.to_string()
        };
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
    }
    let trimmed = labels.trim_end_matches(',');
    let _ = writeln!(
        out,
        "{name}_sum{{{trimmed}}} {sum}\n{name}_count{{{trimmed}}} {count}"
    );
}

fn http_figures(out: &mut String, state: &AppState) {
    let search = &state.api.search;
    histogram(
        out,
        "certscope_search_seconds",
        "time to execute a search on the index (cache misses)",
        &search.latency,
    );
    let _ = writeln!(
        out,
        "# TYPE certscope_search_executions_total counter\ncertscope_search_executions_total {}",
        search.executed.load(Relaxed)
    );
    histogram(
        out,
        "certscope_search_warm_seconds",
        "time to warm each new searcher (decode new segments' columns, compute recent statistics on large ones) before the indexer publishes it",
        &search.warmer.latency,
    );
    let _ = writeln!(
        out,
        "# TYPE certscope_search_warmed_segments_total counter\ncertscope_search_warmed_segments_total {}",
        search.warmer.segments.load(Relaxed)
    );
    let (pinning, pinned) = search.pinned.figures();
    gauge(
        out,
        "certscope_search_pinned_searchers",
        "index searchers kept for cursors",
        pinned,
    );
    gauge(
        out,
        "certscope_search_pinning_organizations",
        "organizations holding cursor pins",
        pinning,
    );
    let caches: Vec<_> = search
        .cache_figures()
        .into_iter()
        .chain([("search_responses", state.api.cache.figures())])
        .chain(state.api.reports.cache_figures())
        .collect();
    let _ = writeln!(
        out,
        "# HELP certscope_cache_entries entries of the bounded in-memory caches (search facet and sort columns, visible documents and statistics by segment, search responses, report models, rendered PDFs)\n# TYPE certscope_cache_entries gauge"
    );
    for (cache, (entries, _)) in &caches {
        let _ = writeln!(
            out,
            "certscope_cache_entries{{cache=\"{cache}\"}} {entries}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP certscope_cache_bytes bytes held by those caches (estimated)\n# TYPE certscope_cache_bytes gauge"
    );
    for (cache, (_, bytes)) in &caches {
        let _ = writeln!(out, "certscope_cache_bytes{{cache=\"{cache}\"}} {bytes}");
    }
    if let Some((in_use, held)) = crate::memory::heap() {
        gauge(
            out,
            "certscope_heap_in_use_bytes",
            "bytes the allocator has handed out and not had back",
            in_use,
        );
        gauge(
            out,
            "certscope_heap_held_bytes",
            "bytes the allocator holds from the system (in use, or free and kept)",
            held,
        );
    }
    let routes = state.api.routes.all();
    let _ = writeln!(
        out,
        "# HELP certscope_http_request_seconds request latency per route\n# TYPE certscope_http_request_seconds histogram"
    );
    for (route, f) in &routes {
        histogram_series(
            out,
            "certscope_http_request_seconds",
            &format!("route=\"{route}\","),
            &f.latency,
        );
    }
    let _ = writeln!(
        out,
        "# HELP certscope_http_responses_total responses per route and status class\n# TYPE certscope_http_responses_total counter"
    );
    for (route, f) in &routes {
        for (i, class) in ["2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
            let _ = writeln!(
                out,
                "certscope_http_responses_total{{route=\"{route}\",status=\"{class}\"}} {}",
                f.statuses[i].load(Relaxed)
            );
        }
    }
}

fn event_figures(out: &mut String, state: &AppState) {
    let hub = &state.events;
    let (last_id, connections, rooms, queued) = hub.figures();
    gauge(
        out,
        "certscope_events_last_id",
        "id of the newest live event",
        last_id,
    );
    gauge(
        out,
        "certscope_events_connections",
        "open live event connections",
        connections,
    );
    gauge(
        out,
        "certscope_events_subscriptions",
        "rooms followed over all connections",
        rooms,
    );
    gauge(
        out,
        "certscope_events_queued",
        "events queued to connections, unsent",
        queued,
    );
    let m = &hub.metrics;
    let counters = [
        ("published", "events received by this server", &m.published),
        ("delivered", "events queued to connections", &m.delivered),
        (
            "replayed",
            "retained events replayed to resuming clients",
            &m.replayed,
        ),
        (
            "resyncs",
            "resumes refused: the last id was out of reach",
            &m.resyncs,
        ),
        ("refused_rooms", "subscriptions refused", &m.refused_rooms),
        (
            "bad_messages",
            "malformed client messages answered with an error",
            &m.bad_messages,
        ),
        (
            "refused_connections",
            "connections refused by the per-token limit",
            &m.refused_connections,
        ),
        (
            "snapshots_read",
            "certification snapshots read from the database",
            &m.snapshots_read,
        ),
        (
            "snapshots_shared",
            "certification snapshots shared from a read that began after the subscription",
            &m.snapshots_shared,
        ),
    ];
    for (name, help, c) in counters {
        let _ = writeln!(
            out,
            "# HELP certscope_events_{name}_total {help}\n# TYPE certscope_events_{name}_total counter\ncertscope_events_{name}_total {}",
            c.load(Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP certscope_events_disconnects_total connections dropped by the server\n# TYPE certscope_events_disconnects_total counter\n\
         certscope_events_disconnects_total{{reason=\"slow_consumer\"}} {}\n\
         certscope_events_disconnects_total{{reason=\"dead_peer\"}} {}",
        m.dropped_slow.load(Relaxed),
        m.dropped_dead.load(Relaxed)
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

/// With `metrics_token` configured, `/metrics` answers only scrapers that send
/// it as a bearer token (compared in constant time); without it, anyone who can
/// reach the address may read the figures (they carry counts, never data).
fn check_scraper(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.api.config.metrics_token else {
        return Ok(());
    };
    let given = crate::auth::bearer_from(headers)?.ok_or_else(|| {
        ApiError::Unauthorized("`/metrics` needs `Authorization: Bearer <metrics token>`".into())
    })?;
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "the metrics token does not match".into(),
        ))
    }
}

/// Prometheus metrics (text exposition format); a bearer token when the
/// server is configured with one.
#[utoipa::path(get, path = crate::paths::PROMETHEUS, tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "The metrics token is missing or wrong", body = crate::openapi::schemas::ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    check_scraper(&state, &headers)?;
    let mut out = String::with_capacity(4096);
    gauge(
        &mut out,
        "certscope_db_pool_connections",
        "open database connections",
        state.pool.size(),
    );
    gauge(
        &mut out,
        "certscope_db_pool_idle",
        "idle database connections",
        state.pool.num_idle(),
    );
    gauge(
        &mut out,
        "certscope_reports_computed",
        "report models computed (cache misses) since start",
        state.api.reports.computed(),
    );
    gauge(
        &mut out,
        "certscope_searches_shed",
        "searches and suggestions answered 503 because the server was at capacity",
        state.api.admission.shed(),
    );
    let _ = writeln!(
        out,
        "# HELP certscope_searches_shed_by_reason those refusals by the limit met: queue_full (the waiting line was full), late (waited over the late-after time while overload refused searches), max_wait (waited the longest wait)\n# TYPE certscope_searches_shed_by_reason gauge"
    );
    for reason in crate::admission::Shed::ALL {
        let _ = writeln!(
            out,
            "certscope_searches_shed_by_reason{{reason=\"{}\"}} {}",
            reason.as_str(),
            state.api.admission.shed_for(reason)
        );
    }
    let (position, segments) = {
        let view = state.views.borrow();
        let view = view.as_ref();
        let segments = view.map(|v| {
            // the searcher's own segment list: what a search walks
            let searcher = v.reader.searcher();
            let readers = searcher.segment_readers();
            let deleted: u64 = readers
                .iter()
                .map(|r| u64::from(r.num_deleted_docs()))
                .sum();
            (readers.len(), deleted)
        });
        (view.map(|v| v.position.clone()), segments)
    };
    if let Some((count, deleted)) = segments {
        gauge(
            &mut out,
            "certscope_index_segments",
            "segments of the published index view",
            count,
        );
        gauge(
            &mut out,
            "certscope_index_deleted_documents",
            "deleted documents the published view's segments still hold (until merged away)",
            deleted,
        );
    }
    gauge(
        &mut out,
        "certscope_index_open",
        "1 when an index is open for reading",
        u8::from(position.is_some()),
    );
    if let Some(m) = &state.indexer {
        gauge(
            &mut out,
            "certscope_index_generation",
            "commits that advanced the index position",
            m.generation.load(Relaxed),
        );
        gauge(
            &mut out,
            "certscope_index_position_xmax",
            "xmax of the index position's snapshot",
            m.position_xmax.load(Relaxed),
        );
        gauge(
            &mut out,
            "certscope_index_lag_changes",
            "committed changes not yet indexed",
            m.pending_changes.load(Relaxed),
        );
        gauge(
            &mut out,
            "certscope_index_lag_seconds",
            "age of the oldest committed change not yet indexed",
            m.behind_millis.load(Relaxed) as f64 / 1000.0,
        );
        let _ = writeln!(
            out,
            "# HELP certscope_index_documents live documents per kind\n# TYPE certscope_index_documents gauge"
        );
        for (i, kind) in Kind::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "certscope_index_documents{{kind=\"{}\"}} {}",
                kind.as_str(),
                m.docs[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# TYPE certscope_index_changes_applied_total counter\ncertscope_index_changes_applied_total {}",
            m.changes_applied.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE certscope_index_rebuilds_total counter\ncertscope_index_rebuilds_total {}",
            m.rebuilds.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE certscope_index_errors_total counter\ncertscope_index_errors_total {}",
            m.errors.load(Relaxed)
        );
        histogram(
            &mut out,
            "certscope_index_batch_changes",
            "changes per applied batch",
            &m.batch_changes,
        );
        histogram(
            &mut out,
            "certscope_index_batch_documents",
            "documents written per batch after fan-out",
            &m.batch_docs,
        );
        histogram(
            &mut out,
            "certscope_index_commit_seconds",
            "index commit durations",
            &m.commit_seconds,
        );
    }
    event_figures(&mut out, &state);
    http_figures(&mut out, &state);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
