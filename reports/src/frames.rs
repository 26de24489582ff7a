//! polars building blocks shared by the sections: state as of a day, and
//! status counts by any grouping.

use std::collections::HashMap;

use polars::prelude::*;

use certscope_domain::{RequirementStatus, RiskStatus, Status};

use crate::model::StatusCounts;

/// The domain's rules as polars predicates on a `status` column: the status
/// lists come from `certscope_domain`, never written here.
pub mod rule {
    use super::*;

    fn status_in(names: Vec<&'static str>) -> Expr {
        is_in("status", &names)
    }

    /// Implemented or not applicable: no deadline left.
    pub fn requirement_closed() -> Expr {
        status_in(RequirementStatus::names_where(|s| {
            Status::from(s).is_closed()
        }))
    }

    pub fn requirement_applicable() -> Expr {
        status_in(RequirementStatus::names_where(
            RequirementStatus::is_applicable,
        ))
    }

    pub fn requirement_implemented() -> Expr {
        status_in(RequirementStatus::names_where(
            RequirementStatus::is_implemented,
        ))
    }

    /// The deadline (`due` day) a requirement still has to meet: null once closed.
    pub fn requirement_deadline() -> Expr {
        when(requirement_closed())
            .then(lit(NULL).cast(DataType::Int32))
            .otherwise(col("due"))
    }

    /// Open or treating: the risks KPIs and trends call open.
    pub fn risk_open_work() -> Expr {
        status_in(RiskStatus::names_where(RiskStatus::is_open_work))
    }

    /// All but closed: the risks heat-maps and appetite count.
    pub fn risk_carried() -> Expr {
        status_in(RiskStatus::names_where(RiskStatus::is_carried))
    }
}

pub use certscope_domain::{pct, round1};

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
        count_where(rule::requirement_implemented(), "implemented"),
        count_where(rule::requirement_applicable(), "applicable"),
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

fn status_is(status: RequirementStatus) -> Expr {
    col("status").eq(lit(status.as_str()))
}

/// Aggregations producing the [`StatusCounts`] columns, one per requirement
/// status (named as the status) and `total`.
pub fn status_aggs() -> Vec<Expr> {
    let mut aggs: Vec<Expr> = RequirementStatus::ALL
        .iter()
        .map(|s| count_where(status_is(*s), s.as_str()))
        .collect();
    aggs.push(len().cast(DataType::UInt64).alias("total"));
    aggs
}

/// Evidence aggregations over applicable requirements: `evidenced` and `fresh`
/// (newest valid evidence collected on or after `fresh_from`).
pub fn evidence_aggs(fresh_from: i32) -> Vec<Expr> {
    let applicable = rule::requirement_applicable();
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
    let mut counts = StatusCounts::default();
    for s in RequirementStatus::ALL {
        counts.add(*s, u64_at(df, s.as_str(), row)?);
    }
    Ok(counts)
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

#[cfg(test)]
mod tests {
    use super::*;
    use certscope_domain::Kind;

    /// Evaluates a predicate on a frame holding every status of `kind`.
    fn holds(kind: Kind, predicate: Expr) -> Vec<(&'static str, bool)> {
        let names: Vec<&str> = Status::all_of(kind)
            .into_iter()
            .map(Status::as_str)
            .collect();
        let df = DataFrame::new_infer_height(vec![Column::new("status".into(), names.clone())])
            .unwrap()
            .lazy()
            .select([predicate.alias("p")])
            .collect()
            .unwrap();
        let p: Vec<bool> = df
            .column("p")
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .map(|v| v == Some(true))
            .collect();
        names.into_iter().zip(p).collect()
    }

    #[test]
    fn polars_predicates_agree_with_the_domain_on_every_status() {
        for (s, p) in holds(Kind::Requirement, rule::requirement_closed()) {
            assert_eq!(
                p,
                Status::parse(Kind::Requirement, s).unwrap().is_closed(),
                "{s}"
            );
        }
        for (s, p) in holds(Kind::Requirement, rule::requirement_applicable()) {
            assert_eq!(
                p,
                RequirementStatus::parse(s).unwrap().is_applicable(),
                "{s}"
            );
        }
        for (s, p) in holds(Kind::Risk, rule::risk_open_work()) {
            assert_eq!(p, RiskStatus::parse(s).unwrap().is_open_work(), "{s}");
        }
        for (s, p) in holds(Kind::Risk, rule::risk_carried()) {
            assert_eq!(p, RiskStatus::parse(s).unwrap().is_carried(), "{s}");
        }
    }

    #[test]
    fn a_requirement_deadline_disappears_when_it_closes() {
        let df = df!(
            "status" => RequirementStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "due" => vec![Some(10i32); RequirementStatus::ALL.len()],
        )
        .unwrap()
        .lazy()
        .select([rule::requirement_deadline().alias("d")])
        .collect()
        .unwrap();
        let d: Vec<Option<i32>> = df.column("d").unwrap().i32().unwrap().iter().collect();
        for (s, d) in RequirementStatus::ALL.iter().zip(d) {
            assert_eq!(d.is_some(), !Status::from(*s).is_closed(), "{s}");
        }
    }

    #[test]
    fn status_counts_count_each_status_and_the_total() {
        let df = df!("status" => ["implemented", "failed", "implemented", "not_applicable"])
            .unwrap()
            .lazy()
            .select(status_aggs())
            .collect()
            .unwrap();
        let c = counts_at(&df, 0).unwrap();
        assert_eq!(
            (c.implemented, c.failed, c.not_applicable, c.total),
            (2, 1, 1, 4)
        );
        assert_eq!(c.applicable(), 3);
    }

    #[test]
    fn state_at_takes_the_last_status_on_or_before_the_day() {
        let history = df!(
            "entity_id" => [1i64, 1, 1, 2],
            "day" => [1i32, 5, 9, 6],
            "status" => ["not_started", "in_progress", "implemented", "failed"],
        )
        .unwrap();
        let at = statuses_at(&history, 5).unwrap();
        assert_eq!(at.get(&1).map(String::as_str), Some("in_progress"));
        assert_eq!(at.get(&2), None, "did not exist yet");
    }
}
