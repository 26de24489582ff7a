//! Believable names and artefact text for seeded data: evidence that reads like the
//! policies, exports, reviews, tickets and screenshots auditors actually receive,
//! each mentioning the control it supports.

use chrono::NaiveDate;
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// A seeded organization: slug, display name, and the names its people have.
#[derive(Debug, Clone, Copy)]
pub struct OrgProfile {
    pub slug: &'static str,
    pub name: &'static str,
    pub given: &'static [&'static str],
    pub family: &'static [&'static str],
    pub systems: &'static [&'static str],
}

const LATIN_GIVEN: &[&str] = &[
    "Amelia", "Jonas", "Priya", "Mateo", "Chloé", "Tobias", "Aisha", "Liam", "Sofia", "Noah",
    "Hannah", "Ravi", "Elena", "Marcus", "Zoë", "Björn",
];
const LATIN_FAMILY: &[&str] = &[
    "Okafor",
    "Müller",
    "Fernández",
    "Nakamura",
    "Lindqvist",
    "O'Brien",
    "Kowalski",
    "Haddad",
    "Rossi",
    "Dubois",
    "Patel",
    "Andersen",
    "García",
    "Novak",
];

pub const ORGS: &[OrgProfile] = &[
    OrgProfile {
        slug: "northwind-health",
        name: "Northwind Health",
        given: LATIN_GIVEN,
        family: LATIN_FAMILY,
        systems: &[
            "Patient Portal",
            "EHR Integration Hub",
            "Claims Processing",
            "Corporate IT",
            "Data Warehouse",
        ],
    },
    OrgProfile {
        slug: "sakura-cloud",
        name: "さくらクラウド株式会社",
        given: &["陽翔", "結衣", "蓮", "美咲", "大翔", "葵", "湊", "陽菜"],
        family: &[
            "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村",
        ],
        systems: &[
            "IaaS Control Plane",
            "Object Storage",
            "Customer Console",
            "Billing Platform",
        ],
    },
    OrgProfile {
        slug: "acme-payments",
        name: "Acme Payments GmbH",
        given: LATIN_GIVEN,
        family: LATIN_FAMILY,
        systems: &[
            "Card Processing",
            "Merchant API",
            "Settlement Engine",
            "Fraud Scoring",
        ],
    },
    OrgProfile {
        slug: "hellenic-grid",
        name: "Ελληνικό Δίκτυο Ενέργειας Α.Ε.",
        given: &[
            "Γιώργος",
            "Μαρία",
            "Νίκος",
            "Ελένη",
            "Δημήτρης",
            "Κατερίνα",
            "Κώστας",
            "Σοφία",
        ],
        family: &[
            "Παπαδόπουλος",
            "Οικονόμου",
            "Γεωργίου",
            "Νικολάου",
            "Αλεξίου",
            "Βασιλείου",
        ],
        systems: &[
            "SCADA Gateway",
            "Metering Platform",
            "Outage Management",
            "Corporate IT",
        ],
    },
    OrgProfile {
        slug: "polar-bank",
        name: "Полярный Банк",
        given: &[
            "Анна",
            "Дмитрий",
            "Елена",
            "Сергей",
            "Ольга",
            "Иван",
            "Мария",
            "Алексей",
        ],
        family: &[
            "Иванова",
            "Смирнов",
            "Кузнецова",
            "Попов",
            "Соколова",
            "Лебедев",
        ],
        systems: &[
            "Core Banking",
            "Mobile Banking",
            "SWIFT Gateway",
            "Corporate IT",
        ],
    },
    OrgProfile {
        slug: "nile-logistics",
        name: "شركة النيل للخدمات اللوجستية",
        given: &[
            "أحمد",
            "فاطمة",
            "محمد",
            "ليلى",
            "يوسف",
            "نور",
            "عمر",
            "سارة",
        ],
        family: &["حسن", "إبراهيم", "منصور", "عبد الله", "السيد", "خليل"],
        systems: &[
            "Fleet Tracking",
            "Warehouse Management",
            "Customer Portal",
            "Corporate IT",
        ],
    },
];

/// Family-specific vocabulary: what an export of that area looks like.
fn family_vocabulary(family_key: &str) -> (&'static str, &'static [&'static str]) {
    match family_key {
        "ac" => (
            "Okta",
            &[
                "mfa_required=true",
                "session_idle_timeout_minutes=15",
                "max_failed_logins=5",
                "privileged_roles_reviewed=quarterly",
            ],
        ),
        "at" => (
            "KnowBe4",
            &[
                "phishing_simulation_frequency=monthly",
                "course=Security Awareness 2026",
                "completion_rate=97.4%",
            ],
        ),
        "au" => (
            "Splunk",
            &[
                "audit_log_retention_days=400",
                "forwarders_reporting=100%",
                "alert_on_log_failure=true",
                "ntp_sync=enabled",
            ],
        ),
        "ca" => (
            "ServiceNow GRC",
            &[
                "assessment_cycle=annual",
                "poam_items_open=12",
                "continuous_monitoring=enabled",
            ],
        ),
        "cm" => (
            "Terraform Cloud",
            &[
                "baseline=CIS Level 2",
                "drift_detection=enabled",
                "unauthorized_change_alerts=true",
                "approved_change_board=CAB",
            ],
        ),
        "cp" => (
            "Veeam",
            &[
                "backup_frequency=daily",
                "offsite_copy=immutable",
                "restore_test=quarterly",
                "rto_hours=4",
                "rpo_hours=1",
            ],
        ),
        "ia" => (
            "Azure AD",
            &[
                "password_min_length=14",
                "phishing_resistant_mfa=FIDO2",
                "service_account_rotation_days=90",
            ],
        ),
        "ir" => (
            "PagerDuty",
            &[
                "incident_severity_levels=4",
                "on_call_rotation=24x7",
                "tabletop_exercise=semiannual",
            ],
        ),
        "ma" => (
            "Jira Service Management",
            &[
                "maintenance_window=Sunday 02:00-04:00 UTC",
                "remote_maintenance_mfa=true",
            ],
        ),
        "mp" => (
            "Iron Mountain",
            &[
                "media_sanitization=NIST 800-88 purge",
                "certificates_of_destruction=retained",
            ],
        ),
        "pe" => (
            "Genetec",
            &[
                "badge_access_review=monthly",
                "visitor_log_retention_days=365",
                "cctv_retention_days=90",
            ],
        ),
        "pl" => (
            "Confluence",
            &["ssp_version=4.1", "rules_of_behavior_acknowledged=100%"],
        ),
        "ps" => (
            "Workday",
            &[
                "background_checks=completed",
                "termination_access_removal_hours=24",
            ],
        ),
        "ra" => (
            "Tenable.io",
            &[
                "scan_frequency=weekly",
                "critical_remediation_days=15",
                "authenticated_scans=true",
            ],
        ),
        "sa" => (
            "GitHub Advanced Security",
            &[
                "sast=enabled",
                "dependency_review=required",
                "sbom_format=CycloneDX",
            ],
        ),
        "sc" => (
            "AWS Config",
            &[
                "tls_min_version=1.2",
                "encryption_at_rest=AES-256 KMS",
                "default_deny_security_groups=true",
            ],
        ),
        "si" => (
            "CrowdStrike Falcon",
            &[
                "edr_coverage=99.6%",
                "patch_sla_critical_days=14",
                "file_integrity_monitoring=enabled",
            ],
        ),
        "sr" => (
            "OneTrust Vendorpedia",
            &[
                "supplier_risk_tiering=enabled",
                "sbom_required_for_critical=true",
            ],
        ),
        "pt" => (
            "OneTrust Privacy",
            &[
                "consent_records=retained",
                "purpose_specification=documented",
                "privacy_notice_version=2026.2",
            ],
        ),
        "pm" => (
            "Archer",
            &["risk_register_review=quarterly", "program_plan_version=3"],
        ),
        _ => (
            "ServiceNow",
            &["control_owner_assigned=true", "review_frequency=annual"],
        ),
    }
}

/// One evidence artefact's text fields.
#[derive(Debug, Clone)]
pub struct Artefact {
    pub title: String,
    pub description: String,
    pub content: String,
    pub file_name: String,
    pub media_type: &'static str,
}

/// What the artefact is about.
#[derive(Debug, Clone, Copy)]
pub struct ControlRef<'a> {
    pub display_id: &'a str,
    pub title: &'a str,
    pub family_key: &'a str,
    pub family_title: &'a str,
    pub statement: &'a str,
}

fn first_sentence(statement: &str) -> String {
    let line = statement
        .lines()
        .map(|l| l.trim())
        .find(|l| l.len() > 12)
        .unwrap_or("");
    let line = line
        .trim_start_matches(|c: char| c.is_ascii_alphanumeric() && line.len() > 3)
        .trim_start_matches(['.', ' ']);
    let mut s: String = line.chars().take(220).collect();
    if s.is_empty() {
        s = "the control objective is met".into();
    }
    s
}

/// Where an artefact comes from: which organization's system, for which
/// control, made by whom and when.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub org: &'a OrgProfile,
    pub system: &'a str,
    pub control: ControlRef<'a>,
    /// Who produced or reviewed it.
    pub person: &'a str,
    pub collected: NaiveDate,
    /// Varies ticket numbers between artefacts of the same control.
    pub serial: u64,
}

/// One artefact of a kind drawn from `rng`, its text built from `origin`.
pub fn artefact(rng: &mut ChaCha8Rng, origin: &Origin<'_>) -> Artefact {
    let Origin {
        org,
        system,
        control,
        person,
        collected,
        serial,
    } = *origin;
    let (tool, settings) = family_vocabulary(control.family_key);
    let id = control.display_id;
    let title_lower = control.title.to_lowercase();
    let date = collected.format("%Y-%m-%d");
    let quarter = (collected
        .format("%m")
        .to_string()
        .parse::<u32>()
        .unwrap_or(1)
        - 1)
        / 3
        + 1;
    let year = collected.format("%Y");
    let objective = first_sentence(control.statement);
    let file_stem = control
        .display_id
        .to_lowercase()
        .replace(['(', ')'], "")
        .replace(' ', "-");
    match rng.random_range(0..8) {
        0 => {
            let (major, minor) = (rng.random_range(1..6), rng.random_range(0..10));
            Artefact {
                title: format!("{} Policy v{major}.{minor}", control.family_title),
                description: format!(
                    "Approved {} policy covering {id} {}.",
                    control.family_title.to_lowercase(),
                    control.title
                ),
                content: format!(
                    "{org} {fam} Policy, version {major}.{minor}, approved by {person} on {date}. Purpose: this policy sets the \
                     requirements for {title_lower} in support of NIST SP 800-53 {id}. Scope: all workforce members, contractors \
                     and systems inside the {system} authorization boundary. Policy statement: {objective} Roles: the control \
                     owner maintains procedures; the CISO approves exceptions, which expire after 90 days. Review: annually or \
                     after a significant change.",
                    org = org.name,
                    fam = control.family_title,
                ),
                file_name: format!("{}-policy-v{major}-{minor}.pdf", control.family_key),
                media_type: "application/pdf",
            }
        }
        1 => {
            let lines: Vec<&str> = settings
                .choose_multiple(rng, settings.len().min(3))
                .copied()
                .collect();
            Artefact {
                title: format!("{system} {tool} configuration export"),
                description: format!(
                    "Configuration export from {tool} demonstrating {id} {}.",
                    control.title
                ),
                content: format!(
                    "Configuration export from {tool} for {system}, generated {date} by {person}. Evidence for {id} \
                     ({}). Settings in effect: {}. Exported values were compared with the approved baseline; no deviations \
                     were found.",
                    control.title,
                    lines.join("; "),
                ),
                file_name: format!("{file_stem}-{}-config-{date}.json", slug_word(system)),
                media_type: "application/json",
            }
        }
        2 => {
            let accounts = rng.random_range(40..2400);
            let removed = rng.random_range(0..accounts / 20 + 1);
            let changed = rng.random_range(0..accounts / 15 + 1);
            Artefact {
                title: format!("Access review Q{quarter} {year}: {system}"),
                description: format!("Quarterly access review supporting {id} {}.", control.title),
                content: format!(
                    "Quarterly user access review of {system} for Q{quarter} {year}, completed by {person}. {accounts} \
                     accounts reviewed, {removed} accounts disabled as no longer required, {changed} privilege changes \
                     approved by managers. Review performed for control {id} {}: {objective}",
                    control.title
                ),
                file_name: format!("access-review-q{quarter}-{year}-{}.csv", slug_word(system)),
                media_type: "text/csv",
            }
        }
        3 => {
            let key = ["SEC", "GRC", "OPS", "IT"]
                .choose(rng)
                .copied()
                .unwrap_or("SEC");
            let number = 1000 + serial % 9000;
            Artefact {
                title: format!("{key}-{number}: implement {title_lower}"),
                description: format!("Change ticket tracking implementation of {id}."),
                content: format!(
                    "Ticket {key}-{number} opened by {person} on {date} for {system}. Summary: implement {title_lower} \
                     ({id}). Work performed: {objective} Testing: verified in staging, peer reviewed, approved by the change \
                     advisory board. Status: resolved.",
                ),
                file_name: format!("{}-{number}.txt", key.to_lowercase()),
                media_type: "text/plain",
            }
        }
        4 => Artefact {
            title: format!("Screenshot: {tool} console for {system}"),
            description: format!(
                "Screenshot showing {id} {} configured in {tool}.",
                control.title
            ),
            content: format!(
                "Screenshot of the {tool} administration console for {system}, captured {date} by {person}. The screen shows \
                 the settings page for {title_lower} with {} highlighted. Visible text: \"{}\". Supports control {id}.",
                settings.choose(rng).copied().unwrap_or("policy enforced"),
                settings.join(", "),
            ),
            file_name: format!("screenshot-{file_stem}-{date}.png"),
            media_type: "image/png",
        },
        5 => {
            let events = rng.random_range(1_000..900_000);
            Artefact {
                title: format!("{system} audit log extract {date}"),
                description: format!("Log extract demonstrating monitoring for {id}."),
                content: format!(
                    "Audit log extract from {system} exported through {tool} on {date}: {events} events over 24 hours, \
                     no gaps in collection, alerts routed to the security operations queue. Reviewed by {person} for \
                     {id} {}.",
                    control.title
                ),
                file_name: format!("audit-log-{}-{date}.log", slug_word(system)),
                media_type: "text/plain",
            }
        }
        6 => {
            let rate = rng.random_range(880..1000) as f64 / 10.0;
            Artefact {
                title: format!(
                    "Training completion report {year}: {}",
                    control.family_title
                ),
                description: format!("Training records for staff responsible for {id}."),
                content: format!(
                    "Training completion report for {year}, prepared by {person}. {rate:.1}% of staff with {} \
                     responsibilities completed the annual module on {title_lower}. Overdue staff were reminded and \
                     escalated to their managers. Maps to {id}.",
                    control.family_title.to_lowercase()
                ),
                file_name: format!("training-{}-{year}.pdf", control.family_key),
                media_type: "application/pdf",
            }
        }
        _ => {
            let vendor = [
                "Datadog",
                "Snowflake",
                "Stripe",
                "Atlassian",
                "Cloudflare",
                "Twilio",
            ]
            .choose(rng)
            .copied()
            .unwrap_or("Datadog");
            Artefact {
                title: format!("{vendor} SOC 2 Type II report review"),
                description: format!(
                    "Third-party attestation reviewed for inherited control {id}."
                ),
                content: format!(
                    "Review of the {vendor} SOC 2 Type II report for the period ending {date}, performed by {person}. \
                     No exceptions relevant to {title_lower} ({id}); complementary user entity controls are implemented \
                     for {system}.",
                ),
                file_name: format!("{}-soc2-{year}.pdf", vendor.to_lowercase()),
                media_type: "application/pdf",
            }
        }
    }
}

fn slug_word(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub const RISKS: &[(&str, &str)] = &[
    ("Ransomware encrypts production databases", "security"),
    (
        "Privileged credentials phished from administrators",
        "security",
    ),
    ("Unpatched VPN appliance exploited", "technology"),
    ("Processor suffers a personal data breach", "third_party"),
    ("Cloud storage bucket exposed to the internet", "security"),
    ("Insider exfiltrates customer records", "security"),
    ("Backup restore fails during an outage", "operational"),
    ("Key management service unavailable", "technology"),
    (
        "Denial of service against the customer portal",
        "operational",
    ),
    ("Data centre power loss exceeds UPS runtime", "operational"),
    ("Records kept beyond the retention schedule", "compliance"),
    ("Personal data processed without a lawful basis", "privacy"),
    ("Audit logs tampered with or deleted", "security"),
    (
        "Build pipeline compromised through a dependency",
        "technology",
    ),
    ("Unsanctioned SaaS holds company data", "third_party"),
    ("Leavers keep access after offboarding", "security"),
    ("Expired TLS certificate causes an outage", "technology"),
    ("Unencrypted laptop lost in transit", "security"),
    ("Help desk socially engineered into a reset", "security"),
    (
        "Incident response team understaffed out of hours",
        "operational",
    ),
    ("Legacy platform past end of vendor support", "technology"),
    ("Privacy notice no longer matches processing", "privacy"),
    ("Cross-border transfer without safeguards", "privacy"),
    (
        "Access rights accumulate through role changes",
        "compliance",
    ),
    ("Emergency changes bypass change management", "compliance"),
    (
        "Critical supplier fails a financial health check",
        "third_party",
    ),
    ("Data subject requests answered late", "privacy"),
    ("Security awareness completion below target", "compliance"),
];
