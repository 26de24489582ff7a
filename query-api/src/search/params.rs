//! Request decoding: query-string pairs into a validated search request. Every
//! unknown parameter, bad value or out-of-range limit is a precise 400.

use certscope_domain::Kind;
use certscope_indexer::Snapshot;
use chrono::NaiveDate;

use certscope_domain::{DueBucket, RiskLevel, Status};

use super::collect::{Facet, Selections, Sort, SortBy};
use super::cursor::Cursor;
use super::parser::{self, Node};
use crate::error::ApiError;

pub const MAX_QUERY_CHARS: usize = 512;
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
pub const DEFAULT_FACET_SIZE: usize = 10;
pub const MAX_FACET_SIZE: usize = 100;
pub const MAX_VALUES_PER_FACET: usize = 50;

/// Date fields that take `<name>_after` / `<name>_before` filters, and sorts.
pub const DATE_FIELDS: [&str; 5] = ["due", "expires", "collected", "target", "updated"];
pub const SORTS: [&str; 9] = [
    "relevance",
    "due_date",
    "expires_on",
    "collected_on",
    "target_date",
    "updated_at",
    "residual_score",
    "inherent_score",
    "title",
];

pub fn date_field(name: &str) -> &'static str {
    match name {
        "due" => "due_date",
        "expires" => "expires_on",
        "collected" => "collected_on",
        "target" => "target_date",
        _ => "updated_at",
    }
}

/// An inclusive date range on a date field, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DateRange {
    pub field: &'static str,
    pub from: Option<i64>,
    /// Exclusive: the start of the day after `<name>_before`'s date... see [`parse`].
    pub until: Option<i64>,
}

/// What a route lets a request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Search,
    /// A listing of one kind (certifications, requirements).
    Listing(Kind),
}

#[derive(Debug, Clone)]
pub struct SearchParams {
    pub q: String,
    pub node: Option<Node>,
    pub selections: Selections,
    pub ranges: Vec<DateRange>,
    pub sort: Sort,
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub facets: Vec<Facet>,
    pub facet_size: usize,
    pub min_position: Option<Snapshot>,
    pub kind: Option<Kind>,
    /// `collapse=control` (the default when kinds are mixed): a control and
    /// its requirements are one result; `collapse=none`: every document.
    pub collapse: bool,
    /// The request without cursor and position: what a cursor is bound to.
    pub canonical: String,
}

fn parse_date(name: &str, value: &str) -> Result<i64, ApiError> {
    let d = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
        ApiError::bad(
            "bad_date",
            format!("`{name}`: `{value}` is not a date; expected YYYY-MM-DD"),
        )
    })?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&chrono::Datelike::year(&d)) {
        return Err(ApiError::bad(
            "bad_date",
            format!("`{name}`: `{value}` is outside the years {MIN_YEAR}..{MAX_YEAR}"),
        ));
    }
    Ok(d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp()))
}

/// Dates outside these years are refused (the index stores nanoseconds in an i64).
pub const MIN_YEAR: i32 = 1900;
pub const MAX_YEAR: i32 = 2200;

fn parse_count(name: &str, value: &str, max: usize) -> Result<usize, ApiError> {
    let n: i64 = value.trim().parse().map_err(|_| {
        ApiError::bad(
            "bad_parameter",
            format!("`{name}` must be a whole number, not `{value}`"),
        )
    })?;
    if n < 1 || n as u64 > max as u64 {
        return Err(ApiError::bad(
            "bad_parameter",
            format!("`{name}` must be between 1 and {max}, not {n}"),
        ));
    }
    Ok(n as usize)
}

pub fn parse_position(value: &str) -> Result<Snapshot, ApiError> {
    Snapshot::parse(value).map_err(|_| {
        ApiError::bad(
            "bad_position",
            format!("`min_position`: `{value}` is not an index position; expected xmin:xmax:xip,... as returned in `position`"),
        )
    })
}

fn single<'a>(seen: &mut Vec<&'a str>, name: &'a str) -> Result<(), ApiError> {
    if seen.contains(&name) {
        return Err(ApiError::bad(
            "bad_parameter",
            format!("`{name}` given more than once"),
        ));
    }
    seen.push(name);
    Ok(())
}

/// Decodes query-string pairs for `route`.
pub fn parse(pairs: &[(String, String)], route: Route) -> Result<SearchParams, ApiError> {
    let mut q = String::new();
    let mut selections = Selections::default();
    let mut bounds: Vec<(&'static str, Option<i64>, Option<i64>)> = Vec::new();
    let mut sort_text: Option<String> = None;
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = None;
    let mut facets: Option<Vec<Facet>> = None;
    let mut facet_size = DEFAULT_FACET_SIZE;
    let mut min_position = None;
    let mut collapse = None;
    let mut seen = Vec::new();
    let mut canonical: Vec<(&str, &str)> = Vec::new();
    for (name, value) in pairs {
        let name = name.as_str();
        if !matches!(name, "cursor" | "min_position") {
            canonical.push((name, value));
        }
        if let Some(facet) = Facet::parse(name) {
            if route != Route::Search && facet == Facet::Kind {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    "`kind` is fixed by this listing",
                ));
            }
            for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                let v = facet_value(facet, v)?;
                let list = selections.get_mut(facet);
                if !list.contains(&v) {
                    list.push(v);
                }
                if list.len() > MAX_VALUES_PER_FACET {
                    return Err(ApiError::bad(
                        "bad_parameter",
                        format!("at most {MAX_VALUES_PER_FACET} values of `{name}`"),
                    ));
                }
            }
            continue;
        }
        if let Some((field, side)) = name.rsplit_once('_')
            && matches!(side, "after" | "before")
            && let Some(field) = DATE_FIELDS.iter().find(|f| **f == field)
        {
            single(&mut seen, name)?;
            let t = parse_date(name, value)?;
            let entry = match bounds.iter_mut().find(|b| b.0 == date_field(field)) {
                Some(e) => e,
                None => {
                    bounds.push((date_field(field), None, None));
                    bounds.last_mut().ok_or_else(|| {
                        ApiError::internal("decoding date ranges", "a range just added is missing")
                    })?
                }
            };
            if side == "after" {
                entry.1 = Some(t);
            } else {
                entry.2 = Some(t);
            }
            continue;
        }
        match name {
            "q" => {
                single(&mut seen, "q")?;
                if value.chars().count() > MAX_QUERY_CHARS {
                    return Err(ApiError::bad(
                        "query_too_long",
                        format!("`q` is longer than {MAX_QUERY_CHARS} characters"),
                    ));
                }
                q = value.clone();
            }
            "sort" => {
                single(&mut seen, "sort")?;
                sort_text = Some(value.clone());
            }
            "limit" => {
                single(&mut seen, "limit")?;
                limit = parse_count("limit", value, MAX_LIMIT)?;
            }
            "cursor" => {
                single(&mut seen, "cursor")?;
                cursor = Some(Cursor::decode(value)?);
            }
            "facets" => {
                // repeated (`facets=a&facets=b`, how most generated clients
                // send a list) or comma-separated: the union
                let mut list = facets.take().unwrap_or_default();
                for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    if v == "none" {
                        continue;
                    }
                    let f = Facet::parse(v).ok_or_else(|| {
                        ApiError::bad(
                            "unknown_facet",
                            format!(
                                "unknown facet `{v}`; facets are {}",
                                Facet::ALL.map(Facet::name).join(", ")
                            ),
                        )
                    })?;
                    if !list.contains(&f) {
                        list.push(f);
                    }
                }
                facets = Some(list);
            }
            "facet_size" => {
                single(&mut seen, "facet_size")?;
                facet_size = parse_count("facet_size", value, MAX_FACET_SIZE)?;
            }
            "min_position" => {
                single(&mut seen, "min_position")?;
                min_position = Some(parse_position(value)?);
            }
            "collapse" if route == Route::Search => {
                single(&mut seen, "collapse")?;
                collapse = Some(match value.trim().to_lowercase().as_str() {
                    "control" => true,
                    "none" => false,
                    other => {
                        return Err(ApiError::bad(
                            "bad_parameter",
                            format!("`collapse`: unknown value `{other}`; allowed: control, none"),
                        ));
                    }
                });
            }
            other => {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!("unknown parameter `{other}`"),
                ));
            }
        }
    }
    let mut ranges = Vec::new();
    for (field, from, until) in bounds {
        if let (Some(a), Some(b)) = (from, until)
            && a > b
        {
            return Err(ApiError::bad(
                "bad_date",
                format!(
                    "the `{field}` range is inverted: its `after` date is later than its `before` date"
                ),
            ));
        }
        ranges.push(DateRange { field, from, until });
    }
    let node = parser::parse(&q).map_err(|e| ApiError::bad("bad_query", format!("`q`: {e}")))?;
    let sort = parse_sort(sort_text.as_deref(), node.is_some(), route)?;
    let facets = facets.unwrap_or_else(|| match route {
        Route::Search => Facet::ALL.to_vec(),
        Route::Listing(_) => vec![],
    });
    // by default only when kinds are mixed: a search of requirements lists
    // each certification's
    let collapse =
        collapse.unwrap_or(route == Route::Search && selections.get(Facet::Kind).len() != 1);
    canonical.sort();
    let canonical = serde_urlencoded::to_string(&canonical).unwrap_or_default();
    Ok(SearchParams {
        q,
        node,
        selections,
        ranges,
        sort,
        limit,
        cursor,
        facets,
        facet_size,
        min_position,
        kind: match route {
            Route::Search => None,
            Route::Listing(k) => Some(k),
        },
        collapse,
        canonical,
    })
}

/// A facet value as the index stores it, from people's spelling of it: kinds,
/// statuses, risk levels, due buckets, categories and treatments in any case,
/// with spaces or hyphens for underscores, or their labels ("In progress").
fn facet_value(facet: Facet, v: &str) -> Result<String, ApiError> {
    let bad =
        |message: String| ApiError::bad("bad_parameter", format!("`{}`: {message}", facet.name()));
    if v.chars().any(char::is_control) {
        return Err(bad("values cannot contain control characters".into()));
    }
    if v.len() > 200 {
        return Err(bad("value longer than 200 bytes".into()));
    }
    match facet {
        Facet::Certification if !v.trim().parse::<i64>().is_ok_and(|id| id > 0) => Err(bad(
            format!("unknown value `{v}`; allowed: certification ids (positive whole numbers)"),
        )),
        Facet::Certification => Ok(v.trim().to_owned()),
        Facet::Due => DueBucket::parse(&loose(v))
            .map(|b| b.as_str().to_owned())
            .ok_or_else(|| {
                bad(format!(
                    "unknown value `{v}`; allowed: {}",
                    DueBucket::ALL.map(|b| b.as_str()).join(", ")
                ))
            }),
        // people's names are matched against the directory by the route
        Facet::Owner => Ok(v.trim().to_owned()),
        _ => keyword_value(facet.name(), v).map_err(bad),
    }
}

/// `In progress`, `in-progress`, `IN_PROGRESS` → `in_progress`.
fn loose(v: &str) -> String {
    v.trim().to_lowercase().replace(['-', ' '], "_")
}

/// The stored value of a keyword field (`kind`, `status`, `risk_level`,
/// `category`, `treatment`, `framework`, `family`, `media_type`) for people's
/// spelling of it; an error that lists the allowed values when there is no such
/// value. One rule for the `field:value` syntax and facet parameters.
pub fn keyword_value(field: &str, v: &str) -> Result<String, String> {
    let names = |all: Vec<&'static str>| all.join(", ");
    let unknown = |allowed: String| format!("unknown value `{v}` of `{field}`; allowed: {allowed}");
    match field {
        "kind" => {
            let l = loose(v);
            Kind::ALL
                .into_iter()
                .find(|k| k.as_str() == l || format!("{}s", k.as_str()) == l)
                .map(|k| k.as_str().to_owned())
                .ok_or_else(|| unknown(names(Kind::ALL.iter().map(|k| k.as_str()).collect())))
        }
        "risk_level" => RiskLevel::parse(v)
            .map(|l| l.as_str().to_owned())
            .ok_or_else(|| unknown(names(RiskLevel::ALL.iter().map(|l| l.as_str()).collect()))),
        "status" => {
            let mut all: Vec<&'static str> = Vec::new();
            for kind in Kind::ALL {
                if let Some(s) = Status::parse_loose(kind, v) {
                    return Ok(s.as_str().to_owned());
                }
                for s in Status::all_of(kind) {
                    if !all.contains(&s.as_str()) {
                        all.push(s.as_str());
                    }
                }
            }
            Err(unknown(names(all)))
        }
        "category" | "treatment" => Ok(loose(v)),
        // slugs, family keys and media types are lowercase
        _ => Ok(v.trim().to_lowercase()),
    }
}

/// The orders of a search and of a listing without a query (the defaults
/// below): the ones whose columns are decoded before a searcher is published.
pub fn unqueried_orders() -> impl Iterator<Item = SortBy> {
    [Route::Search, Route::Listing(Kind::Evidence)]
        .into_iter()
        .filter_map(|route| parse_sort(None, false, route).ok())
        .map(|sort| sort.by)
}

fn parse_sort(text: Option<&str>, has_query: bool, route: Route) -> Result<Sort, ApiError> {
    let default = match (has_query, route) {
        (true, _) => "relevance",
        (false, Route::Search) => "-updated_at",
        (false, Route::Listing(Kind::Certification)) => "title",
        (false, Route::Listing(_)) => "due_date",
    };
    let text = text.unwrap_or(default);
    let (name, descending) = match text.strip_prefix('-') {
        Some(n) => (n, true),
        None => (text, false),
    };
    let by = match name {
        "relevance" => SortBy::Relevance,
        "title" => SortBy::Title,
        "residual_score" => SortBy::Number("residual_score"),
        "inherent_score" => SortBy::Number("inherent_score"),
        "due_date" => SortBy::Date("due_date"),
        "expires_on" => SortBy::Date("expires_on"),
        "collected_on" => SortBy::Date("collected_on"),
        "target_date" => SortBy::Date("target_date"),
        "updated_at" => SortBy::Date("updated_at"),
        other => {
            return Err(ApiError::bad(
                "bad_sort",
                format!(
                    "unknown sort `{other}`; sorts are {} (prefix `-` for descending)",
                    SORTS.join(", ")
                ),
            ));
        }
    };
    if by == SortBy::Relevance && !has_query {
        return Err(ApiError::bad(
            "bad_sort",
            "`sort=relevance` needs a query `q`",
        ));
    }
    Ok(Sort {
        by,
        // relevance is always best first
        descending: descending || by == SortBy::Relevance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).unwrap()
    }

    #[test]
    fn decodes_filters_sorts_and_limits() {
        let p = parse(&pairs("q=access&status=accepted,pending&status=rejected&due_after=2026-01-01&sort=-due_date&limit=5&facets=kind,status"), Route::Search).unwrap();
        assert_eq!(
            p.selections.get(Facet::Status),
            ["accepted", "pending", "rejected"]
        );
        assert_eq!(p.limit, 5);
        assert_eq!(
            p.sort,
            Sort {
                by: SortBy::Date("due_date"),
                descending: true
            }
        );
        assert_eq!(p.facets, vec![Facet::Kind, Facet::Status]);
        assert_eq!(p.ranges.len(), 1);
        // a list as generated clients send it: the parameter repeated
        let p = parse(&pairs("facets=kind&facets=status,kind"), Route::Search).unwrap();
        assert_eq!(p.facets, vec![Facet::Kind, Facet::Status]);
    }

    #[test]
    fn refuses_bad_parameters_precisely() {
        for (q, needle) in [
            ("limit=0", "between 1 and 100"),
            ("limit=-3", "between 1 and 100"),
            ("limit=100000", "between 1 and 100"),
            ("limit=ten", "whole number"),
            ("colour=red", "unknown parameter `colour`"),
            ("facets=size", "unknown facet `size`"),
            ("kind=widget", "unknown value `widget`"),
            ("due=soon", "unknown value `soon`"),
            ("due_before=2026-13-01", "not a date"),
            ("due_before=3000-01-01", "outside the years"),
            (
                "certification=9223372036854775808",
                "positive whole numbers",
            ),
            ("certification=0", "positive whole numbers"),
            ("framework=%00", "control characters"),
            ("due_after=2026-05-01&due_before=2026-01-01", "inverted"),
            ("sort=colour", "unknown sort"),
            ("sort=relevance", "needs a query"),
            ("q=a&q=b", "more than once"),
            ("cursor=%%%", "cursor"),
            ("min_position=yesterday", "not an index position"),
            ("q=(a", "never closed"),
        ] {
            let err = parse(&pairs(q), Route::Search).expect_err(q).to_string();
            assert!(err.contains(needle), "{q}: {err}");
        }
        let long = format!("q={}", "a".repeat(MAX_QUERY_CHARS + 1));
        assert!(parse(&pairs(&long), Route::Search).is_err());
    }

    /// Property: any combination of names and values decodes or fails with a
    /// 400 naming the problem; never a panic.
    #[test]
    fn random_requests_never_panic() {
        use rand::{Rng, SeedableRng};
        let names = [
            "q",
            "kind",
            "status",
            "due",
            "due_after",
            "due_before",
            "limit",
            "sort",
            "cursor",
            "facets",
            "facet_size",
            "certification",
            "risk_level",
            "min_position",
            "x",
            "",
        ];
        let values = [
            "",
            "0",
            "-1",
            "101",
            "20",
            "2026-01-01",
            "2026-99-01",
            "evidence",
            "overdue",
            "-due_date",
            "title",
            "relevance",
            "AC-2(1)",
            "\"a",
            "((a))",
            "a OR",
            "1:2:",
            "kind,status",
            "none",
            "eyJzIjoxfQ",
            "\u{0}",
            "漢字",
            "status:accepted",
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..20_000 {
            let n = rng.random_range(0..5);
            let pairs: Vec<(String, String)> = (0..n)
                .map(|_| {
                    (
                        names[rng.random_range(0..names.len())].to_owned(),
                        values[rng.random_range(0..values.len())].to_owned(),
                    )
                })
                .collect();
            match parse(&pairs, Route::Search) {
                Ok(p) => assert!((1..=MAX_LIMIT).contains(&p.limit)),
                Err(ApiError::BadRequest { message, .. }) => assert!(!message.is_empty()),
                Err(other) => panic!("{pairs:?}: {other:?}"),
            }
        }
    }
}
