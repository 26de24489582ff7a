//! Who takes the cores: CPU time by thread group, sampled from `/proc` every
//! 200 ms while a benchmark runs, so a moment in which searches were refused
//! can be told with what ran then (the server's threads by name, PostgreSQL's
//! processes by role, the benchmark itself).
//!
//! Threads are grouped by their name with digits dropped (`merge_thread_1`
//! and `merge_thread_0` are one group); PostgreSQL's processes by the title
//! it gives them (`checkpointer`, `autovacuum worker`, ...; every client
//! connection is `backends`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Cumulative CPU ticks by group at one moment (seconds into the run).
struct Reading {
    at: f64,
    ticks: BTreeMap<String, u64>,
}

/// The readings of a run.
#[derive(Clone, Default)]
pub struct CpuLog {
    readings: Arc<Mutex<Vec<Reading>>>,
}

impl CpuLog {
    /// Samples `server` (its threads), PostgreSQL (every process named
    /// `postgres`) and this process until `stop`; times are seconds since
    /// `started`.
    pub fn spawn(server: u32, started: Instant, stop: CancellationToken) -> Self {
        let log = Self::default();
        let readings = log.readings.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !stop.is_cancelled() {
                tick.tick().await;
                let at = started.elapsed().as_secs_f64();
                let ticks = tokio::task::spawn_blocking(move || read(server))
                    .await
                    .unwrap_or_default();
                if let Ok(mut r) = readings.lock() {
                    r.push(Reading { at, ticks });
                }
            }
        });
        log
    }

    /// Cores used by each group between `from` and `to` (seconds), busiest
    /// first, the groups under a twentieth of a core left out: for example
    /// "server:certscope 1.31, postgres:backends 0.42".
    pub fn between(&self, from: f64, to: f64) -> String {
        let Ok(r) = self.readings.lock() else {
            return String::new();
        };
        let first = r.iter().rev().find(|x| x.at <= from).or(r.first());
        let last = r.iter().find(|x| x.at >= to).or(r.last());
        let (Some(a), Some(b)) = (first, last) else {
            return "no readings".to_owned();
        };
        let seconds = b.at - a.at;
        if seconds <= 0.0 {
            return "no readings".to_owned();
        }
        let mut used: Vec<(f64, &str)> = b
            .ticks
            .iter()
            .map(|(group, t)| {
                let before = a.ticks.get(group).copied().unwrap_or(0);
                let cores = t.saturating_sub(before) as f64 / TICKS_PER_SECOND / seconds;
                (cores, group.as_str())
            })
            .filter(|(cores, _)| *cores >= 0.05)
            .collect();
        used.sort_by(|x, y| y.0.total_cmp(&x.0));
        let total: f64 = used.iter().map(|(c, _)| c).sum();
        let parts: Vec<String> = used
            .iter()
            .map(|(cores, group)| format!("{group} {cores:.2}"))
            .collect();
        format!("{total:.2} cores over {seconds:.1} s: {}", parts.join(", "))
    }
}

/// Cumulative ticks by group now.
fn read(server: u32) -> BTreeMap<String, u64> {
    let mut ticks = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{server}/task")) {
        for task in tasks.flatten() {
            if let Some((name, t)) = stat(&task.path().join("stat")) {
                *ticks
                    .entry(format!("server:{}", thread_group(&name)))
                    .or_default() += t;
            }
        }
    }
    if let Some((_, t)) = stat(std::path::Path::new("/proc/self/stat")) {
        ticks.insert("bench".to_owned(), t);
    }
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let path = p.path();
            let Some((name, t)) = stat(&path.join("stat")) else {
                continue;
            };
            if name != "postgres" {
                continue;
            }
            let title = std::fs::read(path.join("cmdline")).unwrap_or_default();
            let role = postgres_role(&String::from_utf8_lossy(&title));
            *ticks.entry(format!("postgres:{role}")).or_default() += t;
        }
    }
    ticks
}

/// The name and user + system ticks of a `/proc` stat file.
fn stat(path: &std::path::Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    // pid (name) state ppid ...: the name may hold spaces and parentheses
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 2..)?.split(' ').collect();
    // fields from the state (field 3) on: utime is field 14, stime 15
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// A thread's name without its digits: `merge_thread_1` -> `merge_thread_`.
fn thread_group(name: &str) -> String {
    name.chars().filter(|c| !c.is_ascii_digit()).collect()
}

/// What a PostgreSQL process does, from the title it sets: the postmaster's
/// own command line, an auxiliary process's name, or `backends` for a
/// client's connection (`postgres: user db host(port) state`).
fn postgres_role(cmdline: &str) -> &'static str {
    const ROLES: [&str; 8] = [
        "checkpointer",
        "background writer",
        "walwriter",
        "autovacuum launcher",
        "autovacuum worker",
        "logical replication",
        "parallel worker",
        "stats",
    ];
    let Some(title) = cmdline.strip_prefix("postgres: ") else {
        return "postmaster";
    };
    ROLES
        .iter()
        .find(|r| title.starts_with(**r))
        .copied()
        .unwrap_or("backends")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        std::fs::write(
            &path,
            "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0 1 1 1",
        )
        .unwrap();
        assert_eq!(stat(&path), Some(("a (b) c".to_owned(), 22)));
    }

    #[test]
    fn groups_threads_and_postgres_processes() {
        assert_eq!(thread_group("merge_thread_12"), "merge_thread_");
        assert_eq!(postgres_role("postgres: checkpointer "), "checkpointer");
        assert_eq!(
            postgres_role("postgres: autovacuum worker certscope"),
            "autovacuum worker"
        );
        assert_eq!(
            postgres_role("postgres: postgres certscope 127.0.0.1(5000) idle"),
            "backends"
        );
        assert_eq!(
            postgres_role("/usr/lib/postgresql/15/bin/postgres\0-D\0x"),
            "postmaster"
        );
    }
}
