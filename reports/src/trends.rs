//! Trends over a period and per-certification forecasts, both rebuilt from the
//! status history.

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate};
use polars::prelude::*;

use certscope_domain::deadline::{Dates, Deadline};
use certscope_domain::{CertificationStatus, Completion};

use crate::frames::{burn_aggs, i64_at, requirements_at, round1, rule, statuses_at, u64_at};
use crate::heatmap::open_by_level;
use crate::load::{Dataset, day};
use crate::model::{
    Backtest, BacktestItem, CertificationForecast, Forecast, Outlook, TrendPoint, Trends,
};
use crate::params::ReportParams;

/// The trailing window the burn-up velocity is fitted over.
pub const WINDOW_DAYS: i64 = 84;
/// How far before the report date the back-test predicts from.
pub const BACKTEST_HORIZON_DAYS: i64 = 56;
pub const METHOD: &str = "Burn-up: implemented requirements of each certification sampled weekly \
over the trailing 84 days; least-squares slope = velocity; projected completion = as-of date + \
remaining / velocity. On track when the projection is on or before the target date, at risk when \
after it, stalled when the velocity is zero or negative with work remaining. Back-test: the same \
fit made 56 days before the as-of date predicts the implemented count at the as-of date; the error \
is |predicted - actual| as a percent of the applicable requirements.";

/// Per certification: (implemented, applicable) at the end of a day.
type Burn = HashMap<i64, (u64, u64)>;

/// Certifications with a deadline (target while in flight, renewal once
/// certified) before `date`, by their status at the end of `date`.
fn overdue_certifications(data: &Dataset, date: NaiveDate) -> PolarsResult<u64> {
    let status = statuses_at(&data.certification_history, day(date))?;
    Ok(data
        .certifications
        .iter()
        .filter(|c| {
            status
                .get(&c.id)
                .and_then(|s| CertificationStatus::parse(s).ok())
                .and_then(|s| {
                    Deadline::of(
                        s.into(),
                        Dates {
                            target_date: Some(c.target_date),
                            expires_on: c.expires_on,
                            ..Dates::default()
                        },
                    )
                })
                .is_some_and(|d| d.is_overdue(date))
        })
        .count() as u64)
}

/// Readiness, open risks and overdue counts at the end of `date`.
pub fn point(data: &Dataset, date: NaiveDate) -> PolarsResult<TrendPoint> {
    let at = day(date);
    let [implemented, applicable] = burn_aggs();
    let df = requirements_at(&data.requirements, &data.requirement_history, at)?
        .select([
            implemented,
            applicable,
            rule::requirement_deadline()
                .lt(lit(at))
                .fill_null(lit(false))
                .cast(DataType::UInt64)
                .sum()
                .alias("overdue"),
        ])
        .collect()?;
    let completion = Completion {
        implemented: u64_at(&df, "implemented", 0)?,
        applicable: u64_at(&df, "applicable", 0)?,
    };
    Ok(TrendPoint {
        date,
        implemented: completion.implemented,
        applicable: completion.applicable,
        readiness_pct: completion.pct(),
        open_risks: open_by_level(data, date)?,
        overdue_requirements: u64_at(&df, "overdue", 0)?,
        overdue_certifications: overdue_certifications(data, date)?,
    })
}

pub fn trends(data: &Dataset, params: &ReportParams) -> PolarsResult<Trends> {
    let points = params
        .points()
        .into_iter()
        .map(|date| point(data, date))
        .collect::<PolarsResult<_>>()?;
    Ok(Trends {
        interval: params.interval,
        points,
    })
}

/// Burn-up samples, each day computed once however many fits use it.
struct Sampler<'a> {
    data: &'a Dataset,
    cache: BTreeMap<i32, Burn>,
}

impl Sampler<'_> {
    fn at(&mut self, date: NaiveDate) -> PolarsResult<&Burn> {
        let at = day(date);
        if !self.cache.contains_key(&at) {
            let df = requirements_at(&self.data.requirements, &self.data.requirement_history, at)?
                .group_by([col("certification_id")])
                .agg(burn_aggs())
                .collect()?;
            let mut burn = Burn::new();
            for i in 0..df.height() {
                burn.insert(
                    i64_at(&df, "certification_id", i)?,
                    (
                        u64_at(&df, "implemented", i)?,
                        u64_at(&df, "applicable", i)?,
                    ),
                );
            }
            self.cache.insert(at, burn);
        }
        Ok(&self.cache[&at])
    }

    /// Least-squares slope (requirements per day) of `cert`'s implemented
    /// count over the window ending at `end`.
    fn velocity(&mut self, cert: i64, end: NaiveDate) -> PolarsResult<f64> {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for k in 0..=WINDOW_DAYS / 7 {
            let Some(date) = end.checked_sub_days(Days::new((WINDOW_DAYS - k * 7) as u64)) else {
                continue;
            };
            let done = self.at(date)?.get(&cert).map_or(0, |b| b.0);
            xs.push((k * 7) as f64);
            ys.push(done as f64);
        }
        Ok(slope(&xs, &ys))
    }
}

fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

pub fn forecast(data: &Dataset, params: &ReportParams) -> PolarsResult<Forecast> {
    let as_of = params.as_of;
    let mut sampler = Sampler {
        data,
        cache: BTreeMap::new(),
    };
    let status = statuses_at(&data.certification_history, day(as_of))?;

    let mut certifications = Vec::new();
    let mut backtest = Vec::new();
    for cert in &data.certifications {
        let Some(state) = status.get(&cert.id) else {
            continue;
        };
        if !CertificationStatus::parse(state).is_ok_and(CertificationStatus::is_in_flight) {
            continue;
        }
        let (done, total) = sampler.at(as_of)?.get(&cert.id).copied().unwrap_or((0, 0));
        if total == 0 {
            // nothing in scope yet: no burn-up to project
            continue;
        }
        let remaining = total.saturating_sub(done);
        let per_day = sampler.velocity(cert.id, as_of)?;
        let (projected, outlook) = if remaining == 0 {
            (None, Outlook::Complete)
        } else if per_day <= 1e-9 {
            (None, Outlook::Stalled)
        } else {
            let days = (remaining as f64 / per_day).ceil().min(36_500.0) as u64;
            let projected = as_of.checked_add_days(Days::new(days));
            let late = projected.is_none_or(|p| p > cert.target_date);
            (
                projected,
                if late {
                    Outlook::AtRisk
                } else {
                    Outlook::OnTrack
                },
            )
        };
        certifications.push(CertificationForecast {
            certification_id: cert.id,
            name: cert.name.clone(),
            status: state.clone(),
            target_date: cert.target_date,
            total,
            done,
            remaining,
            velocity_per_week: round1(per_day * 7.0),
            projected_completion: projected,
            outlook,
            days_late: projected
                .map(|p| (p - cert.target_date).num_days())
                .filter(|&d| d > 0),
        });

        // back-test: predict today's count from the fit made at the cutoff
        let Some(cutoff) = as_of.checked_sub_days(Days::new(BACKTEST_HORIZON_DAYS as u64)) else {
            continue;
        };
        if (cutoff - cert.started_on).num_days() < 28 {
            continue;
        }
        let (done_then, _) = sampler.at(cutoff)?.get(&cert.id).copied().unwrap_or((0, 0));
        let rate = sampler.velocity(cert.id, cutoff)?.max(0.0);
        let predicted = (done_then as f64 + rate * BACKTEST_HORIZON_DAYS as f64).min(total as f64);
        backtest.push(BacktestItem {
            certification_id: cert.id,
            cutoff,
            predicted_done: round1(predicted),
            actual_done: done,
            total,
            error_pct: round1((predicted - done as f64).abs() * 100.0 / total as f64),
        });
    }
    let errors: Vec<f64> = backtest.iter().map(|b| b.error_pct).collect();
    let mean = if errors.is_empty() {
        0.0
    } else {
        round1(errors.iter().sum::<f64>() / errors.len() as f64)
    };
    Ok(Forecast {
        method: METHOD,
        window_days: WINDOW_DAYS,
        certifications,
        backtest: Backtest {
            horizon_days: BACKTEST_HORIZON_DAYS,
            certifications: backtest.len() as u64,
            mean_abs_error_pct: mean,
            max_abs_error_pct: errors.iter().copied().fold(0.0, f64::max),
            items: backtest,
        },
    })
}
