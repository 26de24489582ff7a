//! API settings from flags and environment, the token secret, and `certscope token`.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use certscope_query_api::admission::Limits;
use certscope_query_api::events::EventConfig;
use certscope_query_api::{ApiConfig, Keys, Role, auth};
use clap::Args;
use sqlx::PgPool;

use crate::GlobalArgs;
use crate::database;

#[derive(Debug, Args, Clone)]
pub struct ApiArgs {
    /// HS256 secret for bearer tokens (default: DATA_DIR/jwt-secret, created on first use).
    #[arg(long, env = "CERTSCOPE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Origins allowed by CORS (repeat, or comma-separate in the environment).
    #[arg(
        long = "cors-origin",
        env = "CERTSCOPE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Per-request timeout in milliseconds.
    #[arg(long, env = "CERTSCOPE_REQUEST_TIMEOUT_MS", default_value_t = ApiConfig::DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// Sustained requests per second allowed per token (burst: twice that).
    #[arg(long, env = "CERTSCOPE_RATE_PER_TOKEN", default_value_t = ApiConfig::DEFAULT_RATE_PER_TOKEN)]
    pub rate_per_token: f64,
    /// Sustained requests per second allowed per client address (burst: twice that).
    #[arg(long, env = "CERTSCOPE_RATE_PER_IP", default_value_t = ApiConfig::DEFAULT_RATE_PER_IP)]
    pub rate_per_ip: f64,
    /// Longest wait, in milliseconds, for a requested index position.
    #[arg(long, env = "CERTSCOPE_MAX_POSITION_WAIT_MS", default_value_t = ApiConfig::DEFAULT_POSITION_WAIT_MS)]
    pub max_position_wait_ms: u64,
    /// MiB of responses kept in the cache (0 turns it off).
    #[arg(long, env = "CERTSCOPE_CACHE_MIB", default_value_t = ApiConfig::DEFAULT_CACHE_MIB)]
    pub cache_mib: u64,
    /// Live events queued per connection before it is dropped as a slow consumer.
    #[arg(long, env = "CERTSCOPE_EVENT_QUEUE", default_value_t = EventConfig::DEFAULT_QUEUE)]
    pub event_queue: usize,
    /// Live event connections (WebSocket and SSE) open at once per token.
    #[arg(
        long,
        env = "CERTSCOPE_EVENT_CONNECTIONS_PER_TOKEN",
        default_value_t = EventConfig::DEFAULT_CONNECTIONS_PER_TOKEN
    )]
    pub event_connections_per_token: usize,
    /// Rooms one live event connection may follow.
    #[arg(long, env = "CERTSCOPE_EVENT_ROOMS", default_value_t = EventConfig::DEFAULT_ROOMS)]
    pub event_rooms: usize,
    /// Events retained for clients that resume: at most this many...
    #[arg(long, env = "CERTSCOPE_EVENT_RETAIN", default_value_t = EventConfig::DEFAULT_RETAIN)]
    pub event_retain: usize,
    /// ...and none older than this many hours.
    #[arg(long, env = "CERTSCOPE_EVENT_RETAIN_HOURS", default_value_t = EventConfig::DEFAULT_RETAIN_HOURS)]
    pub event_retain_hours: u64,
    /// Trusted identity providers (single sign-on): a JSON array, inline or in
    /// a file (see README, "Single sign-on").
    #[arg(long, env = "CERTSCOPE_OIDC_PROVIDERS")]
    pub oidc_providers: Option<String>,
    /// Bearer token Prometheus must send to read /metrics (default: /metrics is open).
    #[arg(long, env = "CERTSCOPE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Searches run at once; more wait (load shedding). Default: one per core.
    #[arg(long, env = "CERTSCOPE_SEARCH_CONCURRENCY")]
    pub search_concurrency: Option<usize>,
    /// Searches waiting for a turn; one more takes the oldest one's place
    /// (which is answered 503) and makes it overload. Default: 32 per
    /// running search.
    #[arg(long, env = "CERTSCOPE_SEARCH_QUEUE")]
    pub search_queue: Option<usize>,
    /// A waiting line longer than this is overload at once (the newest
    /// waiting search gets the next turn, unless the oldest has waited half
    /// of --search-max-wait-ms); at --search-queue or more only a full line
    /// is. Default: 8 per running search.
    #[arg(long, env = "CERTSCOPE_SEARCH_OVERLOAD_LINE")]
    pub search_overload_line: Option<usize>,
    /// Longest wait for a turn, in milliseconds, before 503 with Retry-After.
    #[arg(long, env = "CERTSCOPE_SEARCH_MAX_WAIT_MS", default_value_t = Limits::DEFAULT_MAX_WAIT_MS)]
    pub search_max_wait_ms: u64,
    /// A search waiting longer than this, in milliseconds, is late...
    #[arg(long, env = "CERTSCOPE_SEARCH_LATE_AFTER_MS", default_value_t = Limits::DEFAULT_LATE_AFTER_MS)]
    pub search_late_after_ms: u64,
    /// ...and a waiting line late for this long, in milliseconds, is
    /// overload (the newest waiting search gets the next turn, and while
    /// overload refuses searches a late one is refused at the next turn).
    #[arg(long, env = "CERTSCOPE_SEARCH_OVERLOAD_INTERVAL_MS", default_value_t = Limits::DEFAULT_OVERLOAD_INTERVAL_MS)]
    pub search_overload_interval_ms: u64,
    /// Searches run at once while overload refuses searches. Default: as
    /// many as the cores hold searches split over up to 4 of them (one on
    /// up to 7 cores).
    #[arg(long, env = "CERTSCOPE_SEARCH_OVERLOAD_CONCURRENCY")]
    pub search_overload_concurrency: Option<usize>,
    /// Publish new index segments without decoding their columns and recent
    /// statistics first (their first searches pay it): for measuring what
    /// warming saves (`bench search`).
    #[arg(long, env = "CERTSCOPE_NO_SEARCH_WARMING")]
    pub no_search_warming: bool,
    /// Reports computed (or board PDFs rendered) at once; more wait their
    /// turn. Default: half the cores, at least one, so that cold reports
    /// leave cores to searches.
    #[arg(long, env = "CERTSCOPE_REPORT_CONCURRENCY")]
    pub report_concurrency: Option<usize>,
    /// Seconds between WebSocket pings and SSE keep-alives.
    #[arg(long, env = "CERTSCOPE_EVENT_HEARTBEAT_SECS", default_value_t = EventConfig::DEFAULT_HEARTBEAT_SECS)]
    pub event_heartbeat_secs: u64,
}

/// Who asks for the token secret: a server may create it on first start; a
/// command that mints tokens must use the server's and never makes one (a new
/// secret would sign tokens no running server accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    Serve,
    Mint,
}

/// The token secret: the flag/environment, else the file in the data dir.
pub fn secret(
    global: &GlobalArgs,
    explicit: Option<&str>,
    purpose: SecretUse,
) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = explicit {
        if s.len() < 16 {
            bail!("CERTSCOPE_JWT_SECRET must be at least 16 bytes");
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = database::data_dir(global).join("jwt-secret");
    match purpose {
        SecretUse::Serve => secret_file(&path),
        SecretUse::Mint => std::fs::read(&path).with_context(|| {
            format!(
                "no token secret at {}: tokens must be signed with the server's secret. \
                 Pass the server's --data-dir (or CERTSCOPE_DATA_DIR), or its --jwt-secret \
                 (CERTSCOPE_JWT_SECRET); `certscope serve` and `certscope demo` create the \
                 file in their data directory on first start",
                path.display()
            )
        }),
    }
}

fn secret_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(bytes) = std::fs::read(path) {
        return Ok(bytes);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let text = hex::encode(bytes);
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    tracing::info!(path = %path.display(), "created a token secret");
    Ok(text.into_bytes())
}

pub fn config(global: &GlobalArgs, args: &ApiArgs) -> anyhow::Result<ApiConfig> {
    let mut c = ApiConfig::new(secret(
        global,
        args.jwt_secret.as_deref(),
        SecretUse::Serve,
    )?);
    c.cors_origins = args.cors_origins.clone();
    c.request_timeout = Duration::from_millis(args.request_timeout_ms.max(1));
    if args.rate_per_token <= 0.0 || args.rate_per_ip <= 0.0 {
        bail!("rates must be positive");
    }
    c.rate_per_token = args.rate_per_token;
    c.burst_per_token = args.rate_per_token * 2.0;
    c.rate_per_ip = args.rate_per_ip;
    c.burst_per_ip = args.rate_per_ip * 2.0;
    c.max_position_wait = Duration::from_millis(args.max_position_wait_ms);
    c.cache_bytes = args.cache_mib.saturating_mul(1 << 20);
    let limits = &mut c.search_limits;
    if let Some(n) = args.search_concurrency {
        if n == 0 {
            bail!("--search-concurrency must be at least 1");
        }
        limits.concurrency = n;
        limits.queue = Limits::QUEUE_PER_TURN * n;
        limits.overload_line = Limits::OVERLOAD_LINE_PER_TURN * n;
    }
    if let Some(q) = args.search_queue {
        limits.queue = q;
    }
    if let Some(n) = args.search_overload_line {
        if n == 0 {
            bail!(
                "--search-overload-line must be at least 1 (a line of 0 would make every wait overload)"
            );
        }
        limits.overload_line = n;
    }
    limits.max_wait = Duration::from_millis(args.search_max_wait_ms);
    limits.late_after = Duration::from_millis(args.search_late_after_ms);
    if args.search_overload_interval_ms == 0 {
        bail!("--search-overload-interval-ms must be at least 1");
    }
    limits.overload_interval = Duration::from_millis(args.search_overload_interval_ms);
    if let Some(n) = args.search_overload_concurrency {
        if n == 0 {
            bail!("--search-overload-concurrency must be at least 1");
        }
        limits.overload_concurrency = n;
    }
    c.warm_searchers = !args.no_search_warming;
    if let Some(n) = args.report_concurrency {
        if n == 0 {
            bail!("--report-concurrency must be at least 1");
        }
        c.report_concurrency = n;
    }
    if args.event_queue == 0 || args.event_connections_per_token == 0 || args.event_rooms == 0 {
        bail!("event queue, connection and room limits must be at least 1");
    }
    c.events.queue = args.event_queue;
    c.events.max_connections_per_token = args.event_connections_per_token;
    c.events.max_rooms_per_connection = args.event_rooms;
    c.events.retain_events = args.event_retain;
    c.events.retain_age = Duration::from_secs(args.event_retain_hours * 3600);
    c.events.heartbeat = Duration::from_secs(args.event_heartbeat_secs.max(1));
    if let Some(source) = &args.oidc_providers {
        c.providers = certscope_query_api::sso::config::parse(source)
            .context("failed to read the identity providers (--oidc-providers)")?;
    }
    if let Some(t) = &args.metrics_token {
        if t.len() < 16 {
            bail!("CERTSCOPE_METRICS_TOKEN must be at least 16 characters");
        }
        c.metrics_token = Some(t.clone());
    }
    Ok(c)
}

/// Issues a token for a user of organization `org_slug` with `role`. Without
/// `email`, the organization's first user with that role. An auditor's
/// certifications default to its assignments.
pub async fn issue_token(
    pool: &PgPool,
    keys: &Keys,
    org_slug: &str,
    role: Role,
    email: Option<&str>,
    certifications: &[i64],
    ttl: Duration,
) -> anyhow::Result<String> {
    let scope = resolve_scope(pool, org_slug, role, email, certifications).await?;
    Ok(keys.issue(&auth::claims(
        scope.user_id,
        scope.org_id,
        scope.role,
        scope
            .certifications
            .map(|c| c.into_iter().collect::<Vec<i64>>()),
        ttl,
    ))?)
}

/// A single-use sign-in link for the web interface (valid ten minutes),
/// for the same person a token would name.
pub async fn signin_link(
    pool: &PgPool,
    base_url: &str,
    org_slug: &str,
    role: Role,
    email: Option<&str>,
    certifications: &[i64],
) -> anyhow::Result<String> {
    let scope = resolve_scope(pool, org_slug, role, email, certifications).await?;
    let token = certscope_query_api::web::session::create_link(pool, &scope).await?;
    Ok(format!("{}/signin/{token}", base_url.trim_end_matches('/')))
}

/// Who `--org`, `--role`, `--user` and `--certification` name: the user (the
/// organization's first with the role when no email is given) and, for an
/// auditor, its certifications (its assignments unless listed).
pub async fn resolve_scope(
    pool: &PgPool,
    org_slug: &str,
    role: Role,
    email: Option<&str>,
    certifications: &[i64],
) -> anyhow::Result<certscope_query_api::Scope> {
    let org = database::organization_id(pool, org_slug).await?;
    let user: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM users WHERE organization_id = $1 AND role = $2 \
         AND ($3::text IS NULL OR lower(email) = lower($3)) ORDER BY id LIMIT 1",
    )
    .bind(org)
    .bind(role.as_str())
    .bind(email)
    .fetch_optional(pool)
    .await?;
    let user = user.with_context(|| {
        format!(
            "organization {org_slug:?} has no {} user{}",
            role.as_str(),
            email.map(|e| format!(" {e}")).unwrap_or_default()
        )
    })?;
    let certs = if role == Role::Auditor {
        let certs: Vec<i64> = if certifications.is_empty() {
            sqlx::query_scalar(
                "SELECT certification_id FROM auditor_assignments WHERE organization_id = $1 AND user_id = $2 ORDER BY 1",
            )
            .bind(org)
            .bind(user)
            .fetch_all(pool)
            .await?
        } else {
            let found: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM certifications WHERE organization_id = $1 AND id = ANY($2) ORDER BY 1",
            )
            .bind(org)
            .bind(certifications)
            .fetch_all(pool)
            .await?;
            if let Some(missing) = certifications.iter().find(|c| !found.contains(c)) {
                bail!("certification {missing} does not belong to {org_slug:?}");
            }
            found
        };
        Some(certs)
    } else {
        if !certifications.is_empty() {
            bail!("--certification is only for auditors");
        }
        None
    };
    Ok(certscope_query_api::Scope {
        user_id: user,
        org_id: org,
        role,
        certifications: certs.map(|c| c.into_iter().collect()),
    })
}

/// Sign-in links for an officer, an executive and an auditor of the first
/// organization that has all three, for the demo's printout.
pub async fn demo_signin_links(
    pool: &PgPool,
    base_url: &str,
) -> anyhow::Result<Vec<(Role, String)>> {
    let slug: Option<String> = sqlx::query_scalar(
        "SELECT o.slug FROM organizations o WHERE          (SELECT count(DISTINCT u.role) FROM users u WHERE u.organization_id = o.id             AND u.role IN ('officer', 'executive', 'auditor')) = 3 ORDER BY o.id LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some(slug) = slug else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for role in [Role::Officer, Role::Executive, Role::Auditor] {
        out.push((
            role,
            signin_link(pool, base_url, &slug, role, None, &[]).await?,
        ));
    }
    Ok(out)
}

/// One officer token per organization, for the demo's printout.
pub async fn demo_tokens(pool: &PgPool, keys: &Keys) -> anyhow::Result<Vec<(String, String)>> {
    let slugs: Vec<String> = sqlx::query_scalar(
        "SELECT o.slug FROM organizations o WHERE EXISTS \
         (SELECT 1 FROM users u WHERE u.organization_id = o.id AND u.role = 'officer') ORDER BY o.id",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for slug in slugs {
        let token = issue_token(
            pool,
            keys,
            &slug,
            Role::Officer,
            None,
            &[],
            Duration::from_secs(7 * 24 * 3600),
        )
        .await?;
        out.push((slug, token));
    }
    Ok(out)
}
