//! `certscope`: the thin command line that wires the crates together.

#[cfg(target_os = "linux")]
mod allocator;
mod api;
mod bench;
mod database;
mod demo;
mod report;
mod serve;
mod telemetry;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use certscope_indexer::IndexerConfig;
use certscope_indexer::change_feed::Retention;
use certscope_store::seed::{Preset, SeedConfig};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "certscope",
    version,
    about = "Search, analytics and reporting for compliance programmes"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// PostgreSQL to use. Without it, a private cluster is started in --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Holds the private PostgreSQL cluster and the index.
    #[arg(long, env = "CERTSCOPE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Log format: pretty for people, json for machines.
    #[arg(long, env = "CERTSCOPE_LOG_FORMAT", global = true, value_enum, default_value_t = telemetry::LogFormat::Pretty)]
    pub log_format: telemetry::LogFormat,
    /// Maximum database connections.
    #[arg(
        long,
        env = "CERTSCOPE_DB_MAX_CONNECTIONS",
        global = true,
        default_value_t = 10
    )]
    pub db_max_connections: u32,
    /// Seconds to wait for the database before giving up.
    #[arg(
        long,
        env = "CERTSCOPE_DB_CONNECT_TIMEOUT",
        global = true,
        default_value_t = 5
    )]
    pub db_connect_timeout: u64,
    /// Connections the pool keeps open.
    #[arg(
        long,
        env = "CERTSCOPE_DB_MIN_CONNECTIONS",
        global = true,
        default_value_t = 0
    )]
    pub db_min_connections: u32,
    /// Milliseconds a request waits for a free connection.
    #[arg(
        long,
        env = "CERTSCOPE_DB_ACQUIRE_TIMEOUT_MS",
        global = true,
        default_value_t = 5_000
    )]
    pub db_acquire_timeout_ms: u64,
    /// statement_timeout of the API's connections, in milliseconds (0: the server's).
    #[arg(
        long,
        env = "CERTSCOPE_DB_STATEMENT_TIMEOUT_MS",
        global = true,
        default_value_t = 0
    )]
    pub db_statement_timeout_ms: u64,
    /// A read replica for the API's detail lookups and labels (the indexer always
    /// reads the primary).
    #[arg(long, env = "DATABASE_READ_URL", global = true, hide_env_values = true)]
    pub database_read_url: Option<String>,
}

/// Who a token or a sign-in link stands for.
#[derive(Debug, clap::Args)]
struct Person {
    /// Organization slug.
    #[arg(long)]
    org: String,
    /// officer, executive, auditor or admin.
    #[arg(long, default_value = "officer")]
    role: String,
    /// The user (email); default: the organization's first user with the role.
    #[arg(long)]
    user: Option<String>,
    /// For auditors: a certification it may see (repeat); default: its assignments.
    #[arg(long = "certification")]
    certifications: Vec<i64>,
}

impl Person {
    fn role(&self) -> anyhow::Result<certscope_query_api::Role> {
        certscope_query_api::Role::parse(&self.role).with_context(|| {
            format!(
                "unknown role {:?}; roles are officer, executive, auditor, admin",
                self.role
            )
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the schema migrations.
    Migrate,
    /// Import an OSCAL catalog (JSON) as a framework with its controls.
    ImportOscal {
        /// The catalog file.
        file: PathBuf,
        /// Framework slug (default: made from the catalog's title).
        #[arg(long)]
        slug: Option<String>,
    },
    /// Generate deterministic demo or benchmark data.
    Seed(SeedArgs),
    /// Run the indexer alone: follow PostgreSQL changes into the index until stopped.
    Index(IndexArgs),
    /// Rebuild the index from a consistent snapshot, then catch up.
    Reindex(IndexArgs),
    /// Compare every indexed (kind, id, version) with PostgreSQL.
    VerifyIndex(IndexArgs),
    /// Benchmarks that print their figures (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Reports rendered from PostgreSQL without the API.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Run the API with the indexer in the same process.
    Serve {
        /// Address the API listens on.
        #[arg(long, env = "CERTSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        #[command(flatten)]
        index: IndexArgs,
        #[command(flatten)]
        api: api::ApiArgs,
    },
    /// Print a bearer token for the API.
    Token {
        #[command(flatten)]
        person: Person,
        /// Hours the token is valid.
        #[arg(long, default_value_t = 12)]
        ttl_hours: u64,
        /// HS256 secret (default: DATA_DIR/jwt-secret).
        #[arg(long, env = "CERTSCOPE_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
    },
    /// Print a single-use sign-in link for the web interface (valid 10 minutes).
    SigninLink {
        #[command(flatten)]
        person: Person,
        /// Where people reach Certscope.
        #[arg(
            long,
            env = "CERTSCOPE_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        base_url: String,
    },
    /// Send an operator notice to live event subscribers (the notices room).
    Notify {
        /// The notice, as people will read it.
        message: String,
        /// Only this organization (slug); default: every organization.
        #[arg(long)]
        org: Option<String>,
        /// info, warning or critical.
        #[arg(long, default_value = "info")]
        severity: String,
        /// Minutes after which clients may hide the notice.
        #[arg(long)]
        expires_in_minutes: Option<u32>,
    },
    /// Start everything with demo data: private PostgreSQL, schema, catalogs, data, API.
    Demo {
        /// Address the API listens on.
        #[arg(long, env = "CERTSCOPE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        #[command(flatten)]
        seed: SeedArgs,
        #[command(flatten)]
        index: IndexArgs,
        #[command(flatten)]
        api: api::ApiArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// The board PDF of one organization (same parameters as /v1/reports/board.pdf).
    Board {
        /// Organization slug.
        #[arg(long)]
        org: String,
        /// Where to write the PDF.
        #[arg(long, default_value = "board.pdf")]
        out: PathBuf,
        /// Page size: a4 or letter.
        #[arg(long, default_value = "a4")]
        size: String,
        #[command(flatten)]
        params: report::ReportArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Metrics endpoints and the board PDF of the largest organization, cold and warm.
    Reports {
        /// Cold requests per endpoint (each computes a new report).
        #[arg(long, default_value_t = 5)]
        cold: usize,
        /// Warm requests per endpoint.
        #[arg(long, default_value_t = 50)]
        warm: usize,
        #[command(flatten)]
        index: IndexArgs,
    },
    /// Search latency and throughput: Certscope over HTTP against PostgreSQL
    /// full-text search and ILIKE, same queries, same data, one run.
    Search {
        /// Rotating queries (plain, phrase, id, faceted, filtered, sorted).
        #[arg(long, default_value_t = 240)]
        queries: usize,
        /// Concurrent clients of the second closed-loop run.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Requests per second of the open-loop runs.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// Seconds of each open-loop run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Queries also run with ILIKE (slow: it scans every row).
        #[arg(long, default_value_t = 12)]
        ilike_queries: usize,
        /// Officer questions added to the rotating queries ("how do we ...
        /// <a control title's words>"): most-words matching, stop words.
        #[arg(long, default_value_t = 0)]
        questions: usize,
        /// Certscope alone: no PostgreSQL full-text search or ILIKE (for the
        /// scaling curve, where PostgreSQL takes minutes per pass).
        #[arg(long)]
        certscope_only: bool,
        #[command(flatten)]
        index: IndexArgs,
    },
    /// Live events: subscribers on WebSocket, commit-to-delivery latency at a
    /// fixed rate of requirement status changes, and server memory.
    Events {
        /// Concurrent WebSocket subscribers.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Status changes committed per second.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        /// How long to send changes.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// `socketio` measures socket.io subscribers too, side by side with
        /// WebSocket ones on the same server in the same run.
        #[arg(long, value_enum, default_value_t = bench::events::Transport::Websocket)]
        transport: bench::events::Transport,
        #[command(flatten)]
        index: IndexArgs,
    },
    /// The web interface in a real headless Chromium (Performance API): search
    /// pages from navigation to results painted, the dashboard's first and
    /// repeat loads, bytes per page.
    Web {
        /// Different search pages opened.
        #[arg(long, default_value_t = 50)]
        queries: usize,
        #[command(flatten)]
        index: IndexArgs,
    },
    /// Everything at once for a long time: open-loop searches at 70 % of the
    /// measured capacity, status changes, event subscribers and cold reports;
    /// errors, search p99 per window, server memory, file descriptors,
    /// database connections and the change log over the run.
    Soak {
        #[command(flatten)]
        soak: bench::soak::Soak,
        #[command(flatten)]
        index: IndexArgs,
    },
    /// Commit-to-searchable latency at a fixed rate of row changes (open loop).
    IndexLatency {
        /// Row changes per second.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// How long to send changes.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[command(flatten)]
        index: IndexArgs,
    },
}

#[derive(Debug, Args, Clone)]
pub struct IndexArgs {
    /// Index directory (default: DATA_DIR/index).
    #[arg(long, env = "CERTSCOPE_INDEX_DIR")]
    pub index_dir: Option<PathBuf>,
    /// Milliseconds to let a burst of changes accumulate before indexing it.
    #[arg(long, env = "CERTSCOPE_BATCH_WINDOW_MS", default_value_t = IndexerConfig::DEFAULT_BATCH_WINDOW_MS)]
    pub batch_window_ms: u64,
    /// Hours of change log to keep for indexes that are behind (older ones rebuild).
    #[arg(long, env = "CERTSCOPE_CHANGE_RETENTION_HOURS", default_value_t = Retention::DEFAULT_HOURS)]
    pub change_retention_hours: u64,
    /// Rows of change log to keep at most.
    #[arg(
        long,
        env = "CERTSCOPE_CHANGE_RETENTION_ROWS",
        default_value_t = Retention::DEFAULT_ROWS
    )]
    pub change_retention_rows: i64,
    /// Index writer memory in MiB.
    #[arg(long, env = "CERTSCOPE_INDEX_MEMORY_MB", default_value_t = IndexerConfig::DEFAULT_WRITER_MEMORY_MB)]
    pub index_memory_mb: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PresetArg {
    Small,
    Demo,
    Bench,
}

#[derive(Debug, Args, Clone)]
struct SeedArgs {
    /// Random seed: the same seed, sizes and --as-of give the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Named size; the flags below override parts of it.
    #[arg(long, value_enum, default_value_t = PresetArg::Demo)]
    preset: PresetArg,
    /// The "today" of the data (YYYY-MM-DD); default: today.
    #[arg(long)]
    as_of: Option<chrono::NaiveDate>,
    /// Number of organizations (1..=6).
    #[arg(long)]
    organizations: Option<usize>,
    /// Certifications per organization.
    #[arg(long)]
    certifications: Option<usize>,
    /// Average evidence items per requirement.
    #[arg(long)]
    evidence_per_requirement: Option<f64>,
    /// Risks per organization.
    #[arg(long)]
    risks: Option<usize>,
    /// Evidence rows for the first organization (the benchmark preset uses 1,000,000).
    #[arg(long)]
    large_org_evidence: Option<u64>,
}

impl SeedArgs {
    fn config(&self, progress: bool) -> SeedConfig {
        let preset = match self.preset {
            PresetArg::Small => Preset::Small,
            PresetArg::Demo => Preset::Demo,
            PresetArg::Bench => Preset::Bench,
        };
        let as_of = self
            .as_of
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let mut config = SeedConfig::preset(preset, self.seed, as_of);
        if let Some(n) = self.organizations {
            config.organizations = n;
        }
        if let Some(n) = self.certifications {
            config.certifications_per_org = n;
        }
        if let Some(n) = self.evidence_per_requirement {
            config.evidence_per_requirement = n;
        }
        if let Some(n) = self.risks {
            config.risks_per_org = n;
        }
        if let Some(n) = self.large_org_evidence {
            config.large_org_evidence = Some(n);
        }
        config.progress = progress;
        config
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.global.log_format);
    #[cfg(target_os = "linux")]
    allocator::install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("certscope")
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(run(cli))
}

/// `certscope notify`: appends a notice that every live server delivers.
async fn notify(
    global: &GlobalArgs,
    message: &str,
    org: Option<&str>,
    severity: &str,
    expires_in_minutes: Option<u32>,
) -> anyhow::Result<()> {
    let message = message.trim();
    if message.is_empty() || message.chars().count() > 2000 {
        anyhow::bail!("the notice must have 1 to 2000 characters");
    }
    if !["info", "warning", "critical"].contains(&severity) {
        anyhow::bail!("unknown severity {severity:?}: info, warning or critical");
    }
    let db = database::open(global).await?;
    certscope_store::migrate(&db.pool).await?;
    let org_id = match org {
        Some(slug) => Some(database::organization_id(&db.pool, slug).await?),
        None => None,
    };
    let expires =
        expires_in_minutes.map(|m| chrono::Utc::now() + chrono::Duration::minutes(i64::from(m)));
    let event = certscope_indexer::events::notice(org_id, severity, message, expires);
    let ids = certscope_indexer::events::append(&db.pool, &[event]).await?;
    db.close().await?;
    println!(
        "notice {} sent to {}",
        ids.first().copied().unwrap_or_default(),
        org.map_or_else(
            || "every organization".to_owned(),
            |s| format!("organization {s}")
        )
    );
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => {
            let db = database::open(&cli.global).await?;
            certscope_store::migrate(&db.pool).await?;
            println!("migrations applied");
            db.close().await
        }
        Command::ImportOscal { file, slug } => {
            let db = database::open(&cli.global).await?;
            certscope_store::migrate(&db.pool).await?;
            let bytes = std::fs::read(&file)
                .with_context(|| format!("failed to read {}", file.display()))?;
            let summary = certscope_store::oscal::import_catalog(&db.pool, &bytes, slug.as_deref())
                .await
                .with_context(|| format!("failed to import {}", file.display()))?;
            println!(
                "imported {} as framework {:?}: {} families, {} controls ({} new, {} updated, {} withdrawn)",
                file.display(),
                summary.slug,
                summary.families,
                summary.controls,
                summary.inserted,
                summary.updated,
                summary.withdrawn
            );
            db.close().await
        }
        Command::Seed(args) => {
            let db = database::open(&cli.global).await?;
            certscope_store::migrate(&db.pool).await?;
            let started = Instant::now();
            certscope_store::bootstrap::import_shipped_catalogs(&db.pool).await?;
            let report = certscope_store::seed::seed(&db.pool, &args.config(true)).await?;
            demo::print_seed_report(&report, started.elapsed());
            db.close().await
        }
        Command::Bench(BenchCommand::Search {
            queries,
            clients,
            rate,
            seconds,
            ilike_queries,
            questions,
            certscope_only,
            index,
        }) => {
            let b = bench::search::SearchBench {
                queries,
                clients,
                rate,
                seconds,
                ilike_queries,
                questions,
                certscope_only,
            };
            bench::search::run(&cli.global, &index, b).await
        }
        Command::Bench(BenchCommand::IndexLatency {
            rate,
            seconds,
            index,
        }) => bench::index_latency::run(&cli.global, &index, rate, seconds).await,
        Command::Bench(BenchCommand::Events {
            subscribers,
            rate,
            seconds,
            transport,
            index,
        }) => bench::events::run(&cli.global, &index, subscribers, rate, seconds, transport).await,
        Command::Notify {
            message,
            org,
            severity,
            expires_in_minutes,
        } => {
            notify(
                &cli.global,
                &message,
                org.as_deref(),
                &severity,
                expires_in_minutes,
            )
            .await
        }
        Command::Bench(BenchCommand::Soak { soak, index }) => {
            bench::soak::run(&cli.global, &index, soak).await
        }
        Command::Bench(BenchCommand::Reports { cold, warm, index }) => {
            bench::reports::run(&cli.global, &index, cold, warm).await
        }
        Command::Bench(BenchCommand::Web { queries, index }) => {
            bench::web::run(&cli.global, &index, queries).await
        }
        Command::Report(ReportCommand::Board {
            org,
            out,
            size,
            params,
        }) => report::board(&cli.global, &org, &out, &size, &params).await,
        Command::Index(args) => serve::index(&cli.global, &args).await,
        Command::Reindex(args) => serve::reindex(&cli.global, &args).await,
        Command::VerifyIndex(args) => serve::verify(&cli.global, &args).await,
        Command::Serve { listen, index, api } => {
            serve::serve(&cli.global, &index, &api, &listen).await
        }
        Command::Token {
            person,
            ttl_hours,
            jwt_secret,
        } => {
            let role = person.role()?;
            let keys = certscope_query_api::Keys::new(&api::secret(
                &cli.global,
                jwt_secret.as_deref(),
                api::SecretUse::Mint,
            )?);
            let db = database::open(&cli.global).await?;
            let token = api::issue_token(
                &db.pool,
                &keys,
                &person.org,
                role,
                person.user.as_deref(),
                &person.certifications,
                std::time::Duration::from_secs(ttl_hours * 3600),
            )
            .await;
            db.close().await?;
            println!("{}", token?);
            Ok(())
        }
        Command::SigninLink { person, base_url } => {
            let role = person.role()?;
            let db = database::open(&cli.global).await?;
            // the links table may be newer than the database
            certscope_store::migrate(&db.pool).await?;
            let link = api::signin_link(
                &db.pool,
                &base_url,
                &person.org,
                role,
                person.user.as_deref(),
                &person.certifications,
            )
            .await;
            db.close().await?;
            println!("{}", link?);
            Ok(())
        }
        Command::Demo {
            listen,
            seed,
            index,
            api,
        } => demo::run(&cli.global, &index, &api, &listen, seed.config(true)).await,
    }
}
