//! The query parameters of each route, built from the constants the request
//! decoders check against (`search::params`, `Facet::ALL`, the domain's
//! enums, the report bounds), so the document states exactly what is
//! accepted. The bad-input test walks these: any value outside a stated range,
//! enum or format must get a 400 naming the parameter.

use certscope_domain::{DueBucket, Kind, RiskLevel};
use certscope_reports::kpis::KPI_DEFINITIONS;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{RefOr, Required};

use crate::routes::{MAX_SUGGEST_CHARS, MAX_SUGGESTIONS};
use crate::search::collect::Facet;
use crate::search::params::{
    DATE_FIELDS, DEFAULT_FACET_SIZE, DEFAULT_LIMIT, MAX_FACET_SIZE, MAX_LIMIT, MAX_QUERY_CHARS,
    MAX_VALUES_PER_FACET, SORTS,
};
use crate::search::parser::QUERY_FIELDS;

/// An `xmin:xmax:xip,…` index position as answered in `position`.
pub const POSITION_PATTERN: &str = "^[0-9]+:[0-9]+:[0-9,]*$";

fn query(
    name: &str,
    description: impl Into<String>,
    schema: impl Into<RefOr<Schema>>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description.into()))
        .schema(Some(schema))
        .build()
}

fn required(mut p: Parameter) -> Parameter {
    p.required = Required::True;
    p
}

/// Repeated (`a=x&a=y`) or comma-separated (`a=x,y`) values.
fn list(mut p: Parameter) -> Parameter {
    p.style = Some(ParameterStyle::Form);
    p.explode = Some(true);
    p
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn one_of(values: impl IntoIterator<Item = impl Into<String>>) -> ObjectBuilder {
    string().enum_values(Some(
        values.into_iter().map(Into::into).collect::<Vec<String>>(),
    ))
}

fn int(min: i64, max: i64, default: Option<i64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
        .default(default.map(Into::into))
}

fn date() -> ObjectBuilder {
    string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
}

fn array(items: ObjectBuilder, max: usize) -> ArrayBuilder {
    ArrayBuilder::new().items(items).max_items(Some(max))
}

fn position() -> Parameter {
    query(
        "min_position",
        "Wait until the index reflects this position (a `position` from an earlier answer; also the header `X-Certscope-Min-Position`); 503 with Retry-After if it does not in time.",
        string().pattern(Some(POSITION_PATTERN)),
    )
}

/// The parameters of search (`listing: None`) or a listing of one kind.
pub fn search(listing: Option<Kind>) -> Vec<Parameter> {
    let mut sorts: Vec<String> = SORTS.iter().map(|s| (*s).to_owned()).collect();
    sorts.extend(SORTS.iter().map(|s| format!("-{s}")));
    let mut p = vec![
        query(
            "q",
            format!(
                "Query: words (stop words need not match; of three or more words, most must: see `matching` in the answer), \"phrases\", -exclusion, prefix*, (a OR b), field:value with fields {} (values in any case; any other `name:` is text). Synonyms and acronyms of compliance work are searched too. Control ids in any spelling (`AC-2(1)`, `ac-2.1`, `AC 2 (1)`, `ac-02`) and sha256 (whole, or 8+ characters of it) match exactly.",
                QUERY_FIELDS.join(", ")
            ),
            string()
                .max_length(Some(MAX_QUERY_CHARS))
                .examples(["access review"]),
        ),
        query(
            "sort",
            "Order of hits; `-` for descending. Default: relevance with `q`, else newest first (listings: title or due date). `relevance` needs `q`.",
            one_of(sorts),
        ),
        query(
            "limit",
            "Hits per page.",
            int(1, MAX_LIMIT as i64, Some(DEFAULT_LIMIT as i64)),
        ),
        query(
            "cursor",
            "`next_cursor` of the previous page, with the same other parameters.",
            string(),
        ),
        list(query(
            "facets",
            "Facets to count, repeated or comma-separated (search default: all; listings: none); `none` for none.",
            array(
                one_of(Facet::ALL.iter().map(|f| f.name()).chain(["none"])),
                Facet::COUNT + 1,
            ),
        )),
        query(
            "facet_size",
            "Values per facet.",
            int(1, MAX_FACET_SIZE as i64, Some(DEFAULT_FACET_SIZE as i64)),
        ),
        position(),
    ];
    if listing.is_none() {
        p.push(query(
            "collapse",
            "`control` (the default unless one `kind` is selected): a control and its requirements in every certification and catalogue are one hit, the others listed in its `collapsed`; `none`: every document is a hit.",
            one_of(["control", "none"]),
        ));
    }
    for f in Facet::ALL {
        if listing.is_some() && f == Facet::Kind {
            continue;
        }
        let item = match f {
            Facet::Kind => one_of(Kind::ALL.iter().map(|k| k.as_str())),
            Facet::RiskLevel => one_of(RiskLevel::ALL.iter().map(|l| l.as_str())),
            Facet::Due => one_of(DueBucket::ALL.iter().map(|b| b.as_str())),
            Facet::Certification => ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1)),
            _ => string().max_length(Some(200)),
        };
        p.push(list(query(
            f.name(),
            "Filter on this facet: OR within a facet, AND across facets. Values in any case (`status=Failed`, `kind=Evidence`); owners by name or email.",
            array(item, MAX_VALUES_PER_FACET),
        )));
    }
    for d in DATE_FIELDS {
        p.push(query(
            &format!("{d}_after"),
            format!("`{d}` on or after this day (years 1900 to 2200)."),
            date(),
        ));
        p.push(query(
            &format!("{d}_before"),
            format!("`{d}` before this day (years 1900 to 2200)."),
            date(),
        ));
    }
    p
}

pub struct SearchQuery;
impl IntoParams for SearchQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        search(None)
    }
}

pub struct CertificationsQuery;
impl IntoParams for CertificationsQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        search(Some(Kind::Certification))
    }
}

pub struct RequirementsQuery;
impl IntoParams for RequirementsQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        search(Some(Kind::Requirement))
    }
}

pub struct SuggestQuery;
impl IntoParams for SuggestQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            required(query(
                "q",
                "What was typed so far.",
                string()
                    .max_length(Some(MAX_SUGGEST_CHARS))
                    .examples(["acc"]),
            )),
            query(
                "limit",
                "Suggestions at most.",
                int(1, MAX_SUGGESTIONS as i64, Some(8)),
            ),
            position(),
        ]
    }
}

fn detail(kind: &str, includes: &[&str]) -> Vec<Parameter> {
    let mut id = required(query(
        "id",
        format!("The {kind}'s id."),
        int(1, i64::MAX, None),
    ));
    id.parameter_in = ParameterIn::Path;
    let include = list(query(
        "include",
        "Related records to add, repeated or comma-separated (at most 50 of each); a relation named twice is added once.",
        ArrayBuilder::new().items(string().pattern(Some(comma_list(&includes.join("|"))))),
    ));
    vec![id, include]
}

macro_rules! detail_query {
    ($name:ident, $kind:literal, [$($rel:literal),*]) => {
        pub struct $name;
        impl IntoParams for $name {
            fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                detail($kind, &[$($rel),*])
            }
        }
        impl $name {
            pub const INCLUDES: &'static [&'static str] = &[$($rel),*];
        }
    };
}
detail_query!(
    CertificationQuery,
    "certification",
    ["requirements", "evidence", "risks", "history"]
);
detail_query!(
    RequirementQuery,
    "requirement",
    ["evidence", "risks", "history"]
);
detail_query!(EvidenceQuery, "evidence", ["history"]);
detail_query!(RiskQuery, "risk", ["requirements", "history"]);

/// The parameters of report sections (`pdf: false`) or the board PDF.
pub fn report(pdf: bool) -> Vec<Parameter> {
    let mut p = vec![
        query(
            "framework",
            "Framework slug to limit the report to (400 if unknown).",
            string().pattern(Some("^[a-z0-9-]{1,63}$")),
        ),
        list(query(
            "certification",
            "Certifications to limit the report to; an auditor only its own (403).",
            array(int(1, i64::MAX, None), 50),
        )),
        query(
            "as_of",
            "The day the numbers describe; default today, never in the future.",
            date(),
        ),
        query(
            "from",
            "First day of the trend period (default: 12 intervals before `as_of`); at most 3660 days before it.",
            date(),
        ),
        query("to", "Alias of `as_of`.", date()),
        query(
            "interval",
            "Trend points every week or month.",
            one_of(["week", "month"]).default(Some("month".into())),
        ),
        query(
            "previous_as_of",
            "The day to compare with (the previous pack): KPI previous values, readiness changes and risks whose status changed; default one interval before `as_of`; must be before it.",
            date(),
        ),
        query(
            "appetite",
            "Residual score above which a risk is outside appetite.",
            int(
                1,
                certscope_domain::risk::MAX_SCORE.into(),
                Some(certscope_domain::risk::DEFAULT_APPETITE.into()),
            ),
        ),
        query(
            "horizon_days",
            "Days ahead that count as upcoming.",
            int(1, 365, Some(30)),
        ),
        position(),
    ];
    for kpi in KPI_DEFINITIONS {
        let max = i64::from(kpi.measure.max_band());
        p.push(query(
            &format!("target.{}", kpi.key),
            format!(
                "Replace the target of the KPI `{}` ({}).",
                kpi.key, kpi.label
            ),
            int(0, max, Some(kpi.band.target.into())),
        ));
        p.push(query(
            &format!("warning.{}", kpi.key),
            format!(
                "Replace the value at which the KPI `{}` turns from warning to breach.",
                kpi.key
            ),
            int(0, max, Some(kpi.band.warning.into())),
        ));
    }
    if pdf {
        p.push(query(
            "size",
            "Page size.",
            one_of(["a4", "letter"]).default(Some("a4".into())),
        ));
    } else {
        p.push(query(
            "limit",
            "Overdue and upcoming items listed at most.",
            int(1, 1000, Some(100)),
        ));
        p.push(query(
            "format",
            "`csv` for CSV (as `Accept: text/csv` does).",
            one_of(["json", "csv"]).default(Some("json".into())),
        ));
    }
    p
}

pub struct SectionQuery;
impl IntoParams for SectionQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        report(false)
    }
}

pub struct BoardQuery;
impl IntoParams for BoardQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        report(true)
    }
}

pub struct WebSocketQuery;
impl IntoParams for WebSocketQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![query(
            "ticket",
            "A single-use ticket from POST /v1/events/tickets (browsers cannot send headers).",
            string(),
        )]
    }
}

/// A room as `Room::parse` reads it (ids are positive 64-bit integers).
const ROOM_PATTERN: &str = "(org(anization)?(:0*[1-9][0-9]{0,17})?|certification:0*[1-9][0-9]{0,17}|user(:0*[1-9][0-9]{0,17})?|notices)";

/// A comma-separated list of `item` (a regular expression), as the server
/// reads one: white space and empty entries are ignored.
fn comma_list(item: &str) -> String {
    format!(r"^[\s,]*({item})?(\s*,\s*({item})?)*\s*$")
}

pub struct StreamQuery;
impl IntoParams for StreamQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            required(query(
                "rooms",
                "Rooms, comma-separated: org, org:<id>, certification:<id>, user, user:<id>, notices.",
                string().pattern(Some(comma_list(ROOM_PATTERN))),
            )),
            query(
                "ticket",
                "A single-use ticket from POST /v1/events/tickets (EventSource cannot send headers).",
                string(),
            ),
            query(
                "last_event_id",
                "Resume after this event id (the Last-Event-ID header wins).",
                int(0, i64::MAX, None),
            ),
        ]
    }
}
