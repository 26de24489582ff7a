//! Who takes the cores: CPU time by thread group, sampled from `/proc` every
//! 200 ms while a benchmark runs, so a moment in which searches were refused
//! can be told with what ran then (the server's threads by name, PostgreSQL's
//! processes by role, the benchmark itself).
//!
//! Threads are grouped by their name with digits dropped (`merge_thread_1`
//! and `merge_thread_0` are one group); PostgreSQL's processes by the title
//! it gives them (`checkpointer`, `autovacuum worker`, ...; every client
//! connection is `backends`).
//!
//! Processes are not the whole machine: interrupts, softirq (loopback
//! networking), the kernel's own threads and steal by the hypervisor take
//! cores no process is charged for. So each reading also keeps the machine's
//! time by state (`/proc/stat`) and how long tasks waited for a core or for
//! I/O (pressure stall information, `/proc/pressure/{cpu,io}`), which say
//! whether a stall was contention for the cores or the disk.

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
    machine: Machine,
}

/// The states of the machine's time, in `/proc/stat` order of meaning.
const STATES: [&str; 6] = ["user", "system", "irq", "softirq", "steal", "idle"];

/// The whole machine at one moment, cumulative: ticks of all cores by state
/// (`STATES`; user with nice, idle with iowait) and the microseconds in which
/// some task waited for a core and for I/O (PSI `some total`; absent on a
/// kernel without it).
#[derive(Clone, Copy, Default, Debug, PartialEq)]
struct Machine {
    states: [u64; 6],
    cpu_wait: Option<u64>,
    io_wait: Option<u64>,
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
            let mut tally = Tally::default();
            while !stop.is_cancelled() {
                tick.tick().await;
                let at = started.elapsed().as_secs_f64();
                // a sample that failed is skipped: an empty one would make
                // the next count every process's whole life again
                let Ok((sample, machine)) =
                    tokio::task::spawn_blocking(move || (read(server), Machine::read())).await
                else {
                    continue;
                };
                let ticks = tally.add(sample);
                if let Ok(mut r) = readings.lock() {
                    r.push(Reading { at, ticks, machine });
                }
            }
        });
        log
    }

    /// Cores used by each group between `from` and `to` (seconds), busiest
    /// first, the groups under a twentieth of a core left out: for example
    /// "server:certscope 1.31, postgres:backends 0.42".
    pub fn between(&self, from: f64, to: f64) -> String {
        self.spanning(from, to, groups)
    }

    /// How the whole machine spent `from`..`to` (seconds): for example
    /// "user 72 %, system 17 %, softirq 5 %, steal 2 %, idle 2 %; some task
    /// waited for a core 76 % of the time, for I/O 9 %".
    pub fn machine_between(&self, from: f64, to: f64) -> String {
        self.spanning(from, to, |a, b, seconds| {
            b.machine.since(&a.machine, seconds)
        })
    }

    /// `tell` applied to the readings at or before `from` and at or after
    /// `to` (the first and last when the run holds no such), and the seconds
    /// between them.
    fn spanning(
        &self,
        from: f64,
        to: f64,
        tell: impl Fn(&Reading, &Reading, f64) -> String,
    ) -> String {
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
        tell(a, b, seconds)
    }
}

/// The cores each group took from `a` to `b`, `seconds` apart.
fn groups(a: &Reading, b: &Reading, seconds: f64) -> String {
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

impl Machine {
    /// The machine now; a file that cannot be read leaves its part empty.
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let pressure = |kind: &str| {
            std::fs::read_to_string(format!("/proc/pressure/{kind}"))
                .ok()
                .and_then(|text| some_total(&text))
        };
        Machine {
            states: states(&stat).unwrap_or_default(),
            cpu_wait: pressure("cpu"),
            io_wait: pressure("io"),
        }
    }

    /// The shares of the time from `before` to this reading, `seconds` apart.
    fn since(&self, before: &Machine, seconds: f64) -> String {
        let spent: Vec<u64> = self
            .states
            .iter()
            .zip(before.states)
            .map(|(now, then)| now.saturating_sub(then))
            .collect();
        let all: u64 = spent.iter().sum();
        let shares = if all == 0 {
            "no /proc/stat".to_owned()
        } else {
            STATES
                .iter()
                .zip(&spent)
                // a state under half a percent says nothing
                .filter(|(_, t)| **t * 200 >= all)
                .map(|(state, t)| format!("{state} {:.0} %", *t as f64 * 100.0 / all as f64))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let waited = |now: Option<u64>, then: Option<u64>| {
            Some(now?.saturating_sub(then?) as f64 / 1e4 / seconds)
        };
        match (
            waited(self.cpu_wait, before.cpu_wait),
            waited(self.io_wait, before.io_wait),
        ) {
            (Some(cpu), Some(io)) => format!(
                "{shares}; some task waited for a core {cpu:.0} % of the time, for I/O {io:.0} %"
            ),
            _ => format!("{shares}; no pressure stall information"),
        }
    }
}

/// The cumulative ticks by `STATES` of the `cpu` line (all cores) of a
/// `/proc/stat`: `cpu user nice system idle iowait irq softirq steal ...`.
fn states(stat: &str) -> Option<[u64; 6]> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let t: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| t.get(i).copied();
    Some([
        at(0)? + at(1)?,
        at(2)?,
        at(5)?,
        at(6)?,
        at(7).unwrap_or(0),
        at(3)? + at(4)?,
    ])
}

/// The `total=` (microseconds) of the `some` line of a PSI file.
fn some_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The ticks each thread of the server, PostgreSQL process and this process
/// has used so far, with its group and its id.
fn read(server: u32) -> Vec<(String, u32, u64)> {
    let id = |p: &std::fs::DirEntry| p.file_name().to_str().and_then(|n| n.parse().ok());
    let mut ticks = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{server}/task")) {
        for task in tasks.flatten() {
            if let (Some(tid), Some((name, t))) = (id(&task), stat(&task.path().join("stat"))) {
                ticks.push((format!("server:{}", thread_group(&name)), tid, t));
            }
        }
    }
    if let Some((_, t)) = stat(std::path::Path::new("/proc/self/stat")) {
        ticks.push(("bench".to_owned(), std::process::id(), t));
    }
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let path = p.path();
            let (Some(pid), Some((name, t))) = (id(&p), stat(&path.join("stat"))) else {
                continue;
            };
            if name != "postgres" {
                continue;
            }
            let title = std::fs::read(path.join("cmdline")).unwrap_or_default();
            let role = postgres_role(&String::from_utf8_lossy(&title));
            ticks.push((format!("postgres:{role}"), pid, t));
        }
    }
    ticks
}

/// Ticks by group since sampling began, from one sample of every thread and
/// process (`read`) after another. A process's `/proc` times go with it when
/// it exits (a database connection closed, an idle blocking thread
/// retired), so a group's sum over the living would fall and hide what the
/// exited used: each id's growth since its last sample is added to its group
/// instead, which loses at most one interval of a process that exits.
#[derive(Default)]
struct Tally {
    last: std::collections::HashMap<u32, u64>,
    totals: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, sample: Vec<(String, u32, u64)>) -> BTreeMap<String, u64> {
        let mut last = std::collections::HashMap::with_capacity(sample.len());
        for (group, id, t) in sample {
            // an id seen with more ticks than now is a new process reusing it
            let grown = match self.last.get(&id) {
                Some(&before) if before <= t => t - before,
                _ => t,
            };
            *self.totals.entry(group).or_default() += grown;
            last.insert(id, t);
        }
        self.last = last;
        self.totals.clone()
    }
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
    fn a_process_that_exits_keeps_what_it_used() {
        let backend = |id, t| ("postgres:backends".to_owned(), id, t);
        let mut tally = Tally::default();
        assert_eq!(
            tally.add(vec![backend(7, 10), backend(8, 5)])["postgres:backends"],
            15
        );
        // 8 exits after 3 more ticks, 7 uses 20 more, 9 starts with 4
        assert_eq!(
            tally.add(vec![backend(7, 30), backend(8, 8)])["postgres:backends"],
            38
        );
        assert_eq!(
            tally.add(vec![backend(7, 30), backend(9, 4)])["postgres:backends"],
            42
        );
        // 7 exits and a new process takes its id with fewer ticks
        assert_eq!(
            tally.add(vec![backend(7, 2), backend(9, 4)])["postgres:backends"],
            44
        );
    }

    #[test]
    fn tells_the_machine_by_state_and_its_stalls() {
        let stat = |user, system, softirq, idle| {
            format!(
                "cpu  {user} 0 {system} {idle} 0 0 {softirq} 2 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n"
            )
        };
        let psi = |total| {
            format!(
                "some avg10=1.00 avg60=0.50 avg300=0.10 total={total}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"
            )
        };
        let at = |stat: &str, cpu, io| Machine {
            states: states(stat).unwrap(),
            cpu_wait: some_total(&psi(cpu)),
            io_wait: some_total(&psi(io)),
        };
        let before = at(&stat(100, 50, 10, 1000), 1_000_000, 0);
        // 2 s on two cores: 400 ticks, of which 288 user, 68 system, 20
        // softirq, 24 idle (steal stays); a core waited for 1.52 s, I/O 0.18 s
        let after = at(&stat(388, 118, 30, 1024), 2_520_000, 180_000);
        assert_eq!(after.states, [388, 118, 0, 30, 2, 1024]);
        assert_eq!(
            after.since(&before, 2.0),
            "user 72 %, system 17 %, softirq 5 %, idle 6 %; \
             some task waited for a core 76 % of the time, for I/O 9 %"
        );
        let without = Machine {
            cpu_wait: None,
            ..after
        };
        assert!(
            without
                .since(&before, 2.0)
                .ends_with("no pressure stall information")
        );
        assert_eq!(states("intr 1\n"), None);
        assert_eq!(some_total("full total=3\n"), None);
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
