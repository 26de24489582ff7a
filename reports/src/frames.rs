//! polars building blocks shared by the sections: state as of a day, and
//! status counts by any grouping.

use std::collections::HashMap;

use polars::prelude::*;

use crate::model::StatusCounts;

/// Statuses that close a requirement.
pub const REQUIREMENT_DONE: [&str; 2] = ["implemented", "not_applicable"];
/// Certification statuses still in flight.
pub const CERTIFICATION_ACTIVE: [&str; 3] = ["planned", "in_progress", "under_audit"];
/// Risk statuses that count as open work.
pub const RISK_OPEN: [&str; 2] = ["open", "treating"];

/// Rounds to one decimal: the precision of every fraction in the model, so
/// that JSON, CSV and PDF print the same number.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round1(part as f64 * 100.0 / whole as f64)
    }
}

/// `entity_id, status` of every entity that existed at the end of `day`: its
/// last status recorded on or before that day. An entity without a history row
/// by then did not exist yet.
pub fn state_at(history: &DataFrame, day: i32) -> PolarsResult<LazyFrame> {
    Ok(history
        .clone()
        .lazy()
        .filter(col("day").lt_eq(lit(day)))
        .group_by_stable([col("entity_id")])
        .agg([col("status").last()]))
}

/// `id column -> status` of a frame with a status column.
pub fn status_map(df: &DataFrame, id: &str) -> PolarsResult<HashMap<i64, String>> {
    Ok(df
        .column(id)?
        .i64()?
        .iter()
        .zip(df.column("status")?.str()?.iter())
        .filter_map(|(id, s)| Some((id?, s?.to_owned())))
        .collect())
}

/// Statuses of a history's entities at the end of `day`.
pub fn statuses_at(history: &DataFrame, day: i32) -> PolarsResult<HashMap<i64, String>> {
    status_map(&state_at(history, day)?.collect()?, "entity_id")
}

/// Implemented and applicable requirement counts.
pub fn burn_aggs() -> [Expr; 2] {
    [
        count_where(col("status").eq(lit("implemented")), "implemented"),
        count_where(col("status").neq(lit("not_applicable")), "applicable"),
    ]
}

/// Requirements joined with their status at the end of `day`.
pub fn requirements_at(
    requirements: &DataFrame,
    history: &DataFrame,
    day: i32,
) -> PolarsResult<LazyFrame> {
    Ok(requirements.clone().lazy().join(
        state_at(history, day)?,
        [col("id")],
        [col("entity_id")],
        JoinArgs::new(JoinType::Inner),
    ))
}

fn count_where(predicate: Expr, name: &str) -> Expr {
    predicate.cast(DataType::UInt64).sum().alias(name)
}

fn status_is(status: &str) -> Expr {
    col("status").eq(lit(status))
}

/// Aggregations producing the [`StatusCounts`] columns.
pub fn status_aggs() -> Vec<Expr> {
    vec![
        count_where(status_is("implemented"), "implemented"),
        count_where(status_is("in_progress"), "in_progress"),
        count_where(status_is("not_started"), "not_started"),
        count_where(status_is("failed"), "failed"),
        count_where(status_is("not_applicable"), "not_applicable"),
        len().cast(DataType::UInt64).alias("total"),
    ]
}

/// Evidence aggregations over applicable requirements: `evidenced` and `fresh`
/// (newest valid evidence collected on or after `fresh_from`).
pub fn evidence_aggs(fresh_from: i32) -> Vec<Expr> {
    let applicable = col("status").neq(lit("not_applicable"));
    let evidenced = applicable.and(col("evidenced"));
    vec![
        count_where(evidenced.clone(), "evidenced"),
        count_where(
            evidenced.and(col("newest_evidence").gt_eq(lit(fresh_from))),
            "fresh",
        ),
    ]
}

pub fn u64_at(df: &DataFrame, name: &str, row: usize) -> PolarsResult<u64> {
    Ok(df.column(name)?.u64()?.get(row).unwrap_or(0))
}

pub fn str_at<'a>(df: &'a DataFrame, name: &str, row: usize) -> PolarsResult<&'a str> {
    Ok(df.column(name)?.str()?.get(row).unwrap_or(""))
}

pub fn i64_at(df: &DataFrame, name: &str, row: usize) -> PolarsResult<i64> {
    Ok(df.column(name)?.i64()?.get(row).unwrap_or(0))
}

pub fn counts_at(df: &DataFrame, row: usize) -> PolarsResult<StatusCounts> {
    Ok(StatusCounts {
        implemented: u64_at(df, "implemented", row)?,
        in_progress: u64_at(df, "in_progress", row)?,
        not_started: u64_at(df, "not_started", row)?,
        failed: u64_at(df, "failed", row)?,
        not_applicable: u64_at(df, "not_applicable", row)?,
        total: u64_at(df, "total", row)?,
    })
}

/// A string column as a series of owned values (nulls as `None`).
pub fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect())
}

pub fn is_in(column: &str, values: &[&str]) -> Expr {
    values
        .iter()
        .map(|v| col(column).eq(lit(*v)))
        .reduce(Expr::or)
        .unwrap_or(lit(false))
}
