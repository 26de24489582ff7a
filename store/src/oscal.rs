//! Import of OSCAL catalogs (JSON) as a framework with its controls.
//!
//! The import is one transaction and idempotent: controls are matched by their
//! OSCAL id within the framework, rows are only written when a field changed (so a
//! second import changes nothing, not even row versions), and controls that left
//! the catalog are marked withdrawn rather than deleted, because requirements may
//! still point at them.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Deserialize;
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum OscalError {
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("not an OSCAL catalog: the top-level object has no `catalog` (found {found})")]
    NotACatalog { found: String },
    #[error("invalid OSCAL catalog at `{path}`: {message}")]
    Invalid { path: String, message: String },
    #[error("catalog has no controls")]
    Empty,
    #[error("framework slug {0:?} is invalid: use lowercase letters, digits and '-', at most 63")]
    BadSlug(String),
    #[error("database error while importing the catalog")]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Catalog {
    uuid: String,
    metadata: Metadata,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    controls: Vec<Control>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Metadata {
    title: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Group {
    #[serde(default)]
    id: Option<String>,
    title: String,
    #[serde(default)]
    groups: Vec<Group>,
    #[serde(default)]
    controls: Vec<Control>,
}

#[derive(Debug, Deserialize)]
struct Control {
    id: String,
    title: String,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    props: Vec<Prop>,
    #[serde(default)]
    parts: Vec<Part>,
    #[serde(default)]
    controls: Vec<Control>,
}

#[derive(Debug, Deserialize)]
struct Param {
    id: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    select: Option<Select>,
    #[serde(default)]
    props: Vec<Prop>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Select {
    #[serde(default)]
    how_many: Option<String>,
    #[serde(default)]
    choice: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Part {
    name: String,
    #[serde(default)]
    prose: Option<String>,
    #[serde(default)]
    props: Vec<Prop>,
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Prop {
    name: String,
    value: String,
    #[serde(default)]
    class: Option<String>,
}

/// One control ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedControl {
    pub control_key: String,
    pub parent_key: Option<String>,
    pub display_id: String,
    pub family_key: String,
    pub family_title: String,
    pub title: String,
    pub statement: String,
    pub guidance: String,
    pub sort_key: String,
    pub withdrawn: bool,
}

/// A catalog parsed and rendered, before it touches the database.
#[derive(Debug, Clone)]
pub struct ParsedCatalog {
    pub uuid: String,
    pub title: String,
    pub version_label: String,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
    pub controls: Vec<ParsedControl>,
}

impl ParsedCatalog {
    pub fn family_count(&self) -> usize {
        let mut families: Vec<&str> = self
            .controls
            .iter()
            .map(|c| c.family_key.as_str())
            .collect();
        families.sort_unstable();
        families.dedup();
        families.len()
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub framework_id: i64,
    pub slug: String,
    pub families: usize,
    pub controls: usize,
    pub inserted: u64,
    pub updated: u64,
    pub withdrawn: u64,
}

/// Parses and renders an OSCAL catalog document.
pub fn parse_catalog(bytes: &[u8]) -> Result<ParsedCatalog, OscalError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(OscalError::Json)?;
    let Some(catalog) = value.get("catalog") else {
        let found = match &value {
            serde_json::Value::Object(map) if map.is_empty() => "an empty object".to_owned(),
            serde_json::Value::Object(map) => {
                let keys: Vec<String> = map.keys().take(5).map(|k| format!("`{k}`")).collect();
                keys.join(", ")
            }
            other => format!("a JSON {}", json_kind(other)),
        };
        return Err(OscalError::NotACatalog { found });
    };
    let catalog: Catalog =
        serde_path_to_error::deserialize(catalog).map_err(|e| OscalError::Invalid {
            path: format!("catalog.{}", e.path()),
            message: e.inner().to_string(),
        })?;
    let last_modified = match &catalog.metadata.last_modified {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| OscalError::Invalid {
                    path: "catalog.metadata.last-modified".into(),
                    message: format!("not an RFC 3339 timestamp: {e}"),
                })?
                .to_utc(),
        ),
    };
    if uuid_is_invalid(&catalog.uuid) {
        return Err(OscalError::Invalid {
            path: "catalog.uuid".into(),
            message: format!("{:?} is not a UUID", catalog.uuid),
        });
    }
    let mut controls = Vec::new();
    for (i, group) in catalog.groups.iter().enumerate() {
        collect_group(group, &format!("catalog.groups[{i}]"), &mut controls)?;
    }
    for (i, control) in catalog.controls.iter().enumerate() {
        let family = control.id.split(['-', '.']).next().unwrap_or("").to_owned();
        collect_control(
            control,
            None,
            (&family, &family.to_uppercase()),
            &format!("catalog.controls[{i}]"),
            &mut controls,
        )?;
    }
    if controls.is_empty() {
        return Err(OscalError::Empty);
    }
    Ok(ParsedCatalog {
        uuid: catalog.uuid,
        title: catalog.metadata.title,
        version_label: catalog.metadata.version.unwrap_or_default(),
        last_modified,
        controls,
    })
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn uuid_is_invalid(s: &str) -> bool {
    let hex: Vec<char> = s.chars().filter(|c| *c != '-').collect();
    !(s.len() == 36 && hex.len() == 32 && hex.iter().all(|c| c.is_ascii_hexdigit()))
}

fn collect_group(
    group: &Group,
    path: &str,
    out: &mut Vec<ParsedControl>,
) -> Result<(), OscalError> {
    let key = group.id.clone().unwrap_or_else(|| slugify(&group.title));
    for (i, control) in group.controls.iter().enumerate() {
        collect_control(
            control,
            None,
            (&key, &group.title),
            &format!("{path}.controls[{i}]"),
            out,
        )?;
    }
    for (i, sub) in group.groups.iter().enumerate() {
        collect_group(sub, &format!("{path}.groups[{i}]"), out)?;
    }
    Ok(())
}

fn collect_control(
    control: &Control,
    parent: Option<&str>,
    family: (&str, &str),
    path: &str,
    out: &mut Vec<ParsedControl>,
) -> Result<(), OscalError> {
    if control.id.trim().is_empty() {
        return Err(OscalError::Invalid {
            path: format!("{path}.id"),
            message: "empty control id".into(),
        });
    }
    let params: HashMap<&str, &Param> = control
        .params
        .iter()
        .flat_map(|p| {
            let alt = p
                .props
                .iter()
                .filter(|prop| prop.name == "alt-identifier")
                .map(move |prop| (prop.value.as_str(), p));
            std::iter::once((p.id.as_str(), p)).chain(alt)
        })
        .collect();
    let display_id = control
        .props
        .iter()
        .find(|p| p.name == "label" && p.class.is_none())
        .or_else(|| control.props.iter().find(|p| p.name == "label"))
        .map(|p| p.value.clone())
        .unwrap_or_else(|| control.id.to_uppercase());
    let sort_key = control
        .props
        .iter()
        .find(|p| p.name == "sort-id")
        .map(|p| p.value.clone())
        .unwrap_or_else(|| control.id.clone());
    let withdrawn = control
        .props
        .iter()
        .any(|p| p.name == "status" && p.value == "withdrawn");
    let mut statement = String::new();
    let mut guidance = String::new();
    for part in &control.parts {
        match part.name.as_str() {
            "statement" => render_part(part, &params, 0, &mut statement),
            "guidance" => render_part(part, &params, 0, &mut guidance),
            _ => {}
        }
    }
    out.push(ParsedControl {
        control_key: control.id.clone(),
        parent_key: parent.map(str::to_owned),
        display_id,
        family_key: family.0.to_owned(),
        family_title: family.1.to_owned(),
        title: control.title.clone(),
        statement: statement.trim_end().to_owned(),
        guidance: guidance.trim_end().to_owned(),
        sort_key,
        withdrawn,
    });
    for (i, enhancement) in control.controls.iter().enumerate() {
        collect_control(
            enhancement,
            Some(&control.id),
            family,
            &format!("{path}.controls[{i}]"),
            out,
        )?;
    }
    Ok(())
}

/// Renders a part and its sub-items as indented lines: "a. Define …", "  1. …".
fn render_part(part: &Part, params: &HashMap<&str, &Param>, depth: usize, out: &mut String) {
    let label = part
        .props
        .iter()
        .find(|p| p.name == "label")
        .map(|p| p.value.as_str());
    let prose = part.prose.as_deref().map(|p| resolve_inserts(p, params, 0));
    let has_text = prose.as_deref().is_some_and(|p| !p.trim().is_empty());
    let child_depth = if has_text || label.is_some() {
        depth + 1
    } else {
        depth
    };
    if has_text || label.is_some() {
        out.push_str(&"  ".repeat(depth));
        if let Some(label) = label {
            out.push_str(label);
            out.push(' ');
        }
        if let Some(prose) = prose {
            out.push_str(&collapse_whitespace(&prose));
        }
        out.push('\n');
    }
    for sub in &part.parts {
        render_part(sub, params, child_depth, out);
    }
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Replaces `{{ insert: param, id }}` with the parameter as NIST prints it:
/// `[Assignment: label]` or `[Selection (one or more): a; b]`.
fn resolve_inserts(text: &str, params: &HashMap<&str, &Param>, depth: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &rest[start + 2..start + end];
        rest = &rest[start + end + 2..];
        let mut fields = inner.split(',').map(str::trim);
        let kind = fields.next().unwrap_or("");
        let id = fields.next().unwrap_or("");
        if kind.trim_end_matches(':').trim() != "insert: param" && !kind.starts_with("insert") {
            continue;
        }
        match params.get(id) {
            Some(param) if depth < 4 => out.push_str(&render_param(param, params, depth)),
            _ => {
                let _ = write!(out, "[Assignment: {id}]");
            }
        }
    }
    out.push_str(rest);
    out
}

fn render_param(param: &Param, params: &HashMap<&str, &Param>, depth: usize) -> String {
    if !param.values.is_empty() {
        return param.values.join(", ");
    }
    if let Some(select) = &param.select {
        let choices: Vec<String> = select
            .choice
            .iter()
            .map(|c| collapse_whitespace(&resolve_inserts(c, params, depth + 1)))
            .collect();
        let how = match select.how_many.as_deref() {
            Some("one-or-more") => "Selection (one or more)",
            _ => "Selection",
        };
        return format!("[{how}: {}]", choices.join("; "));
    }
    format!(
        "[Assignment: {}]",
        param.label.as_deref().unwrap_or(&param.id)
    )
}

/// A slug for a framework from free text: lowercase ASCII words joined by '-'.
pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_end_matches('-').to_owned();
    slug.truncate(63);
    slug.trim_end_matches('-').to_owned()
}

fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
}

/// Parses `bytes` and imports the catalog; `slug` defaults to one made from the
/// catalog's title. Nothing is written unless the whole catalog is valid.
pub async fn import_catalog(
    pool: &PgPool,
    bytes: &[u8],
    slug: Option<&str>,
) -> Result<ImportSummary, OscalError> {
    let parsed = parse_catalog(bytes)?;
    let slug = slug
        .map(str::to_owned)
        .unwrap_or_else(|| slugify(&parsed.title));
    if !valid_slug(&slug) {
        return Err(OscalError::BadSlug(slug));
    }
    write_catalog(pool, &parsed, &slug).await
}

async fn write_catalog(
    pool: &PgPool,
    parsed: &ParsedCatalog,
    slug: &str,
) -> Result<ImportSummary, OscalError> {
    let mut tx = pool.begin().await?;
    // one importer at a time per catalog, so that two concurrent imports cannot race
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('certscope-oscal:' || $1))")
        .bind(&parsed.uuid)
        .execute(&mut *tx)
        .await?;
    let uuid = parsed.uuid.to_lowercase();
    let framework_id: i64 = match sqlx::query_scalar::<_, i64>(
        "SELECT id FROM frameworks WHERE source_uuid = $1::uuid OR slug = $2 ORDER BY (source_uuid = $1::uuid) DESC LIMIT 1",
    )
    .bind(&uuid)
    .bind(slug)
    .fetch_optional(&mut *tx)
    .await?
    {
        Some(id) => {
            sqlx::query(
                "UPDATE frameworks SET slug = $2, name = $3, version_label = $4, source_uuid = $5::uuid, last_modified = $6 \
                 WHERE id = $1 AND (slug, name, version_label, source_uuid, last_modified) \
                       IS DISTINCT FROM ($2, $3, $4, $5::uuid, $6)",
            )
            .bind(id)
            .bind(slug)
            .bind(&parsed.title)
            .bind(&parsed.version_label)
            .bind(&uuid)
            .bind(parsed.last_modified)
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            sqlx::query_scalar(
                "INSERT INTO frameworks (slug, name, version_label, source_uuid, last_modified) \
                 VALUES ($1, $2, $3, $4::uuid, $5) RETURNING id",
            )
            .bind(slug)
            .bind(&parsed.title)
            .bind(&parsed.version_label)
            .bind(&uuid)
            .bind(parsed.last_modified)
            .fetch_one(&mut *tx)
            .await?
        }
    };

    let existing: Vec<(String, i64)> =
        sqlx::query_as("SELECT control_key, id FROM controls WHERE framework_id = $1")
            .bind(framework_id)
            .fetch_all(&mut *tx)
            .await?;
    let mut ids: HashMap<String, i64> = existing.into_iter().collect();
    let mut inserted = 0;
    let mut updated = 0;
    // parents come before their enhancements in `controls` (pre-order)
    for c in &parsed.controls {
        let parent_id = c.parent_key.as_ref().and_then(|k| ids.get(k).copied());
        match ids.get(&c.control_key) {
            Some(&id) => {
                let done = sqlx::query(
                    "UPDATE controls SET parent_id = $2, display_id = $3, family_key = $4, family_title = $5, \
                     title = $6, statement = $7, guidance = $8, sort_key = $9, withdrawn = $10 \
                     WHERE id = $1 AND (parent_id, display_id, family_key, family_title, title, statement, guidance, sort_key, withdrawn) \
                     IS DISTINCT FROM ($2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(id)
                .bind(parent_id)
                .bind(&c.display_id)
                .bind(&c.family_key)
                .bind(&c.family_title)
                .bind(&c.title)
                .bind(&c.statement)
                .bind(&c.guidance)
                .bind(&c.sort_key)
                .bind(c.withdrawn)
                .execute(&mut *tx)
                .await?;
                updated += done.rows_affected();
            }
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO controls (framework_id, parent_id, control_key, display_id, family_key, family_title, \
                     title, statement, guidance, sort_key, withdrawn) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                )
                .bind(framework_id)
                .bind(parent_id)
                .bind(&c.control_key)
                .bind(&c.display_id)
                .bind(&c.family_key)
                .bind(&c.family_title)
                .bind(&c.title)
                .bind(&c.statement)
                .bind(&c.guidance)
                .bind(&c.sort_key)
                .bind(c.withdrawn)
                .fetch_one(&mut *tx)
                .await?;
                ids.insert(c.control_key.clone(), id);
                inserted += 1;
            }
        }
    }
    let keys: Vec<&str> = parsed
        .controls
        .iter()
        .map(|c| c.control_key.as_str())
        .collect();
    let withdrawn = sqlx::query(
        "UPDATE controls SET withdrawn = true WHERE framework_id = $1 AND NOT withdrawn AND control_key <> ALL($2)",
    )
    .bind(framework_id)
    .bind(&keys)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(ImportSummary {
        framework_id,
        slug: slug.to_owned(),
        families: parsed.family_count(),
        controls: parsed.controls.len(),
        inserted,
        updated,
        withdrawn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nist_statement_with_labels_and_parameters() {
        let parsed = parse_catalog(&crate::catalogs::NIST_800_53_HIGH.json()).unwrap();
        let ac2 = parsed
            .controls
            .iter()
            .find(|c| c.control_key == "ac-2")
            .unwrap();
        assert_eq!(ac2.display_id, "AC-2");
        assert_eq!(ac2.family_title, "Access Control");
        assert!(
            ac2.statement
                .starts_with("a. Define and document the types of accounts")
        );
        assert!(
            ac2.statement
                .contains("c. Require [Assignment: prerequisites and criteria] for group")
        );
        assert!(
            ac2.statement
                .contains("\n  1. Authorized users of the system;")
        );
        assert!(!ac2.statement.contains("{{"));
        let ac2_1 = parsed
            .controls
            .iter()
            .find(|c| c.control_key == "ac-2.1")
            .unwrap();
        assert_eq!(ac2_1.display_id, "AC-2(1)");
        assert_eq!(ac2_1.parent_key.as_deref(), Some("ac-2"));
        let ac1 = parsed
            .controls
            .iter()
            .find(|c| c.control_key == "ac-1")
            .unwrap();
        assert!(ac1.statement.contains("[Selection (one or more): organization-level; mission/business process-level; system-level]"));
    }

    #[test]
    fn high_baseline_has_18_families_and_370_controls() {
        let parsed = parse_catalog(&crate::catalogs::NIST_800_53_HIGH.json()).unwrap();
        assert_eq!(parsed.family_count(), 18);
        assert_eq!(parsed.controls.len(), 370);
    }

    #[test]
    fn a_profile_is_not_a_catalog() {
        let err = parse_catalog(br#"{"profile": {"uuid": "x"}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not an OSCAL catalog: the top-level object has no `catalog` (found `profile`)"
        );
    }

    #[test]
    fn a_control_without_title_is_named_by_path() {
        let doc = br#"{"catalog": {"uuid": "04cb5e64-3135-4ec4-ab96-fb98c611620a",
            "metadata": {"title": "T"}, "groups": [{"id": "ac", "title": "Access",
            "controls": [{"id": "ac-1", "title": "ok"}, {"id": "ac-2"}]}]}}"#;
        let err = parse_catalog(doc).unwrap_err().to_string();
        assert!(err.contains("catalog.groups[0].controls[1]"), "{err}");
        assert!(err.contains("missing field `title`"), "{err}");
    }

    #[test]
    fn truncated_json_is_reported_as_json() {
        let err = parse_catalog(b"{\"catalog\": {").unwrap_err();
        assert!(matches!(err, OscalError::Json(_)));
    }

    #[test]
    fn slugs_are_lowercase_words() {
        assert_eq!(slugify("NIST SP 800-53 Rev. 5"), "nist-sp-800-53-rev-5");
    }
}
