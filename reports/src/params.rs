//! What a report is asked for, validated before any row is read.

use std::collections::BTreeMap;

use certscope_domain::risk;
use chrono::{Datelike, Days, Months, NaiveDate};

use crate::kpis::{KPI_DEFINITIONS, KpiDefinition};
use crate::model::{Direction, Interval};

/// Who asks: the organization comes from the verified token, never from the
/// request, and an auditor is limited to its certifications.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportScope {
    pub organization_id: i64,
    /// `Some` for auditors: the only certifications they may see.
    pub certifications: Option<Vec<i64>>,
}

/// Validated report parameters. Build with [`ReportParams::new`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportParams {
    /// Framework slug; checked against the database when the report loads.
    pub framework: Option<String>,
    /// Certifications to limit to (empty: all visible).
    pub certifications: Vec<i64>,
    pub as_of: NaiveDate,
    pub from: NaiveDate,
    pub interval: Interval,
    /// Residual score above which a risk is outside appetite (1..=25).
    pub appetite: u8,
    /// Days ahead that count as upcoming (1..=365).
    pub horizon_days: u32,
    /// Longest list of overdue or upcoming items returned (1..=1000).
    pub limit: usize,
    /// Targets and warning bands that replace a KPI's defaults, by KPI key.
    pub targets: BTreeMap<&'static str, Band>,
    /// The day the comparison values describe (the previous pack): one
    /// interval before `as_of` unless asked for.
    pub previous_as_of: NaiveDate,
}

/// A KPI's target and the value at which its warning turns into a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Band {
    pub target: u32,
    pub warning: u32,
}

/// Raw parameters as a client sent them.
#[derive(Debug, Clone, Default)]
pub struct RawParams {
    pub framework: Option<String>,
    pub certifications: Vec<i64>,
    pub as_of: Option<NaiveDate>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub interval: Option<String>,
    /// The day to compare with (the previous pack's `as_of`).
    pub previous_as_of: Option<NaiveDate>,
    pub appetite: Option<u32>,
    pub horizon_days: Option<u32>,
    pub limit: Option<usize>,
    /// `(kpi key, target, warning)` as sent (`target.<key>`, `warning.<key>`).
    pub targets: Vec<(String, Option<u32>, Option<u32>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("as_of {0} is in the future (today is {1})")]
    FutureAsOf(NaiveDate, NaiveDate),
    #[error("period is inverted: from {from} is after to {to}")]
    InvertedPeriod { from: NaiveDate, to: NaiveDate },
    #[error("to ({to}) and as_of ({as_of}) disagree: give one of them")]
    ConflictingEnd { to: NaiveDate, as_of: NaiveDate },
    #[error("date {0} is outside 1900-01-01..2200-01-01")]
    DateOutOfRange(NaiveDate),
    #[error("period of {0} days is longer than the 3660 allowed")]
    PeriodTooLong(i64),
    #[error("interval {0:?} is not one of week, month")]
    BadInterval(String),
    #[error("{name} must be within {min}..={max}, got {value}")]
    OutOfRange {
        name: &'static str,
        min: u64,
        max: u64,
        value: u64,
    },
    #[error("{param} must be within 0..={max}, got {value}")]
    BandOutOfRange {
        /// `target.<kpi>` or `warning.<kpi>`, as the request named it.
        param: String,
        max: u32,
        value: u32,
    },
    #[error("framework slug {0:?} is not valid")]
    BadFramework(String),
    #[error("certification ids must be positive, got {0}")]
    BadCertification(i64),
    #[error("unknown KPI {0:?} in a target (known: {1})")]
    UnknownKpi(String, String),
    #[error("KPI {key}: warning {warning} must be {side} target {target}")]
    BadBand {
        key: &'static str,
        target: u32,
        warning: u32,
        side: &'static str,
    },
    #[error("at most 50 certifications may be named")]
    TooManyCertifications,
    #[error("previous_as_of {previous} must be before as_of {as_of}")]
    PreviousNotBefore {
        previous: NaiveDate,
        as_of: NaiveDate,
    },
}

impl ReportParams {
    /// Validates `raw`; `today` is the server's current date (UTC).
    pub fn new(raw: RawParams, today: NaiveDate) -> Result<Self, ParamError> {
        let range = |d: NaiveDate| {
            let lo = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
            let hi = NaiveDate::from_ymd_opt(2200, 1, 1).unwrap_or(NaiveDate::MAX);
            if d < lo || d >= hi {
                Err(ParamError::DateOutOfRange(d))
            } else {
                Ok(d)
            }
        };
        let as_of = match (raw.as_of, raw.to) {
            (Some(a), Some(t)) if a != t => {
                return Err(ParamError::ConflictingEnd { to: t, as_of: a });
            }
            (Some(a), _) | (None, Some(a)) if a > today => {
                return Err(ParamError::FutureAsOf(a, today));
            }
            (Some(a), _) | (None, Some(a)) => range(a)?,
            (None, None) => today,
        };
        let interval = match raw.interval.as_deref() {
            None | Some("month") => Interval::Month,
            Some("week") => Interval::Week,
            Some(other) => return Err(ParamError::BadInterval(other.to_owned())),
        };
        let from = match raw.from {
            Some(f) => range(f)?,
            None => match interval {
                Interval::Month => as_of.checked_sub_months(Months::new(12)),
                Interval::Week => as_of.checked_sub_days(Days::new(12 * 7)),
            }
            .unwrap_or(as_of),
        };
        if from > as_of {
            return Err(ParamError::InvertedPeriod { from, to: as_of });
        }
        let days = (as_of - from).num_days();
        if days > 3660 {
            return Err(ParamError::PeriodTooLong(days));
        }
        if let Some(slug) = &raw.framework {
            let valid = !slug.is_empty()
                && slug.len() <= 63
                && slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(ParamError::BadFramework(slug.clone()));
            }
        }
        if raw.certifications.len() > 50 {
            return Err(ParamError::TooManyCertifications);
        }
        if let Some(&bad) = raw.certifications.iter().find(|&&id| id <= 0) {
            return Err(ParamError::BadCertification(bad));
        }
        let mut certifications = raw.certifications;
        certifications.sort_unstable();
        certifications.dedup();
        let bounded = |name, value: Option<u64>, min, max, default| match value {
            None => Ok(default),
            Some(v) if (min..=max).contains(&v) => Ok(v),
            Some(value) => Err(ParamError::OutOfRange {
                name,
                min,
                max,
                value,
            }),
        };
        let appetite = bounded(
            "appetite",
            raw.appetite.map(u64::from),
            1,
            u64::from(risk::MAX_SCORE),
            u64::from(risk::DEFAULT_APPETITE),
        )? as u8;
        let horizon_days = bounded("horizon_days", raw.horizon_days.map(u64::from), 1, 365, 30)?;
        let limit = bounded("limit", raw.limit.map(|v| v as u64), 1, 1000, 100)?;
        let targets = targets(raw.targets)?;
        let previous_as_of = match raw.previous_as_of {
            Some(p) if p >= as_of => {
                return Err(ParamError::PreviousNotBefore { previous: p, as_of });
            }
            Some(p) => range(p)?,
            None => step_back(as_of, interval),
        };
        Ok(Self {
            framework: raw.framework,
            certifications,
            as_of,
            from,
            interval,
            appetite,
            horizon_days: horizon_days as u32,
            limit: limit as usize,
            targets,
            previous_as_of,
        })
    }

    /// The day the comparison values describe: `previous_as_of` as asked, or
    /// one interval before `as_of`.
    pub fn previous_as_of(&self) -> NaiveDate {
        self.previous_as_of
    }

    /// The last day the upcoming lists look at: `horizon_days` after `as_of`.
    pub fn horizon(&self) -> NaiveDate {
        self.as_of + chrono::Days::new(u64::from(self.horizon_days))
    }

    /// The trend's points: period end, stepping back one interval at a time
    /// to the period start (at most 400 points), oldest first.
    pub fn points(&self) -> Vec<NaiveDate> {
        let mut points = vec![self.as_of];
        let mut day = self.as_of;
        while points.len() < 400 {
            let next = step_back(day, self.interval);
            if next < self.from || next == day {
                break;
            }
            points.push(next);
            day = next;
        }
        points.reverse();
        points
    }
}

fn targets(
    raw: Vec<(String, Option<u32>, Option<u32>)>,
) -> Result<BTreeMap<&'static str, Band>, ParamError> {
    let mut out = BTreeMap::new();
    for (key, target, warning) in raw {
        let Some(def): Option<&KpiDefinition> = KPI_DEFINITIONS.iter().find(|d| d.key == key)
        else {
            let known: Vec<&str> = KPI_DEFINITIONS.iter().map(|d| d.key).collect();
            return Err(ParamError::UnknownKpi(key, known.join(", ")));
        };
        let band: &mut Band = out.entry(def.key).or_insert(def.band);
        let limit = def.measure.max_band();
        for (name, value) in [("target", target), ("warning", warning)] {
            if let Some(v) = value
                && v > limit
            {
                return Err(ParamError::BandOutOfRange {
                    param: format!("{name}.{}", def.key),
                    max: limit,
                    value: v,
                });
            }
        }
        if let Some(t) = target {
            band.target = t;
        }
        if let Some(w) = warning {
            band.warning = w;
        }
        let (ok, side) = match def.direction {
            Direction::HigherIsBetter => (band.warning <= band.target, "at most"),
            Direction::LowerIsBetter => (band.warning >= band.target, "at least"),
        };
        if !ok {
            return Err(ParamError::BadBand {
                key: def.key,
                target: band.target,
                warning: band.warning,
                side,
            });
        }
    }
    Ok(out)
}

fn step_back(day: NaiveDate, interval: Interval) -> NaiveDate {
    match interval {
        Interval::Week => day.checked_sub_days(Days::new(7)),
        // month ends stay month ends (31 Mar -> 28/29 Feb)
        Interval::Month => {
            let prev = day.checked_sub_months(Months::new(1));
            match (prev, day.succ_opt()) {
                (Some(p), Some(next)) if next.day() == 1 => p
                    .with_day(1)
                    .and_then(|f| f.checked_add_months(Months::new(1)))
                    .and_then(|f| f.pred_opt()),
                (p, _) => p,
            }
        }
    }
    .unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_cover_twelve_months() {
        let p = ReportParams::new(RawParams::default(), d("2026-11-27")).unwrap();
        assert_eq!(p.as_of, d("2026-11-27"));
        assert_eq!(p.from, d("2025-11-27"));
        assert_eq!(p.points().len(), 13);
        assert_eq!(p.previous_as_of(), d("2026-10-27"));
    }

    #[test]
    fn the_previous_pack_date_may_be_given_and_must_come_first() {
        let at = |previous: &str| {
            ReportParams::new(
                RawParams {
                    as_of: Some(d("2026-11-27")),
                    previous_as_of: Some(d(previous)),
                    ..RawParams::default()
                },
                d("2026-11-27"),
            )
        };
        assert_eq!(at("2026-09-30").unwrap().previous_as_of(), d("2026-09-30"));
        assert_eq!(
            at("2026-11-27"),
            Err(ParamError::PreviousNotBefore {
                previous: d("2026-11-27"),
                as_of: d("2026-11-27")
            })
        );
        assert!(matches!(
            at("1800-01-01"),
            Err(ParamError::DateOutOfRange(_))
        ));
    }

    #[test]
    fn month_ends_step_to_month_ends() {
        let raw = RawParams {
            as_of: Some(d("2026-03-31")),
            from: Some(d("2025-12-01")),
            ..RawParams::default()
        };
        let p = ReportParams::new(raw, d("2026-11-27")).unwrap();
        assert_eq!(
            p.points(),
            vec![
                d("2025-12-31"),
                d("2026-01-31"),
                d("2026-02-28"),
                d("2026-03-31")
            ]
        );
    }

    #[test]
    fn rejects_bad_input_precisely() {
        let today = d("2026-11-27");
        let cases = [
            (
                RawParams {
                    as_of: Some(d("2026-12-01")),
                    ..RawParams::default()
                },
                "in the future",
            ),
            (
                RawParams {
                    from: Some(d("2026-11-01")),
                    to: Some(d("2026-10-01")),
                    ..RawParams::default()
                },
                "inverted",
            ),
            (
                RawParams {
                    interval: Some("day".into()),
                    ..RawParams::default()
                },
                "interval",
            ),
            (
                RawParams {
                    appetite: Some(26),
                    ..RawParams::default()
                },
                "appetite",
            ),
            (
                RawParams {
                    framework: Some("Bad Slug".into()),
                    ..RawParams::default()
                },
                "framework",
            ),
            (
                RawParams {
                    certifications: vec![-3],
                    ..RawParams::default()
                },
                "positive",
            ),
        ];
        for (raw, needle) in cases {
            let err = ReportParams::new(raw, today).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }
}
