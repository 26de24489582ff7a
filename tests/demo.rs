//! `certscope demo` and the command line's handling of a missing or unreachable database.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn certscope() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certscope"));
    cmd.env_remove("DATABASE_URL").env("RUST_LOG", "warn");
    cmd
}

/// Runs `certscope` to success, returning what it printed on stdout.
fn succeeds(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Reads the child's stdout on a thread and hands over lines.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_api(rx: &mpsc::Receiver<String>, deadline: Duration) -> (String, Vec<String>) {
    let until = Instant::now() + deadline;
    let mut seen = Vec::new();
    while Instant::now() < until {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(url) = line.strip_prefix("api:") {
                return (url.trim().to_owned(), seen);
            }
            seen.push(line);
        }
    }
    panic!("demo did not print its API address within {deadline:?}; saw {seen:?}");
}

/// The rest of the first line starting with `prefix`.
fn next_line_with(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(rest) = line.strip_prefix(prefix)
        {
            return rest.trim().to_owned();
        }
    }
    panic!("no line starting with {prefix:?}");
}

#[allow(unsafe_code)] // one kill(2), see below
fn stop(mut child: Child) {
    // SAFETY: sending SIGTERM to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "demo exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("demo did not stop within 30 s of SIGTERM");
}

#[tokio::test]
async fn demo_from_nothing_serves_healthz_and_a_second_run_reuses_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    // the postgres user (when we run as root) must be able to enter it
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = dir.path().join("data");

    let run = || {
        certscope()
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--preset",
                "small",
                "--data-dir",
            ])
            .arg(&data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };

    let mut first = run();
    let rx = lines_of(&mut first);
    let (api, printed) = wait_for_api(&rx, Duration::from_secs(120));
    let printed = printed.join("\n");
    assert!(printed.contains("seeded 2 organizations"), "{printed}");
    assert!(printed.contains("northwind-health"), "{printed}");
    assert!(
        printed.contains("database: postgres://certscope:"),
        "{printed}"
    );
    let health: serde_json::Value = reqwest::get(format!("{api}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    // the index of the demo data is built right after the API starts
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = reqwest::get(format!("{api}/readyz")).await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < until, "not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // the demo prints a working token per organization
    let token = next_line_with(&rx, "  northwind-health: ");
    let client = reqwest::Client::new();
    let search: serde_json::Value = client
        .get(format!("{api}/v1/search?q=access%20control&limit=3"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(search["total"].as_u64().unwrap() > 0, "{search}");
    let metrics = reqwest::get(format!("{api}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("certscope_index_documents{kind=\"evidence\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("certscope_index_lag_seconds"), "{metrics}");
    stop(first);
    let pg_version = data_dir.join("postgres/pgdata/PG_VERSION");
    let initialised = std::fs::metadata(&pg_version).unwrap().modified().unwrap();
    assert!(
        !data_dir.join("postgres/pgdata/postmaster.pid").exists(),
        "the cluster stops with the demo"
    );

    // `certscope token` signs with the same secret as the demo
    let auditor = succeeds(
        certscope()
            .args([
                "token",
                "--org",
                "northwind-health",
                "--role",
                "auditor",
                "--data-dir",
            ])
            .arg(&data_dir),
    )
    .trim()
    .to_owned();

    // `certscope report board` writes the board PDF from the same data, in
    // both page sizes, for the organization with a Japanese name
    for size in ["a4", "letter"] {
        let pdf = data_dir.join(format!("board-{size}.pdf"));
        let printed = succeeds(
            certscope()
                .args([
                    "report",
                    "board",
                    "--org",
                    "sakura-cloud",
                    "--size",
                    size,
                    "--out",
                ])
                .arg(&pdf)
                .arg("--data-dir")
                .arg(&data_dir),
        );
        let bytes = std::fs::read(&pdf).unwrap();
        assert!(bytes.starts_with(b"%PDF-"), "{size}: not a PDF");
        assert!(printed.contains("sakura-cloud"));
    }

    let mut second = run();
    let rx = lines_of(&mut second);
    let (api, printed) = wait_for_api(&rx, Duration::from_secs(60));
    let printed = printed.join("\n");
    assert!(
        !printed.contains("seeded"),
        "the second run keeps the data: {printed}"
    );
    assert!(printed.contains("northwind-health"), "{printed}");
    assert_eq!(
        std::fs::metadata(&pg_version).unwrap().modified().unwrap(),
        initialised
    );
    let health = reqwest::get(format!("{api}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    // the auditor's token from `certscope token` works, within its scope
    let until = Instant::now() + Duration::from_secs(60);
    let listing = loop {
        let r = reqwest::Client::new()
            .get(format!("{api}/v1/certifications"))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break r.json::<serde_json::Value>().await.unwrap();
        }
        assert_eq!(r.status(), 503, "only an index still opening may refuse");
        assert!(Instant::now() < until, "index not open within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        listing["total"], 1,
        "the seeded auditor is assigned one certification"
    );
    stop(second);
}

#[test]
fn an_unreachable_database_fails_within_seconds_naming_host_and_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = certscope()
        .arg("migrate")
        .env(
            "DATABASE_URL",
            format!("postgres://certscope:secret@127.0.0.1:{port}/certscope"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret"),
        "the password never reaches the output: {stderr}"
    );
}

#[test]
fn missing_postgres_binaries_say_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let out = certscope()
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .env("CERTSCOPE_PG_BIN", dir.path().join("nothing-here"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PostgreSQL server binaries (initdb, postgres, pg_ctl) not found"),
        "{stderr}"
    );
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn minting_a_token_never_creates_a_secret_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = certscope()
        .env_remove("CERTSCOPE_JWT_SECRET")
        .env_remove("CERTSCOPE_DATA_DIR")
        .args(["token", "--org", "northwind-health", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a token was minted with a fresh secret"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let secret = dir.path().join("jwt-secret");
    assert!(
        stderr.contains("no token secret at") && stderr.contains(&secret.display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("--data-dir") && stderr.contains("CERTSCOPE_JWT_SECRET"),
        "{stderr}"
    );
    assert!(!secret.exists(), "the command created a secret");
}
