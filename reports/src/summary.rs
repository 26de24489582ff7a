//! The decision page: overall status, key messages and decisions requested,
//! computed from the other sections of the report.
//!
//! Every sentence states only values that are fields of the report, printed
//! the way the JSON holds them, and lists those fields as JSON pointers
//! (`sources`), so a dashboard can show the same messages and a test can check
//! each one against the model. A pointer resolves in the answer of the section
//! its first segment names (`/kpis/0/value` in `GET /v1/metrics/kpis`), since
//! every section answer is `{"meta": …, "<section>": …}`.
//!
//! ## The overall status
//! - **off track** when a certification still working towards its target is
//!   forecast to miss it (outlook at risk or stalled), or an indicator is in
//!   breach;
//! - **at risk** otherwise, when an indicator is in its warning band or a risk
//!   above appetite is open or in treatment (a decision nobody has taken yet);
//! - **on track** otherwise;
//! - **no data** when nothing is in scope: no applicable requirement and no
//!   risk carried.
//!
//! Risks accepted above appetite do not change the status (the board has
//! decided on them) but are listed for confirmation in every pack.

use std::cmp::Reverse;

use crate::model::{
    CertificationForecast, Decision, DecisionKind, Figure, Kpi, KpiState, Message, OverallStatus,
    Report, RiskItem, Summary, Trend,
};
use crate::words::{count, is_are, join_and};
use certscope_domain::RiskStatus;

/// At most this many key messages.
pub const MAX_MESSAGES: usize = 5;

/// The summary of a report whose other sections are computed.
pub fn summary(report: &Report) -> Summary {
    let (status, reasons) = overall_status(report);
    Summary {
        status,
        reasons,
        messages: messages(report),
        decisions: decisions(report),
    }
}

fn kpi_pointer(i: usize, field: &str) -> String {
    format!("/kpis/{i}/{field}")
}

fn forecast_pointer(i: usize, field: &str) -> String {
    format!("/forecast/certifications/{i}/{field}")
}

/// A name in full, in quotes (pages wrap long ones; nothing is cut).
fn quoted(text: &str) -> String {
    format!("“{text}”")
}

/// Certifications forecast to miss their target, with their index in the
/// forecast, soonest target first.
fn missing_targets(report: &Report) -> Vec<(usize, &CertificationForecast)> {
    let mut v: Vec<_> = report
        .forecast
        .certifications
        .iter()
        .enumerate()
        .filter(|(_, c)| c.will_miss_target())
        .collect();
    v.sort_by_key(|(i, c)| (c.target_date, *i));
    v
}

/// Whether anything is in scope at all.
fn has_data(report: &Report) -> bool {
    report.posture.overall.counts.applicable() > 0 || report.heatmap.risks > 0
}

/// The overall status and the sentences that justify it (see the module
/// documentation for the rule).
pub fn overall_status(report: &Report) -> (OverallStatus, Vec<Message>) {
    if !has_data(report) {
        return (
            OverallStatus::NoData,
            vec![Message {
                key: "no_data",
                text: format!(
                    "Nothing is in scope on {}: no applicable requirements and no risks.",
                    report.meta.as_of
                ),
                sources: vec!["/meta/as_of".into()],
            }],
        );
    }
    let mut off = Vec::new();
    for (i, c) in missing_targets(report) {
        off.push(target_sentence(i, c, "target_missed"));
    }
    for (i, k) in report.kpis.iter().enumerate() {
        if k.state == KpiState::Breach {
            off.push(kpi_state_sentence(i, k, "kpi_breach", "is in breach"));
        }
    }
    if !off.is_empty() {
        return (OverallStatus::OffTrack, off);
    }
    let mut at_risk = Vec::new();
    for (i, k) in report.kpis.iter().enumerate() {
        if k.state == KpiState::Warning {
            at_risk.push(kpi_state_sentence(
                i,
                k,
                "kpi_warning",
                "is in its warning band",
            ));
        }
    }
    let above = report.heatmap.above_appetite_by_status;
    let undecided = above.open_work();
    if undecided > 0 {
        at_risk.push(Message {
            key: "risks_undecided",
            text: format!(
                "{} above appetite {} awaiting a decision ({} open, {} in treatment).",
                count(undecided, "risk", "risks"),
                is_are(undecided),
                above.open,
                above.treating
            ),
            sources: vec![
                "/heatmap/above_appetite_by_status/open".into(),
                "/heatmap/above_appetite_by_status/treating".into(),
            ],
        });
    }
    if at_risk.is_empty() {
        (OverallStatus::OnTrack, Vec::new())
    } else {
        (OverallStatus::AtRisk, at_risk)
    }
}

fn kpi_state_sentence(i: usize, k: &Kpi, key: &'static str, state: &str) -> Message {
    let relation = match k.direction {
        crate::model::Direction::HigherIsBetter => "target at least",
        crate::model::Direction::LowerIsBetter => "target at most",
    };
    Message {
        key,
        text: format!(
            "The indicator “{}” {state}: {} ({relation} {}).",
            k.label,
            Figure::show(k.value),
            k.target
        ),
        sources: vec![
            kpi_pointer(i, "label"),
            kpi_pointer(i, "value"),
            kpi_pointer(i, "target"),
            kpi_pointer(i, "state"),
        ],
    }
}

/// "“SOC 2” will miss its target of 2027-01-06: 0 of 354 requirements
/// implemented with 37 days left, and no progress in the last 90 days."
fn target_sentence(i: usize, c: &CertificationForecast, key: &'static str) -> Message {
    let mut sources = vec![
        forecast_pointer(i, "name"),
        forecast_pointer(i, "target_date"),
        forecast_pointer(i, "done"),
        forecast_pointer(i, "total"),
    ];
    let left = if c.days_to_target >= 0 {
        format!(
            " with {} left",
            count(c.days_to_target as u64, "day", "days")
        )
    } else {
        format!(
            ", {} past the target",
            count(c.days_to_target.unsigned_abs(), "day", "days")
        )
    };
    sources.push(forecast_pointer(i, "days_to_target"));
    let projection = match (c.projected_completion, c.days_late) {
        (Some(p), Some(late)) => {
            sources.push(forecast_pointer(i, "projected_completion"));
            sources.push(forecast_pointer(i, "days_late"));
            format!(
                "; at the current pace it completes on {p}, {} late",
                count(late as u64, "day", "days")
            )
        }
        (Some(p), None) => {
            sources.push(forecast_pointer(i, "projected_completion"));
            format!("; at the current pace it completes on {p}")
        }
        (None, _) => "; nothing was implemented in the forecast window".to_owned(),
    };
    let verb = if c.days_to_target >= 0 {
        "will miss"
    } else {
        "has missed"
    };
    Message {
        key,
        text: format!(
            "{} {verb} its target of {}: {} of {} requirements implemented{left}{projection}.",
            quoted(&c.name),
            c.target_date,
            c.done,
            c.total
        ),
        sources,
    }
}

/// Three to five key messages, most important first.
pub fn messages(report: &Report) -> Vec<Message> {
    let mut out = Vec::new();
    let missing = missing_targets(report);
    for (i, c) in missing.iter().take(2) {
        out.push(target_sentence(*i, c, "target_missed"));
    }
    if missing.len() > 2 {
        let more = (missing.len() - 2) as u64;
        out.push(Message {
            key: "targets_missed_more",
            text: format!(
                "{} more {} forecast to miss {} target.",
                count(more, "certification", "certifications"),
                is_are(more),
                if more == 1 { "its" } else { "their" }
            ),
            sources: vec!["/forecast/certifications".into()],
        });
    }
    out.push(risks_message(report));
    out.push(readiness_message(report));
    if let Some(m) = largest_change(report) {
        out.push(m);
    }
    out.push(overdue_message(report));
    out.truncate(MAX_MESSAGES);
    out
}

fn risks_message(report: &Report) -> Message {
    let h = &report.heatmap;
    let c = h.by_status;
    let a = h.above_appetite_by_status;
    if h.risks == 0 {
        return Message {
            key: "risks",
            text: format!("No risks are carried on {}.", report.meta.as_of),
            sources: vec!["/heatmap/risks".into(), "/meta/as_of".into()],
        };
    }
    let mix = |c: crate::model::RiskStatusCounts| {
        join_and(&[
            format!("{} open", c.open),
            format!("{} in treatment", c.treating),
            format!("{} accepted", c.accepted),
        ])
    };
    let mut sources = vec![
        "/heatmap/risks".into(),
        "/heatmap/by_status/open".into(),
        "/heatmap/by_status/treating".into(),
        "/heatmap/by_status/accepted".into(),
        "/heatmap/appetite".into(),
    ];
    let text = if a.total() == 0 {
        format!(
            "None of the {} carried ({}) is above the risk appetite (residual score above {}).",
            count(h.risks, "risk", "risks"),
            mix(c),
            h.appetite
        )
    } else {
        sources.extend([
            "/heatmap/above_appetite_by_status/open".into(),
            "/heatmap/above_appetite_by_status/treating".into(),
            "/heatmap/above_appetite_by_status/accepted".into(),
        ]);
        format!(
            "{} of the {} carried ({}) {} above the risk appetite (residual score above {}): {}.",
            a.total(),
            count(h.risks, "risk", "risks"),
            mix(c),
            is_are(a.total()),
            h.appetite,
            mix(a)
        )
    };
    Message {
        key: "risks",
        text,
        sources,
    }
}

fn readiness_message(report: &Report) -> Message {
    let overall = &report.posture.overall;
    if overall.counts.applicable() == 0 {
        return Message {
            key: "readiness",
            text: format!(
                "No applicable requirements are in scope on {}: readiness has no data.",
                report.meta.as_of
            ),
            sources: vec!["/meta/as_of".into()],
        };
    }
    let Some((i, k)) = report
        .kpis
        .iter()
        .enumerate()
        .find(|(_, k)| k.key == "readiness" && k.value.is_some())
    else {
        return Message {
            key: "readiness",
            text: format!(
                "Readiness is {:.1}%: {} of {} applicable requirements implemented.",
                overall.readiness_pct,
                overall.counts.implemented,
                overall.counts.applicable()
            ),
            sources: vec![
                "/posture/overall/readiness_pct".into(),
                "/posture/overall/counts/implemented".into(),
            ],
        };
    };
    let change = match k.trend {
        Trend::Up => "up from",
        Trend::Down => "down from",
        Trend::Flat => "unchanged from",
    };
    let value = Figure::show(k.value);
    let (text, sources) = match k.previous {
        Some(previous) => (
            format!(
                "Readiness is {value} against a target of {}, {change} {previous} on {}.",
                k.target, k.previous_as_of
            ),
            vec![
                kpi_pointer(i, "value"),
                kpi_pointer(i, "target"),
                kpi_pointer(i, "previous"),
                kpi_pointer(i, "previous_as_of"),
            ],
        ),
        None => (
            format!(
                "Readiness is {value} against a target of {}; nothing was applicable on {}.",
                k.target, k.previous_as_of
            ),
            vec![
                kpi_pointer(i, "value"),
                kpi_pointer(i, "target"),
                kpi_pointer(i, "previous_as_of"),
            ],
        ),
    };
    Message {
        key: "readiness",
        text,
        sources,
    }
}

/// The indicator (other than readiness) that moved most since the previous
/// period, measured against the width of its warning band.
fn largest_change(report: &Report) -> Option<Message> {
    let (i, k) = report
        .kpis
        .iter()
        .enumerate()
        .filter(|(_, k)| k.key != "readiness" && k.trend != Trend::Flat)
        .filter(|(_, k)| k.state != KpiState::NoData)
        .max_by(|(ia, a), (ib, b)| {
            relative_change(a)
                .total_cmp(&relative_change(b))
                .then(Reverse(ia).cmp(&Reverse(ib)))
        })?;
    let verb = if k.trend == Trend::Up { "rose" } else { "fell" };
    let judgement = match k.improving {
        Some(true) => "an improvement",
        _ => "a deterioration",
    };
    Some(Message {
        key: "largest_change",
        text: format!(
            "{} {verb} from {} to {} since {}, {judgement} (target {}).",
            k.label,
            Figure::show(k.previous),
            Figure::show(k.value),
            k.previous_as_of,
            k.target
        ),
        sources: vec![
            kpi_pointer(i, "label"),
            kpi_pointer(i, "previous"),
            kpi_pointer(i, "value"),
            kpi_pointer(i, "previous_as_of"),
            kpi_pointer(i, "target"),
        ],
    })
}

fn relative_change(k: &Kpi) -> f64 {
    let span = (k.target.as_f64() - k.warning.as_f64()).abs().max(1.0);
    let (Some(value), Some(previous)) = (k.value, k.previous) else {
        return 0.0;
    };
    let change = (value.as_f64() - previous.as_f64()).abs() / span;
    if change.is_finite() { change } else { 0.0 }
}

fn overdue_message(report: &Report) -> Message {
    let o = &report.overdue;
    let upcoming = format!(
        "{} {} due in the next {} days",
        count(o.upcoming.total, "item", "items"),
        if o.upcoming.total == 1 {
            "falls"
        } else {
            "fall"
        },
        o.horizon_days
    );
    let mut sources = vec![
        "/overdue/overdue/total".to_owned(),
        "/overdue/upcoming/total".into(),
        "/overdue/horizon_days".into(),
    ];
    if o.overdue.total == 0 {
        return Message {
            key: "overdue",
            text: format!("Nothing is overdue, and {upcoming}."),
            sources,
        };
    }
    let k = &o.overdue.by_kind;
    sources.extend([
        "/overdue/overdue/by_kind/certification".into(),
        "/overdue/overdue/by_kind/requirement".into(),
        "/overdue/overdue/by_kind/evidence".into(),
    ]);
    Message {
        key: "overdue",
        text: format!(
            "{} {} overdue ({}, {} and {}), and {upcoming}.",
            count(o.overdue.total, "item", "items"),
            is_are(o.overdue.total),
            count(k.certification, "certification", "certifications"),
            count(k.requirement, "requirement", "requirements"),
            count(k.evidence, "evidence item", "evidence items"),
        ),
        sources,
    }
}

/// What the board is asked to decide: risks above appetite still open or in
/// treatment, risks accepted above appetite, then targets the forecast says
/// will be missed.
pub fn decisions(report: &Report) -> Vec<Decision> {
    let mut out = Vec::new();
    let above = &report.heatmap.above_appetite;
    for (i, r) in above.iter().enumerate() {
        let accepted = RiskStatus::parse(&r.status) == Ok(RiskStatus::Accepted);
        let mut sources = risk_sources(i, r);
        let (kind, ask) = if accepted {
            (
                DecisionKind::ConfirmAcceptedRisk,
                "was accepted above appetite: confirm the acceptance or ask for treatment"
                    .to_owned(),
            )
        } else {
            let overdue = match (r.treatment_overdue, r.due_date) {
                (true, Some(d)) => {
                    sources.push(format!("/heatmap/above_appetite/{i}/due_date"));
                    format!("; its treatment was due on {d}")
                }
                _ => String::new(),
            };
            (
                DecisionKind::TreatOrAcceptRisk,
                format!("is above appetite: fund its treatment or accept it formally{overdue}"),
            )
        };
        let owner = r
            .owner
            .as_deref()
            .map(|o| format!(", owner {o}"))
            .unwrap_or_default();
        let status = if accepted {
            String::new()
        } else {
            format!(", {}", r.status)
        };
        out.push(Decision {
            kind,
            text: format!(
                "Risk #{} {} (residual {} {}{status}{owner}) {ask}.",
                r.id,
                quoted(&r.title),
                r.residual.score,
                r.residual.level.as_str(),
            ),
            risk_id: Some(r.id),
            certification_id: None,
            sources,
        });
    }
    // open and in treatment first: those are the decisions not yet taken
    out.sort_by_key(|d| d.kind == DecisionKind::ConfirmAcceptedRisk);
    for (i, c) in missing_targets(report) {
        let mut m = target_sentence(i, c, "revise_target");
        m.text = format!(
            "{} Approve a new target date or the resources to meet it.",
            m.text
        );
        out.push(Decision {
            kind: DecisionKind::ReviseTarget,
            text: m.text,
            risk_id: None,
            certification_id: Some(c.certification_id),
            sources: m.sources,
        });
    }
    out
}

fn risk_sources(i: usize, r: &RiskItem) -> Vec<String> {
    let mut v = vec![
        format!("/heatmap/above_appetite/{i}/id"),
        format!("/heatmap/above_appetite/{i}/title"),
        format!("/heatmap/above_appetite/{i}/residual/score"),
        format!("/heatmap/above_appetite/{i}/residual/level"),
        format!("/heatmap/above_appetite/{i}/status"),
    ];
    if r.owner.is_some() {
        v.push(format!("/heatmap/above_appetite/{i}/owner"));
    }
    v
}

/// Reports for the summary's scenarios, shared with the board PDF tests.
#[cfg(test)]
pub(crate) mod scenarios {
    use crate::model::Report;
    use crate::sample::{Cert, Path, Req, Risk, dataset, params};

    /// Ten requirements of one certification due in 100 days: nine
    /// implemented over the last weeks, the tenth in progress; all evidenced.
    fn programme(target: i64) -> (Vec<Cert>, Vec<Req>) {
        let certs = vec![Cert::new(1, -300, target)];
        let mut reqs: Vec<Req> = (1..=9)
            .map(|id| {
                let path: Path = vec![(-200, "in_progress"), (-7 * id, "implemented")];
                Req::new(id, 1, path).evidenced(-5).evidenced_before()
            })
            .collect();
        reqs.push(
            Req::new(10, 1, vec![(-200, "in_progress")])
                .due(30)
                .evidenced(-5)
                .evidenced_before(),
        );
        (certs, reqs)
    }

    /// A low residual risk in treatment: controls cut its score from 25 to 4.
    fn treated() -> Risk {
        Risk::new(1, (5, 5), (2, 2), vec![(-100, "open"), (-50, "treating")])
    }

    fn report(certs: Vec<Cert>, reqs: Vec<Req>, risks: Vec<Risk>, targets: bool) -> Report {
        let p = params(|raw| {
            if targets {
                raw.targets = vec![("risks_above_appetite".into(), Some(1), Some(3))];
            }
        });
        crate::compute(dataset(certs, reqs, risks, vec![]), &p, false).expect("report")
    }

    /// Every indicator good, the certification ahead of its target.
    pub(crate) fn on_track() -> Report {
        let (c, r) = programme(100);
        report(c, r, vec![treated()], false)
    }

    /// As on track, plus an open critical risk above appetite whose treatment
    /// was due ten days ago.
    pub(crate) fn at_risk() -> Report {
        let (c, r) = programme(100);
        let open = Risk::new(2, (5, 5), (4, 4), vec![(-60, "open")]).due(-10);
        report(c, r, vec![treated(), open], false)
    }

    /// As on track, plus a critical risk accepted above appetite (and the
    /// appetite indicator's target allowing one).
    pub(crate) fn accepted_above_appetite() -> Report {
        let (c, r) = programme(100);
        let accepted = Risk::new(3, (5, 5), (4, 4), vec![(-60, "open"), (-30, "accepted")]);
        report(c, r, vec![treated(), accepted], true)
    }

    /// The certification's target passed ten days ago with work left.
    pub(crate) fn off_track() -> Report {
        let (c, r) = programme(-10);
        report(c, r, vec![treated()], false)
    }

    /// Nothing in scope.
    pub(crate) fn empty() -> Report {
        report(vec![], vec![], vec![], false)
    }

    pub(crate) fn all() -> [(&'static str, Report); 5] {
        [
            ("on_track", on_track()),
            ("at_risk", at_risk()),
            ("accepted_above_appetite", accepted_above_appetite()),
            ("off_track", off_track()),
            ("empty", empty()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::scenarios;
    use super::*;
    use crate::model::DecisionKind;

    fn keys(messages: &[Message]) -> Vec<&'static str> {
        messages.iter().map(|m| m.key).collect()
    }

    /// Every source resolves in the report's JSON, and every scalar it names
    /// is printed in the sentence the way the JSON holds it.
    fn assert_traceable(name: &str, report: &Report, text: &str, sources: &[String]) {
        let json = serde_json::to_value(report).expect("json");
        assert!(!sources.is_empty(), "{name}: {text:?} names no source");
        for pointer in sources {
            let value = json
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{name}: {pointer} does not resolve ({text:?})"));
            let printed = match value {
                Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
                Value::Number(n) => format!("{:.1}", n.as_f64().unwrap_or_default()),
                Value::String(s) => s.clone(),
                _ => continue,
            };
            // a negative day count is stated as days past, a zero may be "no"
            let printed = printed.trim_start_matches('-').to_owned();
            let zero_in_words = printed == "0"
                && ["No ", "None", "Nothing", "no "]
                    .iter()
                    .any(|w| text.contains(w));
            assert!(
                text.contains(&printed) || zero_in_words,
                "{name}: {text:?} does not state {pointer} = {printed}"
            );
        }
    }

    #[test]
    fn every_sentence_states_the_fields_it_names_in_every_scenario() {
        for (name, report) in scenarios::all() {
            let s = &report.summary;
            assert!(
                (3..=MAX_MESSAGES).contains(&s.messages.len()),
                "{name}: {} messages",
                s.messages.len()
            );
            for m in s.reasons.iter().chain(&s.messages) {
                assert_traceable(name, &report, &m.text, &m.sources);
            }
            for d in &s.decisions {
                assert_traceable(name, &report, &d.text, &d.sources);
            }
        }
    }

    #[test]
    fn on_track_has_no_reasons_and_no_decisions() {
        let r = scenarios::on_track();
        assert!(
            r.kpis.iter().all(|k| k.state == KpiState::Good),
            "{:?}",
            r.kpis
        );
        assert_eq!(r.summary.status, OverallStatus::OnTrack);
        assert!(r.summary.reasons.is_empty());
        assert!(r.summary.decisions.is_empty());
        assert_eq!(keys(&r.summary.messages), ["risks", "readiness", "overdue"]);
        assert_eq!(
            r.summary.messages[0].text,
            "None of the 1 risk carried (0 open, 1 in treatment and 0 accepted) is above the \
             risk appetite (residual score above 12)."
        );
    }

    #[test]
    fn an_open_risk_above_appetite_puts_the_programme_at_risk_and_asks_for_a_decision() {
        let r = scenarios::at_risk();
        let s = &r.summary;
        assert_eq!(s.status, OverallStatus::AtRisk);
        assert!(
            keys(&s.reasons).contains(&"risks_undecided"),
            "{:?}",
            s.reasons
        );
        assert_eq!(s.decisions.len(), 1);
        let d = &s.decisions[0];
        assert_eq!(
            (d.kind, d.risk_id, d.certification_id),
            (DecisionKind::TreatOrAcceptRisk, Some(2), None)
        );
        assert!(
            d.text.contains("its treatment was due on 2026-06-20"),
            "{}",
            d.text
        );
        assert_eq!(r.heatmap.above_appetite_by_status.open, 1);
    }

    #[test]
    fn a_risk_accepted_above_appetite_is_listed_for_confirmation_without_changing_the_status() {
        let r = scenarios::accepted_above_appetite();
        let s = &r.summary;
        assert_eq!(s.status, OverallStatus::OnTrack, "{:?}", s.reasons);
        assert_eq!(s.decisions.len(), 1);
        assert_eq!(s.decisions[0].kind, DecisionKind::ConfirmAcceptedRisk);
        assert_eq!(s.decisions[0].risk_id, Some(3));
        let risks = &s.messages.iter().find(|m| m.key == "risks").unwrap().text;
        assert!(
            risks.contains(
                "1 of the 2 risks carried (0 open, 1 in treatment and 1 accepted) is above"
            ),
            "{risks}"
        );
        // accepted: carried, but not open work
        let open_high = r.kpis.iter().find(|k| k.key == "open_high_risks").unwrap();
        assert_eq!(open_high.value, Some(Figure::Count(0)));
    }

    #[test]
    fn a_missed_target_is_off_track_and_asks_for_a_new_date() {
        let r = scenarios::off_track();
        let s = &r.summary;
        assert_eq!(s.status, OverallStatus::OffTrack);
        assert_eq!(s.reasons[0].key, "target_missed");
        assert!(
            s.reasons[0]
                .text
                .starts_with("“Certification 1” has missed its target of 2026-06-20: 9 of 10 requirements implemented, 10 days past the target"),
            "{}",
            s.reasons[0].text
        );
        assert_eq!(s.messages[0].key, "target_missed");
        let d = s.decisions.last().unwrap();
        assert_eq!(
            (d.kind, d.certification_id),
            (DecisionKind::ReviseTarget, Some(1))
        );
    }

    #[test]
    fn nothing_in_scope_is_no_data_not_a_breach() {
        let r = scenarios::empty();
        let s = &r.summary;
        assert_eq!(s.status, OverallStatus::NoData);
        assert!(s.decisions.is_empty());
        assert_eq!(keys(&s.messages), ["risks", "readiness", "overdue"]);
        assert!(s.messages[1].text.contains("readiness has no data"));
    }
}
