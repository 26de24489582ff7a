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
            days_to_target: (cert.target_date - as_of).num_days(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outlook;
    use crate::sample::{Cert, Path, Req, Risk, as_of, dataset, on, params};

    #[test]
    fn the_slope_is_the_least_squares_fit_and_zero_without_a_spread() {
        let xs = [0.0, 7.0, 14.0, 21.0];
        assert_eq!(slope(&xs, &[1.0, 15.0, 29.0, 43.0]), 2.0);
        assert_eq!(slope(&xs, &[5.0, 5.0, 5.0, 5.0]), 0.0);
        assert_eq!(slope(&xs, &[43.0, 29.0, 15.0, 1.0]), -2.0);
        // scattered points: sxy = 1, sxx = 2
        assert_eq!(slope(&[0.0, 1.0, 2.0], &[0.0, 2.0, 1.0]), 0.5);
        assert_eq!(slope(&[3.0], &[9.0]), 0.0, "one point");
        assert_eq!(slope(&[2.0, 2.0], &[1.0, 5.0]), 0.0, "no spread in x");
    }

    /// Certification 1 (in progress, target 10 days ago) and 2 (certified,
    /// expired 5 days ago) are past their deadlines; 3 (certified until +50),
    /// 4 (withdrawn, target long past) and 5 (under audit, target +10) are
    /// not. Requirements of certification 1: 1 in progress due 5 days ago,
    /// 2 implemented 30 days ago (due 40 days ago), 3 not started due in 10
    /// days, 4 not applicable (due 50 days ago), 5 failed due yesterday, 6 in
    /// progress due today. One open risk rated 12.
    fn deadlines() -> Dataset {
        let since = |status| vec![(-300, "in_progress"), (-100, status)];
        dataset(
            vec![
                Cert::new(1, -300, -10),
                Cert::new(2, -600, -400)
                    .expires(-5)
                    .history(since("certified")),
                Cert::new(3, -600, -400)
                    .expires(50)
                    .history(since("certified")),
                Cert::new(4, -300, -100).history(since("withdrawn")),
                Cert::new(5, -300, 10).history(since("under_audit")),
            ],
            vec![
                Req::new(1, 1, vec![(-60, "in_progress")]).due(-5),
                Req::new(2, 1, vec![(-60, "in_progress"), (-30, "implemented")]).due(-40),
                Req::new(3, 1, vec![(-60, "not_started")]).due(10),
                Req::new(4, 1, vec![(-60, "not_applicable")]).due(-50),
                Req::new(5, 1, vec![(-60, "in_progress"), (-20, "failed")]).due(-1),
                Req::new(6, 1, vec![(-60, "in_progress")]).due(0),
            ],
            vec![Risk::new(1, (4, 4), (3, 4), vec![(-60, "open")])],
            vec![],
        )
    }

    #[test]
    fn a_trend_point_counts_readiness_open_risks_and_what_is_overdue_that_day() {
        let p = point(&deadlines(), as_of()).unwrap();
        assert_eq!((p.implemented, p.applicable, p.readiness_pct), (1, 5, 20.0));
        assert_eq!(p.open_risks.high, 1);
        assert_eq!(p.open_risks.total(), 1);
        // requirements 1 and 5; due today is not overdue yet
        assert_eq!(p.overdue_requirements, 2);
        // certification 1 (target) and 2 (expiry)
        assert_eq!(p.overdue_certifications, 2);
    }

    #[test]
    fn an_earlier_trend_point_judges_deadlines_by_the_statuses_of_that_day() {
        // 35 days ago requirement 2 was in progress and 5 days past due; 1 and
        // 5 were not due yet, nor were certifications 1 and 2
        let p = point(&deadlines(), on(-35)).unwrap();
        assert_eq!((p.implemented, p.applicable), (0, 5));
        assert_eq!(p.overdue_requirements, 1);
        assert_eq!(p.overdue_certifications, 0);
    }

    #[test]
    fn trends_have_a_point_per_interval_and_month_ends_stay_month_ends() {
        let p = params(|raw| {
            raw.from = Some(on(-70));
            raw.interval = Some("month".into());
        });
        let t = trends(&deadlines(), &p).unwrap();
        let dates: Vec<String> = t.points.iter().map(|p| p.date.to_string()).collect();
        assert_eq!(dates, ["2026-04-30", "2026-05-31", "2026-06-30"]);
        let overdue: Vec<u64> = t.points.iter().map(|p| p.overdue_requirements).collect();
        // 61 days ago nothing existed; 30 days ago only requirement 2 (closed
        // the same day) was past due, and no longer counted
        assert_eq!(overdue, [0, 0, 2]);
    }

    /// `n` requirements of `cert` from `first` on: implemented at `done_at(j)`
    /// (or never), otherwise not started since `since`.
    fn burn_up(
        cert: i64,
        first: i64,
        n: i64,
        since: i64,
        done_at: impl Fn(i64) -> Option<i64>,
    ) -> Vec<Req> {
        (0..n)
            .map(|j| {
                let mut path: Path = vec![(since, "not_started")];
                if let Some(day) = done_at(j) {
                    path.push((day, "implemented"));
                }
                Req::new(first + j, cert, path)
            })
            .collect()
    }

    /// Certification 1 implements one requirement a day from 140 days ago
    /// (140 of 200 done, target in 30 days); certification 2 implemented ten
    /// 300 days ago and five more 100 days ago, then stalled (15 of 20);
    /// 3 is certified, 4 has no requirements.
    fn programmes() -> Dataset {
        let mut reqs = burn_up(1, 1000, 200, -200, |j| (j < 140).then_some(-139 + j));
        reqs.extend(burn_up(2, 2000, 20, -400, |j| match j {
            0..10 => Some(-300),
            10..15 => Some(-100),
            _ => None,
        }));
        reqs.extend(burn_up(3, 3000, 1, -400, |_| Some(-200)));
        dataset(
            vec![
                Cert::new(1, -200, 30),
                Cert::new(2, -400, 100),
                Cert::new(3, -400, -100).history(vec![(-400, "in_progress"), (-100, "certified")]),
                Cert::new(4, -100, 100),
            ],
            reqs,
            vec![],
            vec![],
        )
    }

    #[test]
    fn a_steady_burn_up_projects_its_completion_from_the_fitted_velocity() {
        let f = forecast(&programmes(), &params(|_| {})).unwrap();
        assert_eq!(f.window_days, 84);
        let c = &f.certifications[0];
        assert_eq!(c.certification_id, 1);
        assert_eq!((c.done, c.total, c.remaining), (140, 200, 60));
        // one a day: seven a week, 60 days to go, 30 past the target
        assert_eq!(c.velocity_per_week, 7.0);
        assert_eq!(c.projected_completion, Some(on(60)));
        assert_eq!(c.outlook, Outlook::AtRisk);
        assert_eq!(c.days_late, Some(30));
    }

    #[test]
    fn a_programme_without_progress_in_the_window_is_stalled_and_closed_or_empty_ones_are_left_out()
    {
        let f = forecast(&programmes(), &params(|_| {})).unwrap();
        let ids: Vec<i64> = f
            .certifications
            .iter()
            .map(|c| c.certification_id)
            .collect();
        assert_eq!(ids, [1, 2]);
        let c = &f.certifications[1];
        assert_eq!((c.done, c.total, c.remaining), (15, 20, 5));
        assert_eq!(c.velocity_per_week, 0.0);
        assert_eq!(c.projected_completion, None);
        assert_eq!(c.outlook, Outlook::Stalled);
        assert_eq!(c.days_late, None);
    }

    #[test]
    fn the_back_test_predicts_today_from_the_fit_made_eight_weeks_ago() {
        let f = forecast(&programmes(), &params(|_| {})).unwrap();
        let b = &f.backtest;
        assert_eq!(b.horizon_days, 56);
        assert_eq!(b.certifications, 2);
        let items: Vec<(i64, NaiveDate, f64, u64, u64, f64)> = b
            .items
            .iter()
            .map(|i| {
                (
                    i.certification_id,
                    i.cutoff,
                    i.predicted_done,
                    i.actual_done,
                    i.total,
                    i.error_pct,
                )
            })
            .collect();
        // 1: 84 done at the cutoff + 56 days at one a day = 140, exactly;
        // 2: the fit over 140..56 days ago (10, then 15 from day 98) has a
        // slope of 735 / 8918 a day: 15 + 56 * 735 / 8918 = 19.6 predicted
        // against 15, an error of 4.6 of 20
        assert_eq!(
            items,
            [
                (1, on(-56), 140.0, 140, 200, 0.0),
                (2, on(-56), 19.6, 15, 20, 23.1),
            ]
        );
        assert_eq!((b.mean_abs_error_pct, b.max_abs_error_pct), (11.6, 23.1));
    }
}
