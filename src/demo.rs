//! `certscope demo`: one command from nothing to a running product with data.

use std::time::{Duration, Instant};

use anyhow::Context;
use certscope_store::seed::{SeedConfig, SeedReport};

use crate::api::ApiArgs;
use crate::database;
use crate::{GlobalArgs, IndexArgs};

pub async fn run(
    global: &GlobalArgs,
    index: &IndexArgs,
    api: &ApiArgs,
    listen: &str,
    seed: SeedConfig,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = crate::api::config(global, api)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    let db = database::open(global).await?;
    tracing::info!(database = %db.display_url, "database open");
    let seeded = certscope_store::bootstrap::prepare_demo(&db.pool, &seed).await?;
    if let Some(report) = &seeded {
        print_seed_report(report, report.elapsed);
    }
    print_organizations(&db).await?;
    let addr = listener.local_addr()?;
    println!();
    println!("database: {}", db.connect_url);
    println!("api:      http://{addr}");
    println!("          curl http://{addr}/healthz");
    println!("          curl http://{addr}/readyz");
    println!("docs:     http://{addr}/docs");
    let keys = certscope_query_api::Keys::new(&config.jwt_secret);
    let tokens = crate::api::demo_tokens(&db.pool, &keys).await?;
    println!();
    println!(
        "officer tokens (valid 7 days; more with `certscope token --org <slug> --role <role>`):"
    );
    for (slug, token) in &tokens {
        println!("  {slug}: {token}");
    }
    if let Some((_, token)) = tokens.first() {
        println!();
        println!(
            "  curl -H 'Authorization: Bearer {token}' 'http://{addr}/v1/search?q=access+control&limit=3'"
        );
        println!("  curl -H 'Authorization: Bearer {token}' 'http://{addr}/v1/metrics/kpis'");
        println!(
            "  curl -H 'Authorization: Bearer {token}' -o board.pdf 'http://{addr}/v1/reports/board.pdf'"
        );
        println!(
            "  curl -N -H 'Authorization: Bearer {token}' 'http://{addr}/v1/events/stream?rooms=org,notices'   # live events; try `certscope notify \"hello\"`"
        );
    }
    // the web interface, last: what most people open
    let links = crate::api::demo_signin_links(&db.pool, &format!("http://{addr}")).await?;
    if !links.is_empty() {
        println!();
        println!(
            "web interface: open a sign-in link (each works once, within 10 minutes; more with `certscope signin-link --org <slug> --role <role>`):"
        );
        for (role, link) in &links {
            println!("  {:<10} {link}", role.as_str());
        }
    }
    println!(
        "ready in {:.1} s; Ctrl-C stops the API and the private database",
        started.elapsed().as_secs_f64()
    );

    crate::serve::run_with(global, index, config, &db, listener).await?;
    db.close().await
}

async fn print_organizations(db: &database::Database) -> anyhow::Result<()> {
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT o.slug, o.name, \
                (SELECT count(*) FROM certifications c WHERE c.organization_id = o.id), \
                (SELECT count(*) FROM requirements r WHERE r.organization_id = o.id), \
                (SELECT count(*) FROM evidence e WHERE e.organization_id = o.id) \
         FROM organizations o ORDER BY o.id",
    )
    .fetch_all(&db.pool)
    .await?;
    println!();
    println!(
        "{:<20} {:<34} {:>14} {:>12} {:>10}",
        "organization", "name", "certifications", "requirements", "evidence"
    );
    for (slug, name, certs, reqs, evidence) in rows {
        println!("{slug:<20} {name:<34} {certs:>14} {reqs:>12} {evidence:>10}");
    }
    Ok(())
}

pub fn print_seed_report(report: &SeedReport, elapsed: Duration) {
    println!(
        "seeded {} organizations, {} users, {} certifications, {} requirements, {} evidence, {} risks, {} history rows",
        report.organizations,
        report.users,
        report.certifications,
        report.requirements,
        report.evidence,
        report.risks,
        report.history
    );
    println!(
        "{} rows in {:.1} s: {:.0} rows/s",
        report.total_rows(),
        elapsed.as_secs_f64(),
        report.total_rows() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
