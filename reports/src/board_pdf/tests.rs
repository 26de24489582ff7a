//! Renders synthetic reports and reads them back with lopdf.

#[path = "../../tests/support/pdf_text.rs"]
mod pdf_text;

use chrono::{Duration, NaiveDate, TimeZone, Utc};

use super::{PageSize, render_board};
use crate::model::*;
use pdf_text::{Pdf, normalize_space};

const ORG: &str = "Ελληνική Ασφάλεια АО «Щит»";

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn counts(implemented: u64, total: u64) -> StatusCounts {
    StatusCounts {
        implemented,
        in_progress: (total - implemented) / 2,
        not_started: total - implemented - (total - implemented) / 2,
        failed: 0,
        not_applicable: 0,
        total,
    }
}

fn posture_row(key: &str, label: &str, implemented: u64, total: u64, pct: f64) -> PostureRow {
    PostureRow {
        key: key.to_owned(),
        label: label.to_owned(),
        counts: counts(implemented, total),
        readiness_pct: pct,
        previous_readiness_pct: (total > 0).then_some(pct - 2.5),
        evidenced: implemented,
        evidence_coverage_pct: 71.5,
        fresh: implemented / 2,
        freshness_pct: 80.2,
    }
}

fn grid(hot: bool) -> Grid {
    let mut cells = Vec::new();
    let mut total = 0;
    for likelihood in 1..=5u8 {
        for impact in 1..=5u8 {
            let score = likelihood * impact;
            let count = match (likelihood, impact) {
                (5, 5) if hot => 250,
                (4, 5) => 3,
                (2, 3) => 7,
                (1, 1) => 1,
                _ => 0,
            };
            total += count;
            cells.push(HeatCell {
                likelihood,
                impact,
                score,
                level: RiskLevel::of_score(score),
                count,
                risk_ids: (0..count as i64).map(|i| 1000 + i).collect(),
            });
        }
    }
    Grid { total, cells }
}

fn rating(likelihood: u8, impact: u8) -> Rating {
    let score = likelihood * impact;
    Rating {
        likelihood,
        impact,
        score,
        level: RiskLevel::of_score(score),
    }
}

fn risk(id: i64, title: &str) -> RiskItem {
    RiskItem {
        id,
        title: title.to_owned(),
        category: "operations".to_owned(),
        owner: if id % 3 == 0 {
            None
        } else {
            Some(format!("Owner {id}"))
        },
        status: "treating".to_owned(),
        treatment: "mitigate".to_owned(),
        inherent: rating(5, 4),
        residual: rating(4, 3),
        due_date: if id % 2 == 0 {
            Some(day(2025, 9, 1))
        } else {
            None
        },
        treatment_overdue: id % 4 == 0,
    }
}

fn due(i: i64, days: i64) -> DueItem {
    let kind = match i % 3 {
        0 => ItemKind::Certification,
        1 => ItemKind::Requirement,
        _ => ItemKind::Evidence,
    };
    DueItem {
        kind,
        id: i,
        certification_id: 1,
        title: format!(
            "Item {i}: quarterly access review of privileged accounts in the production \
             environment including break-glass procedures"
        ),
        status: "open".to_owned(),
        owner: Some(format!("Σωκράτης Παπαδόπουλος {i}")),
        date: day(2025, 6, 30) + Duration::days(days),
        days,
    }
}

fn group(key: &str, label: &str, count: u64) -> DueGroup {
    DueGroup {
        key: key.to_owned(),
        label: label.to_owned(),
        count,
    }
}

fn kpi(key: &'static str, label: &'static str, measure: Measure, value: f64) -> Kpi {
    Kpi {
        key,
        label,
        unit: measure.unit(),
        value: Some(measure.figure(value)),
        previous: Some(measure.figure(value - 3.1)),
        previous_as_of: day(2025, 5, 31),
        target: measure.figure(80.0),
        warning: measure.figure(60.0),
        direction: Direction::HigherIsBetter,
        state: KpiState::Warning,
        trend: Trend::Up,
        improving: Some(true),
    }
}

/// A report with non-Latin names, long titles and enough items to paginate.
fn sample_report() -> Report {
    let as_of = day(2025, 6, 30);
    let long_title = "Supplier concentration: a single managed-service provider hosts the \
                      identity platform, the ticketing system and the backup infrastructure";
    let certifications = vec![
        CertificationRef {
            id: 1,
            name: "ISO/IEC 27001:2022 Πιστοποίηση".to_owned(),
            framework: "iso27001".to_owned(),
            framework_name: "ISO/IEC 27001:2022".to_owned(),
        },
        CertificationRef {
            id: 2,
            name: "SOC 2 Type II".to_owned(),
            framework: "soc2".to_owned(),
            framework_name: "SOC 2".to_owned(),
        },
    ];
    let points = (0..26)
        .map(|i| {
            let readiness = (400.0 + f64::from(i) * 9.0).round() / 10.0;
            TrendPoint {
                date: day(2025, 1, 5) + Duration::weeks(i64::from(i)),
                implemented: 300 + u64::from(i as u32) * 4,
                applicable: 652,
                readiness_pct: readiness,
                open_risks: LevelCounts {
                    low: 10,
                    medium: 8 + u64::from(i as u32 % 3),
                    high: 5,
                    critical: 2,
                },
                overdue_requirements: 20 - u64::from(i as u32) / 2,
                overdue_certifications: u64::from(i as u32 % 2),
            }
        })
        .collect();
    let top_risks: Vec<RiskItem> = (1..=10)
        .map(|i| {
            risk(
                i,
                if i == 1 {
                    long_title
                } else {
                    "Ransomware on file servers"
                },
            )
        })
        .collect();
    let overdue_items: Vec<DueItem> = (0..300).map(|i| due(i, -(300 - i))).collect();
    let upcoming_items: Vec<DueItem> = (0..12).map(|i| due(1000 + i, i + 1)).collect();
    let mut report = Report {
        summary: Summary {
            status: OverallStatus::NoData,
            reasons: Vec::new(),
            messages: Vec::new(),
            decisions: Vec::new(),
        },
        meta: Meta {
            organization: Organization {
                id: 7,
                slug: "aspida".to_owned(),
                name: ORG.to_owned(),
            },
            as_of,
            period: Period {
                from: day(2025, 1, 1),
                to: as_of,
                interval: Interval::Week,
            },
            position: "0/1A2B3C4D".to_owned(),
            generated_at: Utc
                .with_ymd_and_hms(2025, 7, 1, 8, 30, 0)
                .single()
                .expect("time"),
            framework: None,
            certifications: certifications.clone(),
            restricted: true,
            appetite: 8,
            horizon_days: 30,
        },
        posture: Posture {
            freshness_days: 90,
            overall: posture_row("overall", "Overall", 412, 652, 63.2),
            frameworks: vec![
                posture_row("iso27001", "ISO/IEC 27001:2022", 300, 400, 75.0),
                posture_row(
                    "soc2",
                    "SOC 2 — Trust Services Criteria 2017",
                    112,
                    252,
                    44.4,
                ),
            ],
            families: Vec::new(),
            certifications: vec![
                posture_row("1", "ISO/IEC 27001:2022 Πιστοποίηση", 300, 400, 75.0),
                posture_row("2", "SOC 2 Type II", 112, 252, 44.4),
                posture_row("3", "Empty certification", 0, 0, 0.0),
            ],
        },
        heatmap: Heatmap {
            risks: 261,
            by_status: RiskStatusCounts {
                open: 200,
                treating: 50,
                accepted: 11,
            },
            above_appetite_by_status: RiskStatusCounts::default(),
            inherent: grid(true),
            residual: grid(false),
            appetite: 8,
            above_appetite: top_risks.clone(),
            top_risks,
            previous_as_of: day(2025, 5, 31),
            changes: vec![
                RiskChange {
                    id: 4,
                    title: long_title.to_owned(),
                    previous_status: None,
                    status: "open".to_owned(),
                    previous_inherent: None,
                    inherent: rating(5, 4),
                    previous_residual: None,
                    residual: rating(4, 4),
                },
                RiskChange {
                    id: 9,
                    title: "Backups untested".to_owned(),
                    previous_status: Some("treating".to_owned()),
                    status: "closed".to_owned(),
                    previous_inherent: Some(rating(3, 3)),
                    inherent: rating(3, 3),
                    previous_residual: Some(rating(3, 2)),
                    residual: rating(2, 2),
                },
                RiskChange {
                    id: 12,
                    title: "Vendor access reviewed late".to_owned(),
                    previous_status: Some("treating".to_owned()),
                    status: "treating".to_owned(),
                    previous_inherent: Some(rating(4, 4)),
                    inherent: rating(4, 5),
                    previous_residual: Some(rating(4, 4)),
                    residual: rating(2, 3),
                },
            ],
        },
        matrix: Vec::new(),
        trends: Trends {
            interval: Interval::Week,
            points,
        },
        forecast: Forecast {
            method: "linear velocity",
            window_days: 56,
            certifications: vec![
                CertificationForecast {
                    certification_id: 1,
                    name: "ISO/IEC 27001:2022 Πιστοποίηση".to_owned(),
                    status: "in_progress".to_owned(),
                    target_date: day(2025, 10, 31),
                    total: 400,
                    done: 300,
                    remaining: 100,
                    velocity_per_week: 4.5,
                    projected_completion: Some(day(2025, 11, 30)),
                    outlook: Outlook::AtRisk,
                    days_to_target: 123,
                    days_late: Some(30),
                },
                CertificationForecast {
                    certification_id: 3,
                    name: "Empty certification".to_owned(),
                    status: "planned".to_owned(),
                    target_date: day(2025, 12, 31),
                    total: 0,
                    done: 0,
                    remaining: 0,
                    velocity_per_week: 0.0,
                    projected_completion: None,
                    outlook: Outlook::Stalled,
                    days_to_target: 184,
                    days_late: None,
                },
            ],
            backtest: Backtest {
                horizon_days: 90,
                certifications: 2,
                mean_abs_error_pct: 3.2,
                max_abs_error_pct: 7.9,
                items: Vec::new(),
            },
        },
        overdue: Overdue {
            horizon_days: 30,
            overdue: DueList {
                total: 300,
                by_kind: KindCounts {
                    certification: 100,
                    requirement: 100,
                    evidence: 100,
                },
                by_certification: vec![
                    group("1", "ISO/IEC 27001:2022 Πιστοποίηση", 200),
                    group("2", "SOC 2 Type II", 100),
                ],
                by_owner: vec![
                    group("Owner 1", "Owner 1", 150),
                    group("", "unassigned", 100),
                    group("others", "3 other owners", 50),
                ],
                by_age: vec![
                    group("1_30", "1–30 days overdue", 30),
                    group("31_90", "31–90 days overdue", 60),
                    group("91_180", "91–180 days overdue", 90),
                    group("over_180", "more than 180 days overdue", 120),
                ],
                truncated: false,
                items: overdue_items,
            },
            upcoming: DueList {
                total: 12,
                by_kind: KindCounts {
                    certification: 4,
                    requirement: 4,
                    evidence: 4,
                },
                by_certification: vec![group("2", "SOC 2 Type II", 12)],
                by_owner: vec![group("Owner 2", "Owner 2", 12)],
                by_age: vec![group("0_7", "due within 7 days", 12)],
                truncated: false,
                items: upcoming_items,
            },
        },
        kpis: vec![
            kpi("readiness", "Overall readiness", Measure::Percent, 63.2),
            kpi(
                "evidence_coverage",
                "Evidence coverage",
                Measure::Percent,
                71.5,
            ),
            Kpi {
                direction: Direction::LowerIsBetter,
                target: Figure::Count(14),
                warning: Figure::Count(30),
                state: KpiState::Breach,
                trend: Trend::Down,
                improving: Some(false),
                ..kpi(
                    "overdue_requirements",
                    "Overdue requirements",
                    Measure::Count,
                    12.0,
                )
            },
            Kpi {
                trend: Trend::Flat,
                improving: None,
                state: KpiState::Good,
                ..kpi(
                    "risks_above_appetite",
                    "Risks above appetite",
                    Measure::Count,
                    3.0,
                )
            },
        ],
    };
    let mut above = RiskStatusCounts::default();
    for r in &report.heatmap.above_appetite {
        above.add(certscope_domain::RiskStatus::parse(&r.status).expect("status"));
    }
    report.heatmap.above_appetite_by_status = above;
    report.summary = crate::summary::summary(&report);
    report
}

/// A report with nothing in it.
fn empty_report() -> Report {
    let mut r = sample_report();
    r.meta.organization.name = "X".repeat(400);
    r.meta.certifications.clear();
    r.meta.restricted = false;
    r.posture.frameworks.clear();
    r.posture.certifications.clear();
    r.posture.overall = posture_row("overall", "Overall", 0, 0, 0.0);
    r.heatmap = Heatmap {
        risks: 0,
        by_status: RiskStatusCounts::default(),
        above_appetite_by_status: RiskStatusCounts::default(),
        inherent: Grid {
            total: 0,
            cells: Vec::new(),
        },
        residual: Grid {
            total: 0,
            cells: Vec::new(),
        },
        appetite: 8,
        above_appetite: Vec::new(),
        top_risks: Vec::new(),
        previous_as_of: day(2025, 5, 31),
        changes: Vec::new(),
    };
    r.trends.points.clear();
    r.forecast.certifications.clear();
    r.forecast.backtest.certifications = 0;
    r.overdue.overdue = DueList {
        total: 0,
        by_kind: KindCounts::default(),
        by_certification: Vec::new(),
        by_owner: Vec::new(),
        by_age: Vec::new(),
        truncated: false,
        items: Vec::new(),
    };
    r.overdue.upcoming = r.overdue.overdue.clone();
    r.kpis.clear();
    r.summary = crate::summary::summary(&r);
    r
}

/// What the decision page prints: the status, its reasons (up to the cap),
/// the key messages and the decisions (up to the cap).
fn decision_page_sentences(report: &Report) -> Vec<String> {
    let s = &report.summary;
    let mut out = vec![format!("Overall status: {}", s.status.label())];
    out.extend(
        s.reasons
            .iter()
            .take(super::summary::MAX_REASONS)
            .map(|m| m.text.clone()),
    );
    out.extend(s.messages.iter().map(|m| m.text.clone()));
    out.extend(
        s.decisions
            .iter()
            .take(super::summary::MAX_DECISIONS)
            .map(|d| d.text.clone()),
    );
    out
}

fn expected_size_pt(size: PageSize) -> (f32, f32) {
    let (w, h) = size.dimensions_mm();
    (w * 72.0 / 25.4, h * 72.0 / 25.4)
}

fn check_document(pdf: &Pdf, size: PageSize) {
    check_document_fonts(pdf, size, false);
}

/// Page sizes, `/ToUnicode` maps, and the embedded fonts: both DejaVu faces,
/// plus the fallback exactly when the report has CJK text.
fn check_document_fonts(pdf: &Pdf, size: PageSize, cjk: bool) {
    assert!(pdf.page_count() > 1);
    let (w, h) = expected_size_pt(size);
    for page_size in pdf.page_sizes() {
        let (pw, ph) = page_size.expect("every page has a MediaBox");
        assert!(
            (pw - w).abs() < 0.5 && (ph - h).abs() < 0.5,
            "{pw}×{ph} vs {w}×{h}"
        );
    }
    let fonts = pdf.embedded_truetype_fonts();
    let dejavu = fonts.iter().filter(|f| f.contains("+DejaVuSans")).count();
    let fallback = fonts
        .iter()
        .filter(|f| f.contains("+DroidSansFallback"))
        .count();
    assert_eq!(dejavu, 2, "{fonts:?}");
    assert_eq!(fallback, usize::from(cjk), "{fonts:?}");
    assert_eq!(fonts.len(), dejavu + fallback, "{fonts:?}");
    assert!(pdf.type0_fonts_have_to_unicode());
}

#[test]
fn renders_both_sizes_with_extractable_text() {
    let report = sample_report();
    for size in [PageSize::A4, PageSize::Letter] {
        let bytes = render_board(&report, size).expect("render");
        std::fs::write(format!("/tmp/board-sample-{}.pdf", size.as_str()), &bytes)
            .expect("write sample");
        let pdf = Pdf::load(&bytes).expect("lopdf parses the PDF");
        check_document(&pdf, size);

        let pages = pdf.page_texts().expect("text");
        let all = pages.join("\n");
        assert!(pages[0].contains(ORG), "cover lacks the organization");
        for kpi in &report.kpis {
            let value = Figure::show(kpi.value);
            assert!(all.contains(&value), "missing {value}");
        }
        // long titles, names and ratings wrap: no placed string is cut
        for line in all.lines() {
            let line = line.trim();
            assert!(!line.ends_with('…') || line.starts_with('…'), "cut: {line}");
        }
        for expected in ["63.2%", "71.5%", "0/1A2B3C4D", "2025-06-30"] {
            assert!(all.contains(expected), "missing {expected}");
        }
        // Counts print as integers, never "3.0".
        assert!(!all.contains("3.0 "), "a count printed with a decimal");
        // Every page has the footer, the first included.
        let n = pages.len();
        for (i, text) in pages.iter().enumerate() {
            assert!(
                text.contains(&format!("Page {} of {n}", i + 1)),
                "page {i}: {text}"
            );
            assert!(
                text.contains(ORG) && text.contains("as of 2025-06-30"),
                "page {i}"
            );
        }
        // The decision page prints the summary section's sentences as they
        // are (modulo line breaks).
        let decision_page = normalize_space(&pages[0]);
        for sentence in decision_page_sentences(&report) {
            let words = normalize_space(&sentence);
            assert!(decision_page.contains(&words), "page 1 lacks: {words}");
        }
    }
}

#[test]
fn long_tables_repeat_their_header_and_stay_inside_the_margins() {
    let report = sample_report();
    let bytes = render_board(&report, PageSize::Letter).expect("render");
    let pdf = Pdf::load(&bytes).expect("parse");
    let pages = pdf.page_texts().expect("text");
    let overdue_pages: Vec<&String> = pages
        .iter()
        .filter(|t| t.contains("Appendix A — overdue items"))
        .collect();
    assert!(overdue_pages.len() >= 3, "{} pages", overdue_pages.len());
    let continued = pages
        .iter()
        .filter(|t| t.contains("Appendix A — overdue items (continued)"))
        .count();
    assert!(continued >= 2);
    for text in pages
        .iter()
        .filter(|t| t.contains("Appendix A — overdue items (continued)"))
    {
        assert!(
            text.contains("Kind") && text.contains("Days"),
            "header not repeated"
        );
    }
    let all = pages.join("\n");
    assert!(all.contains("Showing 100 of 300."));
    assert!(all.contains("…"), "long titles are truncated");
    // 250 risks in one cell print as a count, not as ids.
    assert!(all.contains("250"));

    // No text baseline below the bottom margin (except the footer band).
    let limit_pt = (279.4 - 18.0) * 72.0 / 25.4;
    let footer_pt = (279.4 - 13.0) * 72.0 / 25.4;
    for (n, page_id) in pdf.document().get_pages() {
        let content = pdf
            .document()
            .get_and_decode_page_content(page_id)
            .expect("content");
        for op in content.operations.iter().filter(|op| op.operator == "Td") {
            let y = op
                .operands
                .get(1)
                .and_then(|o| o.as_float().ok())
                .expect("Td y");
            let from_top = 279.4 * 72.0 / 25.4 - y;
            assert!(
                from_top <= limit_pt + 0.5 || from_top >= footer_pt,
                "page {n}: y {y}"
            );
        }
    }
}

#[test]
fn empty_and_extreme_reports_render() {
    let report = empty_report();
    for size in [PageSize::A4, PageSize::Letter] {
        let bytes = render_board(&report, size).expect("render");
        let pdf = Pdf::load(&bytes).expect("parse");
        check_document(&pdf, size);
        let text = pdf.text().expect("text");
        assert!(text.contains("No trend data for this period."));
        assert!(text.contains("Nothing is overdue"));
        assert!(text.contains("No risks are carried on"));
    }
}

#[test]
fn hostile_values_do_not_panic() {
    let mut r = sample_report();
    r.meta.organization.name = String::new();
    r.meta.position = "9".repeat(500);
    r.meta.certifications = (0..5000)
        .map(|id| CertificationRef {
            id,
            name: format!("Certification {id} 🚀"),
            framework: "x".to_owned(),
            framework_name: "X".to_owned(),
        })
        .collect();
    r.posture.overall.readiness_pct = f64::NAN;
    r.posture.frameworks[0].readiness_pct = f64::INFINITY;
    r.posture.frameworks[1].readiness_pct = -20.0;
    r.posture.frameworks[1].label = "L".repeat(3000);
    r.heatmap.inherent.cells[0].likelihood = 0;
    r.heatmap.inherent.cells[1].impact = 9;
    r.heatmap.inherent.cells[2].count = u64::MAX;
    r.heatmap.residual.cells.truncate(3);
    r.heatmap.top_risks[0].title = format!("{}{}", "\u{0}\t\n".repeat(100), "x".repeat(10_000));
    r.heatmap.above_appetite[0].owner = Some("o".repeat(5000));
    r.trends.points = (0..600)
        .map(|i| TrendPoint {
            date: day(2025, 6, 30) - Duration::days(i64::from(i % 7)),
            readiness_pct: if i % 5 == 0 { f64::NAN } else { f64::from(i) },
            ..r.trends.points[0].clone()
        })
        .collect();
    r.kpis[0].value = Some(Figure::Percent(f64::NAN));
    r.forecast.window_days = -5;
    r.forecast.certifications[0].days_late = Some(i64::MAX);
    r.overdue.overdue.truncated = true;
    r.overdue.overdue.total = 0;
    // the decision page quotes the hostile title and owner in full
    r.summary = crate::summary::summary(&r);
    for size in [PageSize::A4, PageSize::Letter] {
        let bytes = render_board(&r, size).expect("render");
        let pdf = Pdf::load(&bytes).expect("parse");
        check_document(&pdf, size);
        let pages = pdf.page_texts().expect("text");
        assert!(pages.iter().all(|t| t.contains("as of 2025-06-30")));
        let about = pages
            .iter()
            .find(|t| t.contains("About this report"))
            .expect("about page");
        assert!(about.contains(" more"), "certification list is shortened");
        assert!(
            about.contains("999…"),
            "long position is cut on the about page"
        );
    }
}

const CJK_ORG: &str = "さくらクラウド株式会社";
const CJK_OWNERS: [&str; 3] = ["陽翔 佐藤", "結衣 鈴木", "김민준"];

/// The sample report for a Japanese organization with Japanese (and one
/// Korean) owners.
fn cjk_report() -> Report {
    let mut r = sample_report();
    r.meta.organization.name = CJK_ORG.to_owned();
    for (i, risk) in r.heatmap.top_risks.iter_mut().enumerate() {
        risk.owner = Some(CJK_OWNERS[i % CJK_OWNERS.len()].to_owned());
    }
    r.heatmap.top_risks[1].title =
        "データセンターの電源冗長化が未完了（東京リージョン）".to_owned();
    // The summary names the worst risk above appetite, its title and owner.
    r.heatmap.above_appetite.clone_from(&r.heatmap.top_risks);
    r.heatmap.above_appetite.swap(0, 1);
    for (i, item) in r.overdue.overdue.items.iter_mut().enumerate() {
        item.owner = Some(CJK_OWNERS[i % 2].to_owned());
    }
    r.meta.certifications[0].name = "ISMS認証 (ISO/IEC 27001:2022)".to_owned();
    r.summary = crate::summary::summary(&r);
    r
}

#[test]
fn cjk_names_render_in_the_fallback_font_and_extract() {
    let report = cjk_report();
    for size in [PageSize::A4, PageSize::Letter] {
        let bytes = render_board(&report, size).expect("render");
        std::fs::write(format!("/tmp/board-cjk-{}.pdf", size.as_str()), &bytes)
            .expect("write sample");
        assert!(bytes.len() < 400_000, "{} bytes", bytes.len());
        let pdf = Pdf::load(&bytes).expect("lopdf parses the PDF");
        check_document_fonts(&pdf, size, true);

        let pages = pdf.page_texts().expect("text");
        let all = pages.join("\n");
        assert!(pages[0].contains(CJK_ORG), "page 1: {}", pages[0]);
        assert!(all.contains("ISMS認証 (ISO/IEC 27001:2022)"));
        let n = pages.len();
        for (i, text) in pages.iter().enumerate() {
            // The name and the Latin rest of the footer are one line.
            assert!(
                text.contains(&format!("{CJK_ORG} · as of 2025-06-30")),
                "page {i}: {text}"
            );
            assert!(text.contains(&format!("Page {} of {n}", i + 1)));
        }
        // The owner column of the top-risks and overdue tables.
        for owner in CJK_OWNERS {
            assert!(all.contains(owner), "missing owner {owner}");
        }
        let top = pages
            .iter()
            .find(|t| t.contains("Top risks"))
            .expect("top risks page");
        assert!(top.contains("陽翔 佐藤") && top.contains("김민준"));
        // A long Japanese title is cut (or wrapped) by its real widths and
        // still starts with the original characters.
        assert!(all.contains("データセンターの電源"), "{all}");
        assert!(!all.contains('\u{fffd}'));
        // Summary sentences (one names a Japanese risk and owner) survive
        // wrapping; lines may break between CJK characters without a space,
        // so compare without whitespace.
        let squeeze = |t: &str| t.split_whitespace().collect::<String>();
        let decision_page = squeeze(&pages[0]);
        for sentence in decision_page_sentences(&report) {
            assert!(
                decision_page.contains(&squeeze(&sentence)),
                "page 1 lacks: {sentence}"
            );
        }
        assert!(pages[0].contains("結衣 鈴木"));
    }
}

#[test]
fn characters_in_no_font_print_as_question_marks() {
    let mut report = sample_report();
    report.meta.organization.name = "株式会社 🚀 Example".to_owned();
    let bytes = render_board(&report, PageSize::A4).expect("render");
    let pdf = Pdf::load(&bytes).expect("parse");
    check_document_fonts(&pdf, PageSize::A4, true);
    let text = pdf.text().expect("text");
    assert!(text.contains("株式会社 ? Example"), "emoji replaced");
}

#[test]
fn reports_without_cjk_do_not_embed_the_fallback() {
    let bytes = render_board(&sample_report(), PageSize::A4).expect("render");
    let pdf = Pdf::load(&bytes).expect("parse");
    check_document_fonts(&pdf, PageSize::A4, false);
    assert!(!bytes.windows(17).any(|w| w == b"DroidSansFallback"));
}

#[test]
fn page_size_parses_case_insensitively() {
    assert_eq!(PageSize::parse("A4"), Some(PageSize::A4));
    assert_eq!(PageSize::parse("letter"), Some(PageSize::Letter));
    assert_eq!(PageSize::parse("LeTTeR"), Some(PageSize::Letter));
    assert_eq!(PageSize::parse("a5"), None);
    for size in [PageSize::A4, PageSize::Letter] {
        assert_eq!(PageSize::parse(size.as_str()), Some(size));
    }
}

#[test]
fn output_is_much_smaller_than_the_fonts() {
    let bytes = render_board(&sample_report(), PageSize::A4).expect("render");
    assert!(bytes.len() < 400_000, "{} bytes", bytes.len());
}

#[test]
fn scenario_packs_state_their_summary_on_page_one_and_no_page_is_blank() {
    for (name, report) in crate::summary::scenarios::all() {
        for size in [PageSize::A4, PageSize::Letter] {
            let bytes = render_board(&report, size).expect("render");
            let pdf = Pdf::load(&bytes).expect("parse");
            check_document(&pdf, size);
            let pages = pdf.page_texts().expect("text");
            let first = normalize_space(&pages[0]);
            assert!(first.contains(&format!(
                "Overall status: {}",
                report.summary.status.label()
            )));
            for sentence in decision_page_sentences(&report) {
                let words = normalize_space(&sentence);
                assert!(first.contains(&words), "{name}: page 1 lacks {words}");
            }
            // counts print as integers: no KPI count as "N.0"
            let all = normalize_space(&pages.join("\n"));
            // nothing is cut, and no sentence ends twice
            assert!(!all.contains('…'), "{name}: text cut with an ellipsis");
            if let Some(at) = all.find("..") {
                let from = all[..at].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
                panic!("{name}: a doubled full stop: {}", &all[from..at + 2]);
            }
            for kpi in report.kpis.iter().filter(|k| k.unit.is_empty()) {
                let row = format!("{} {}", kpi.label, Figure::show(kpi.value));
                assert!(all.contains(&row), "{name}: {row:?} not printed");
            }
            let review =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/board-review");
            let pixels = pdf_text::rasterize(&format!("{name}-{}", size.as_str()), &bytes, &review);
            assert_eq!(pixels.len(), pages.len(), "{name}: one image per page");
            for (i, page) in pixels.iter().enumerate() {
                assert!(!pdf_text::is_blank(page), "{name} page {} is blank", i + 1);
            }
        }
    }
}

/// Letter and A4 fill their pages: a page that ends because the next block
/// did not fit is at least 70 % full, and no content runs past the bottom
/// margin (a heading keeps at most a short table
/// or a chart with it). Pages that end a part (the decision page, the
/// methodology, the appendices) may be shorter.
#[test]
fn flowing_pages_are_filled_on_letter_and_a4() {
    let reports = crate::summary::scenarios::all()
        .into_iter()
        .chain([("sample", sample_report())]);
    let mut short = Vec::new();
    for (name, report) in reports {
        for size in [PageSize::A4, PageSize::Letter] {
            let fills = super::page_fills(&report, size).expect("layout");
            let shown: Vec<String> = fills
                .iter()
                .map(|f| format!("{:.0}%{}", f.fill * 100.0, if f.flowed { "" } else { "|" }))
                .collect();
            println!("{name} {}: {}", size.as_str(), shown.join(" "));
            for (i, f) in fills.iter().enumerate() {
                assert!(
                    f.lowest_text <= 1.0 + 1e-3,
                    "{name} {}: page {} has text {:.1} % of its height below the bottom margin",
                    size.as_str(),
                    i + 1,
                    (f.lowest_text - 1.0) * 100.0
                );
                if f.flowed && f.fill < 0.7 {
                    short.push(format!(
                        "{name} {}: page {} left {:.0}% full",
                        size.as_str(),
                        i + 1,
                        f.fill * 100.0
                    ));
                }
            }
        }
    }
    assert!(short.is_empty(), "{short:#?}");
}
