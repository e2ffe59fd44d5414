//! CPU time per thread of this process, from `/proc/self/task/*/stat` (Linux). Two snapshots around
//! a phase tell which threads were busy and for how long — e.g. whether the store's single writer
//! thread was saturated during ingest — without a profiler. Elsewhere the snapshots are empty.

use std::collections::BTreeMap;
use std::time::Duration;

/// Linux reports thread times in clock ticks of `USER_HZ`, which is 100 on every architecture the
/// kernel exposes to user space.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system) per thread id, with each thread's name.
#[derive(Debug, Clone, Default)]
pub struct ThreadTimes(BTreeMap<u64, (String, Duration)>);

/// CPU time of the threads sharing one name during a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedBusy {
    pub name: String,
    pub threads: usize,
    pub cpu: Duration,
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
            if let Some((name, ticks)) = parse_stat(&stat) {
                times.insert(
                    tid,
                    (name, Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)),
                );
            }
        }
        ThreadTimes(times)
    }

    /// CPU time used since `earlier`, summed per thread name, busiest first. Threads started
    /// since count from zero.
    pub fn since(&self, earlier: &ThreadTimes) -> Vec<NamedBusy> {
        let mut by_name: BTreeMap<&str, (usize, Duration)> = BTreeMap::new();
        for (tid, (name, cpu)) in &self.0 {
            let before = earlier.0.get(tid).map_or(Duration::ZERO, |(_, cpu)| *cpu);
            let used = cpu.saturating_sub(before);
            if used.is_zero() {
                continue;
            }
            let entry = by_name.entry(name).or_default();
            entry.0 += 1;
            entry.1 += used;
        }
        let mut busy: Vec<NamedBusy> = by_name
            .into_iter()
            .map(|(name, (threads, cpu))| NamedBusy {
                name: name.to_owned(),
                threads,
                cpu,
            })
            .collect();
        busy.sort_by_key(|named| std::cmp::Reverse(named.cpu));
        busy
    }
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

#[cfg(test)]
mod tests;
