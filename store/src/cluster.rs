//! A private PostgreSQL cluster started from the server binaries on the machine:
//! the embedded default of `certscope demo` and the database of the test harness.
//!
//! PostgreSQL refuses to run as root. When we are root, the cluster runs as the
//! `postgres` system user (credentials switched in the child before `exec`), and
//! its data directory is owned by that user.
// Starting PostgreSQL as an unprivileged user from a root process needs
// fork-time privilege dropping and a few libc calls; each unsafe block below
// says why it is sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::{Deserialize, Serialize};

const SUPERUSER: &str = "certscope";
const STATE_FILE: &str = "postgres.json";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, postgres, pg_ctl) not found; install them \
         (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16), \
         set CERTSCOPE_PG_BIN to their directory, or set DATABASE_URL to use a running server"
    )]
    BinariesNotFound,
    #[error(
        "running as root and there is no `postgres` user to run the private cluster as; create one or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    #[error("{what} failed ({status}); see {log}")]
    CommandFailed {
        what: &'static str,
        status: String,
        log: String,
    },
    #[error("PostgreSQL did not become ready within {0:?}; see {1}")]
    NotReady(Duration, String),
    #[error("failed to {what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cluster state file {path} is unreadable")]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> ClusterError + 'p {
    move |source| ClusterError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// How long the cluster lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterLifetime {
    /// Started with `pg_ctl` as a daemon; `stop()` shuts it down. A cluster that is
    /// already running in the data directory is reused.
    Detached,
    /// A child of this process that receives SIGQUIT (immediate shutdown) when the
    /// process exits, however it exits: test binaries cannot run destructors of
    /// statics, so the kernel does the cleanup.
    TiedToProcess,
}

/// Settings remembered between runs, next to the data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClusterState {
    pgdata: PathBuf,
    port: u16,
    password: String,
}

/// The unprivileged account the server runs as.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

#[derive(Debug)]
pub struct PrivateCluster {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    port: u16,
    password: String,
    run_as: Option<RunAs>,
    lifetime: ClusterLifetime,
    log_file: PathBuf,
    /// Whether this process started the server (and so should stop it).
    started_here: bool,
}

impl PrivateCluster {
    /// Starts (initialising on first use) the cluster kept under `dir`, or attaches
    /// to the one already running there.
    pub async fn start(dir: &Path, lifetime: ClusterLifetime) -> Result<Self, ClusterError> {
        let bin_dir = find_binaries()?;
        let run_as = run_as()?;
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let dir = dir.canonicalize().map_err(io_err("resolve", dir))?;
        let state_path = dir.join(STATE_FILE);
        let mut state = match fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice::<ClusterState>(&bytes).map_err(|source| {
                ClusterError::State {
                    path: state_path.clone(),
                    source,
                }
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => ClusterState {
                pgdata: pgdata_location(&dir, run_as),
                port: free_port().map_err(io_err("find a free port near", &dir))?,
                password: random_password(),
            },
            Err(e) => return Err(io_err("read", &state_path)(e)),
        };
        let log_file = dir.join("postgres.log");
        let mut cluster = Self {
            bin_dir,
            pgdata: state.pgdata.clone(),
            port: state.port,
            password: state.password.clone(),
            run_as,
            lifetime,
            log_file,
            started_here: false,
        };
        if !cluster.pgdata.join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        write_state(&state_path, &state)?;

        if cluster.running_pid().is_some() && cluster.ready(Duration::from_secs(2)).await.is_ok() {
            tracing::info!(
                port = cluster.port,
                "reusing running private PostgreSQL cluster"
            );
            return Ok(cluster);
        }
        if !port_is_free(cluster.port) {
            // someone else took our port since last time
            state.port = free_port().map_err(io_err("find a free port near", &dir))?;
            cluster.port = state.port;
            write_state(&state_path, &state)?;
        }
        cluster.launch()?;
        cluster.started_here = true;
        cluster.ready(Duration::from_secs(60)).await?;
        tracing::info!(port = cluster.port, data = %cluster.pgdata.display(), "private PostgreSQL cluster started");
        Ok(cluster)
    }

    /// Connection URL for `database` as the cluster's superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The same URL with the password hidden, for printing.
    pub fn display_url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:***@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pgdata(&self) -> &Path {
        &self.pgdata
    }

    /// Stops the server if this process started it (fast shutdown: open sessions
    /// are ended, everything committed is on disk).
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        if !self.started_here {
            return Ok(());
        }
        self.started_here = false;
        self.pg_ctl_stop("fast")?;
        tracing::info!("private PostgreSQL cluster stopped");
        Ok(())
    }

    /// Restarts the server in place (same port, same data): for tests that check
    /// how the indexer survives a database restart.
    pub async fn restart(&mut self) -> Result<(), ClusterError> {
        self.pg_ctl_stop("fast")?;
        self.launch()?;
        self.ready(Duration::from_secs(60)).await
    }

    /// A crash: immediate shutdown (every backend quits at once, no
    /// checkpoint; the next start runs crash recovery from the WAL), down for
    /// `down`, then started again on the same port.
    pub async fn crash_and_restart(&mut self, down: Duration) -> Result<(), ClusterError> {
        self.pg_ctl_stop("immediate")?;
        tokio::time::sleep(down).await;
        self.launch()?;
        self.ready(Duration::from_secs(60)).await
    }

    /// `fast`: open sessions are ended, everything committed is on disk;
    /// `immediate`: as if the server crashed.
    fn pg_ctl_stop(&self, mode: &str) -> Result<(), ClusterError> {
        let status = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", mode, "-w", "-t", "30"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(io_err("run pg_ctl in", &self.bin_dir))?;
        if !status.success() {
            return Err(ClusterError::CommandFailed {
                what: "pg_ctl stop",
                status: status.to_string(),
                log: self.log_file.display().to_string(),
            });
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), ClusterError> {
        if let Some(parent) = self.pgdata.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::create_dir_all(&self.pgdata).map_err(io_err("create", &self.pgdata))?;
        fs::set_permissions(&self.pgdata, fs::Permissions::from_mode(0o700))
            .map_err(io_err("set permissions on", &self.pgdata))?;
        self.chown(&self.pgdata)?;
        // initdb reads the password from a file; keep it readable by the server user only
        let pwfile = self.pgdata.with_extension("pw");
        fs::write(&pwfile, &self.password).map_err(io_err("write", &pwfile))?;
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600))
            .map_err(io_err("set permissions on", &pwfile))?;
        self.chown(&pwfile)?;
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(&self.pgdata)
            .args([
                "-U",
                SUPERUSER,
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
            ])
            .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output();
        let _ = fs::remove_file(&pwfile);
        let output = output.map_err(io_err("run initdb from", &self.bin_dir))?;
        if !output.status.success() {
            let log = self.pgdata.with_extension("initdb.log");
            let _ = fs::write(&log, [output.stdout, output.stderr].concat());
            return Err(ClusterError::CommandFailed {
                what: "initdb",
                status: output.status.to_string(),
                log: log.display().to_string(),
            });
        }
        Ok(())
    }

    fn server_settings(&self) -> Vec<String> {
        let mut settings = vec![
            "listen_addresses=127.0.0.1".to_owned(),
            format!("port={}", self.port),
            "unix_socket_directories=".to_owned(),
            "max_connections=200".to_owned(),
            "shared_buffers=256MB".to_owned(),
            "max_wal_size=4GB".to_owned(),
            "log_min_messages=warning".to_owned(),
        ];
        if self.lifetime == ClusterLifetime::TiedToProcess {
            // test clusters are thrown away with the process: durability buys nothing
            settings.push("fsync=off".to_owned());
            settings.push("synchronous_commit=off".to_owned());
            settings.push("full_page_writes=off".to_owned());
            settings.push("shared_buffers=128MB".to_owned());
        }
        settings
    }

    fn launch(&self) -> Result<(), ClusterError> {
        if self.log_file.exists() {
            self.chown(&self.log_file)?;
        }
        match self.lifetime {
            ClusterLifetime::Detached => {
                let opts = self
                    .server_settings()
                    .iter()
                    .map(|s| format!("-c {s}"))
                    .collect::<Vec<_>>()
                    .join(" ")
                    .replace("unix_socket_directories=", "unix_socket_directories=''");
                let log_dir_ok = self
                    .log_file
                    .parent()
                    .is_some_and(|p| self.server_can_write(p));
                let log = if log_dir_ok {
                    self.log_file.clone()
                } else {
                    self.pgdata.join("postgres.log")
                };
                let status = self
                    .command("pg_ctl")
                    .arg("start")
                    .arg("-D")
                    .arg(&self.pgdata)
                    .arg("-l")
                    .arg(&log)
                    .args(["-o", &opts, "-W"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map_err(io_err("run pg_ctl from", &self.bin_dir))?;
                if !status.success() {
                    return Err(ClusterError::CommandFailed {
                        what: "pg_ctl start",
                        status: status.to_string(),
                        log: log.display().to_string(),
                    });
                }
                Ok(())
            }
            ClusterLifetime::TiedToProcess => self.spawn_tied(),
        }
    }

    /// Spawns `postgres` from a thread that never exits: PR_SET_PDEATHSIG fires when
    /// the spawning *thread* ends, so it must live as long as the process.
    fn spawn_tied(&self) -> Result<(), ClusterError> {
        let mut cmd = self.command("postgres");
        cmd.arg("-D").arg(&self.pgdata);
        for s in self.server_settings() {
            cmd.arg("-c").arg(s);
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .map_err(io_err("open", &self.log_file))?;
        let log2 = log.try_clone().map_err(io_err("open", &self.log_file))?;
        cmd.stdout(log).stderr(log2).stdin(Stdio::null());
        let run_as = self.run_as;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                drop_privileges(run_as)?;
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres-parent".into())
            .spawn(move || {
                match cmd.spawn() {
                    Ok(mut child) => {
                        let _ = tx.send(Ok(()));
                        // reap it if it dies; keep this thread alive for PDEATHSIG
                        let _ = child.wait();
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
                loop {
                    std::thread::park();
                }
            })
            .map_err(io_err("spawn a thread for", &self.pgdata))?;
        rx.recv()
            .unwrap_or_else(|_| Err(io::Error::other("postgres spawner thread ended")))
            .map_err(io_err("start postgres in", &self.pgdata))
    }

    async fn ready(&self, within: Duration) -> Result<(), ClusterError> {
        use sqlx::Connection;
        let deadline = Instant::now() + within;
        let url = self.url("postgres");
        loop {
            if let Ok(Ok(conn)) =
                tokio::time::timeout(Duration::from_secs(2), sqlx::PgConnection::connect(&url))
                    .await
            {
                let _ = conn.close().await;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::NotReady(
                    within,
                    self.log_file.display().to_string(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn running_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.pgdata.join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        alive.then_some(pid)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        // the server user may not be able to enter our working directory
        cmd.current_dir("/");
        cmd.env_remove("PGDATA").env("LC_ALL", "C.UTF-8");
        if let Some(run_as) = self.run_as
            && program != "postgres"
        {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || drop_privileges(Some(run_as)));
            }
        }
        cmd
    }

    fn chown(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some(run_as) = self.run_as {
            std::os::unix::fs::chown(path, Some(run_as.uid), Some(run_as.gid))
                .map_err(io_err("change the owner of", path))?;
        }
        Ok(())
    }

    fn server_can_write(&self, dir: &Path) -> bool {
        match self.run_as {
            None => true,
            Some(run_as) => can_reach_as(dir, run_as, true),
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.lifetime == ClusterLifetime::Detached
            && let Err(e) = self.stop()
        {
            tracing::warn!(error = %e, "failed to stop private PostgreSQL cluster");
        }
    }
}

fn write_state(path: &Path, state: &ClusterState) -> Result<(), ClusterError> {
    let json = serde_json::to_vec_pretty(state).map_err(|source| ClusterError::State {
        path: path.to_owned(),
        source,
    })?;
    fs::write(path, json).map_err(io_err("write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_err("set permissions on", path))
}

/// Where the server's data directory lives: inside `dir`, unless we are root and
/// the `postgres` user cannot reach `dir` (a home directory like /root is 0700);
/// then in a directory under /var/lib/certscope named after `dir`.
fn pgdata_location(dir: &Path, run_as: Option<RunAs>) -> PathBuf {
    let inside = dir.join("pgdata");
    match run_as {
        Some(run_as) if !can_reach_as(dir, run_as, false) => {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
            let name = format!("pgdata-{}", &hex::encode(digest)[..16]);
            let outside = Path::new("/var/lib/certscope").join(name);
            tracing::info!(
                data_dir = %dir.display(),
                pgdata = %outside.display(),
                "the postgres user cannot enter the data directory; keeping the cluster outside it"
            );
            outside
        }
        _ => inside,
    }
}

/// Whether every ancestor of `dir` is searchable by `run_as` (and `dir` writable
/// when asked), by mode bits alone.
fn can_reach_as(dir: &Path, run_as: RunAs, write: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mut ok = true;
    for ancestor in dir.ancestors() {
        let Ok(meta) = fs::metadata(ancestor) else {
            return false;
        };
        let mode = meta.mode();
        let bits = if meta.uid() == run_as.uid {
            mode >> 6
        } else if meta.gid() == run_as.gid {
            mode >> 3
        } else {
            mode
        };
        ok &= bits & 0o1 != 0;
        if write && ancestor == dir {
            ok &= bits & 0o2 != 0;
        }
    }
    ok
}

fn drop_privileges(run_as: Option<RunAs>) -> io::Result<()> {
    if let Some(RunAs { uid, gid }) = run_as {
        // SAFETY: plain syscalls on integers.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// None when we may run PostgreSQL ourselves; the `postgres` user when we are root.
fn run_as() -> Result<Option<RunAs>, ClusterError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").expect("static name has no NUL");
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(ClusterError::NoUnprivilegedUser);
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some(RunAs { uid, gid }))
}

/// Finds a directory holding `initdb`, `pg_ctl` and `postgres`: `CERTSCOPE_PG_BIN`,
/// then the newest `/usr/lib/postgresql/*/bin` (Debian), then common prefixes, then PATH.
pub fn find_binaries() -> Result<PathBuf, ClusterError> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("CERTSCOPE_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if has_all(&dir) {
            Ok(dir)
        } else {
            Err(ClusterError::BinariesNotFound)
        };
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    debian.sort();
    let mut candidates: Vec<PathBuf> = debian.into_iter().rev().map(|(_, p)| p).collect();
    candidates.extend(
        [
            "/usr/local/pgsql/bin",
            "/opt/homebrew/bin",
            "/usr/local/bin",
            "/usr/pgsql/bin",
        ]
        .iter()
        .map(PathBuf::from),
    );
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|d| has_all(d))
        .ok_or(ClusterError::BinariesNotFound)
}

fn free_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn random_password() -> String {
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
