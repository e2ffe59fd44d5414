//! CPU time per thread of this process, and time spent runnable but waiting for a CPU, from
//! `/proc/self/task/*/schedstat` (Linux; `stat` ticks when `schedstat` is missing). Two snapshots
//! around a phase tell which threads were busy and for how long — e.g. whether the store's single
//! writer thread was saturated during ingest, or starved by other processes — without a profiler.
//! Elsewhere the snapshots are empty.
//!
//! Machine-wide counters ([`MachineTimes`]) tell how much of the machine other processes took. When
//! the store is a PostgreSQL server on this machine, its processes are counted apart (see
//! [`set_database_server`]): they do the benchmark's work, they are not contention.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

/// Linux reports thread times in clock ticks of `USER_HZ`, which is 100 on every architecture the
/// kernel exposes to user space.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time and run-queue wait per thread id, with each thread's name.
#[derive(Debug, Clone, Default)]
pub struct ThreadTimes(BTreeMap<u64, Sample>);

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    cpu: Duration,
    /// Time runnable but not running (waiting for a CPU); zero when unknown.
    waiting: Duration,
}

/// CPU time of the threads sharing one name during a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedBusy {
    pub name: String,
    pub threads: usize,
    pub cpu: Duration,
    /// Time these threads were ready to run but had no CPU (other threads or processes had them).
    pub waiting: Duration,
}

impl ThreadTimes {
    /// The current CPU times of every thread of this process.
    pub fn snapshot() -> ThreadTimes {
        let mut times = BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return ThreadTimes(times);
        };
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u64>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let Some((name, ticks)) = parse_stat(&stat) else {
                continue;
            };
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok();
            let sample = match schedstat.as_deref().and_then(parse_schedstat) {
                Some((cpu, waiting)) => Sample { name, cpu, waiting },
                None => Sample {
                    name,
                    cpu: ticks_to_duration(ticks),
                    waiting: Duration::ZERO,
                },
            };
            times.insert(tid, sample);
        }
        ThreadTimes(times)
    }

    /// CPU time used since `earlier`, summed per thread name, busiest first. Threads started
    /// since count from zero; threads that ended since are gone.
    pub fn since(&self, earlier: &ThreadTimes) -> Vec<NamedBusy> {
        let mut by_name: BTreeMap<&str, NamedBusy> = BTreeMap::new();
        for (tid, sample) in &self.0 {
            let (cpu_before, waiting_before) = earlier
                .0
                .get(tid)
                .map_or((Duration::ZERO, Duration::ZERO), |before| {
                    (before.cpu, before.waiting)
                });
            let used = sample.cpu.saturating_sub(cpu_before);
            if used.is_zero() {
                continue;
            }
            let named = by_name.entry(&sample.name).or_insert_with(|| NamedBusy {
                name: sample.name.clone(),
                threads: 0,
                cpu: Duration::ZERO,
                waiting: Duration::ZERO,
            });
            named.threads += 1;
            named.cpu += used;
            named.waiting += sample.waiting.saturating_sub(waiting_before);
        }
        let mut busy: Vec<NamedBusy> = by_name.into_values().collect();
        busy.sort_by_key(|named| std::cmp::Reverse(named.cpu));
        busy
    }
}

/// The postmaster of the PostgreSQL server on this machine that holds the benchmark's database, if
/// any: set once by `setup`, read by every [`MachineTimes::snapshot`].
static DATABASE_SERVER: OnceLock<u32> = OnceLock::new();

/// Counts the CPU time of `postmaster` and its children (the PostgreSQL server on this machine that
/// holds the benchmark's database) as the database's, apart from other processes'. Only the first
/// call has an effect.
pub fn set_database_server(postmaster: u32) {
    let _ = DATABASE_SERVER.set(postmaster);
}

/// Whether a local database server is counted apart ([`set_database_server`]).
pub fn database_server_counted() -> bool {
    DATABASE_SERVER.get().is_some()
}

/// Machine-wide CPU counters and this process's own CPU time, to tell how much of the machine other
/// processes took during a phase.
#[derive(Debug, Clone)]
pub struct MachineTimes {
    at: std::time::Instant,
    /// All CPUs: user, nice, system, irq and softirq time.
    busy: Duration,
    iowait: Duration,
    /// Time the hypervisor gave this machine's virtual CPUs to someone else.
    steal: Duration,
    /// This process (all threads): user + system.
    own: Duration,
    /// CPU time of each process of the local database server (empty without one).
    database: BTreeMap<u32, Duration>,
}

/// How the machine's CPUs were used during a phase, in cores (1.0 = one core for the whole phase).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineUse {
    pub wall: Duration,
    pub own_cores: f64,
    /// The local PostgreSQL server holding the benchmark's database (zero without one).
    pub database_cores: f64,
    /// Everything else: contention.
    pub other_cores: f64,
    pub iowait_cores: f64,
    /// Taken by the hypervisor (other virtual machines on the same host).
    pub steal_cores: f64,
}

impl MachineTimes {
    /// The counters now (zeros where `/proc` is missing).
    pub fn snapshot() -> MachineTimes {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect();
        let field = |index: usize| ticks.get(index).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        let busy = field(0) + field(1) + field(2) + field(5) + field(6);
        let own = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .as_deref()
            .and_then(parse_stat)
            .map_or(0, |(_, ticks)| ticks);
        MachineTimes {
            at: std::time::Instant::now(),
            busy: ticks_to_duration(busy),
            iowait: ticks_to_duration(field(4)),
            steal: ticks_to_duration(field(7)),
            own: ticks_to_duration(own),
            database: DATABASE_SERVER
                .get()
                .map(|postmaster| server_times(*postmaster))
                .unwrap_or_default(),
        }
    }

    /// Use since `earlier`.
    pub fn since(&self, earlier: &MachineTimes) -> MachineUse {
        let wall = self.at.saturating_duration_since(earlier.at);
        let cores = |time: Duration| time.as_secs_f64() / wall.as_secs_f64().max(1e-9);
        let own = self.own.saturating_sub(earlier.own);
        let busy = self.busy.saturating_sub(earlier.busy);
        // Processes started since count from zero; processes that ended since are lost (pooled
        // connections keep their server processes for the whole run).
        let database: Duration = self
            .database
            .iter()
            .map(|(pid, now)| {
                now.saturating_sub(earlier.database.get(pid).copied().unwrap_or_default())
            })
            .sum();
        MachineUse {
            wall,
            own_cores: cores(own),
            database_cores: cores(database),
            other_cores: cores(busy.saturating_sub(own).saturating_sub(database)),
            iowait_cores: cores(self.iowait.saturating_sub(earlier.iowait)),
            steal_cores: cores(self.steal.saturating_sub(earlier.steal)),
        }
    }
}

/// CPU time of `postmaster` and of every process whose parent it is, by pid.
fn server_times(postmaster: u32) -> BTreeMap<u32, Duration> {
    let mut times = BTreeMap::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return times;
    };
    for process in processes.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(process.path().join("stat")) else {
            continue;
        };
        if let Some((parent, ticks)) = parse_parent_and_ticks(&stat)
            && (pid == postmaster || parent == postmaster)
        {
            times.insert(pid, ticks_to_duration(ticks));
        }
    }
    times
}

/// The parent pid in a process's `stat` line.
pub(crate) fn parent_pid(stat: &str) -> Option<u32> {
    parse_parent_and_ticks(stat).map(|(parent, _)| parent)
}

fn parse_parent_and_ticks(stat: &str) -> Option<(u32, u64)> {
    let (_, ticks) = parse_stat(stat)?;
    let close = stat.rfind(')')?;
    // After the name: state (field 3), then the parent pid (field 4).
    let parent = stat
        .get(close + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((parent, ticks))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// (thread name, utime + stime ticks) from a `stat` line. The name is in parentheses and may
/// itself contain spaces and parentheses, so the fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    // After the name: state (field 3) … utime is field 14 and stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

/// (time on a CPU, time waiting on a run queue) from a `schedstat` line: both in nanoseconds,
/// followed by the number of time slices.
fn parse_schedstat(schedstat: &str) -> Option<(Duration, Duration)> {
    let mut fields = schedstat
        .split_whitespace()
        .map(|field| field.parse::<u64>().ok());
    let cpu = fields.next()??;
    let waiting = fields.next()??;
    // Kernels without scheduler statistics report zeros; fall back to `stat` then.
    (cpu > 0).then(|| (Duration::from_nanos(cpu), Duration::from_nanos(waiting)))
}

#[cfg(test)]
mod tests;
