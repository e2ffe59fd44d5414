//! Printing results as aligned text tables, describing the machine, and writing the results as JSON
//! under `<target dir>/bench-results/`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::cpu::{MachineUse, NamedBusy};
use crate::measure::{Run, millis};

/// A text table printed with columns padded to their widest cell.
#[derive(Debug)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Table {
            title: title.into(),
            header: header.iter().map(|cell| (*cell).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: title, header, rule, rows. The first column is left-aligned, the others
    /// right-aligned (they hold numbers).
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|cell| cell.chars().count())
            .collect();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate().take(columns) {
                widths[column] = widths[column].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::new();
            for (column, width) in widths.iter().enumerate() {
                let cell = cells.get(column).map_or("", String::as_str);
                let padding = width - cell.chars().count().min(*width);
                if column == 0 {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(padding));
                } else {
                    text.push_str("  ");
                    text.push_str(&" ".repeat(padding));
                    text.push_str(cell);
                }
            }
            text.trim_end().to_owned()
        };
        let mut out = format!("\n{}\n", self.title);
        let header = line(&self.header);
        let _ = writeln!(out, "{header}");
        let _ = writeln!(out, "{}", "-".repeat(header.chars().count()));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// The header of a latency table, matching [`latency_row`].
pub const LATENCY_HEADER: [&str; 10] = [
    "",
    "tasks",
    "ops",
    "ops/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "store ms/op",
    "errors",
];

/// One row of a latency table; `in_store` is the mean time per operation spent inside the store
/// (when known), so the rest is above it (parsing, validation, indexing, rendering, scheduling).
pub fn latency_row(label: &str, run: &Run, in_store: Option<Duration>) -> Vec<String> {
    vec![
        label.to_owned(),
        run.tasks.to_string(),
        thousands(run.operations as f64),
        thousands(run.per_second()),
        ms(run.latency.p50),
        ms(run.latency.p90),
        ms(run.latency.p99),
        ms(run.latency.max),
        in_store.map_or_else(|| "-".to_owned(), ms),
        run.errors.to_string(),
    ]
}

/// Which threads used the CPU during a phase of `wall` time, busiest first. 100% is one core kept
/// busy for the whole phase; "waited for a CPU" is time the threads were ready to run but every
/// core was taken (by other threads of this process or by other processes).
pub fn print_busy(title: &str, busy: &[NamedBusy], wall: Duration) {
    let mut table = Table::new(
        title,
        &[
            "thread",
            "threads",
            "CPU s",
            "% of one core",
            "waited for a CPU s",
        ],
    );
    for named in busy
        .iter()
        .filter(|named| named.cpu >= Duration::from_millis(10))
    {
        table.row(vec![
            named.name.clone(),
            named.threads.to_string(),
            format!("{:.1}", named.cpu.as_secs_f64()),
            format!(
                "{:.0}%",
                100.0 * named.cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)
            ),
            format!("{:.1}", named.waiting.as_secs_f64()),
        ]);
    }
    table.print();
}

/// One line on how the machine's CPUs were shared during a phase (nothing for an empty phase).
pub fn print_machine_use(phase: &str, used: &MachineUse) {
    if used.wall < Duration::from_millis(100) {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let contended = used.other_cores >= 0.15 || used.steal_cores >= 0.15;
    let database = if crate::cpu::database_server_counted() {
        format!(", PostgreSQL server {:.2}", used.database_cores)
    } else {
        String::new()
    };
    println!(
        "  CPU during {phase}: this process {:.2} cores{database}, other processes {:.2}, hypervisor steal {:.2}, I/O wait {:.2} (of {cpus}){}",
        used.own_cores,
        used.other_cores,
        used.steal_cores,
        used.iowait_cores,
        if contended {
            " — the CPUs were contended: figures are pessimistic"
        } else {
            ""
        },
    );
}

/// The same as JSON.
pub fn machine_use_json(used: &MachineUse) -> Value {
    json!({
        "wall_s": used.wall.as_secs_f64(),
        "this_process_cores": used.own_cores,
        "database_server_cores": used.database_cores,
        "other_processes_cores": used.other_cores,
        "iowait_cores": used.iowait_cores,
        "steal_cores": used.steal_cores,
    })
}

/// The same as JSON.
pub fn busy_json(busy: &[NamedBusy], wall: Duration) -> Value {
    busy.iter()
        .map(|named| {
            json!({
                "thread": named.name,
                "threads": named.threads,
                "cpu_s": named.cpu.as_secs_f64(),
                "percent_of_one_core": 100.0 * named.cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
                "waited_for_cpu_s": named.waiting.as_secs_f64(),
            })
        })
        .collect()
}

/// Milliseconds with a precision that suits the magnitude.
pub fn ms(duration: Duration) -> String {
    let value = millis(duration);
    if value < 1.0 {
        format!("{value:.3}")
    } else if value < 100.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.0}")
    }
}

/// Microseconds with one decimal.
pub fn us(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1e6)
}

/// A whole number with thin-space-free thousands separators: `12,345`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The machine the figures come from: CPU model, logical CPUs, memory.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo.lines().find_map(|line| {
        line.strip_prefix("model name")
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
    });
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        });
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    json!({
        "cpus": cpus,
        "cpu_model": cpu_model,
        "memory_gib": memory_kib.map(|kib| (kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "os": std::env::consts::OS,
        "debug_assertions": cfg!(debug_assertions),
    })
}

/// Prints the machine line every benchmark starts with.
pub fn print_machine(machine: &Value) {
    println!(
        "machine: {} CPUs ({}), {} GiB memory{}",
        machine["cpus"],
        machine["cpu_model"].as_str().unwrap_or("unknown CPU"),
        machine["memory_gib"],
        if cfg!(debug_assertions) {
            " — DEBUG BUILD: figures are meaningless, use `cargo bench`"
        } else {
            ""
        },
    );
}

/// `<target dir>/bench-results/<name>.json`, or `explicit` when given. The target directory is
/// found from the benchmark binary's own path (`<target>/<profile>/deps/<binary>`), so
/// `CARGO_TARGET_DIR` is honoured.
pub fn results_path(name: &str, explicit: Option<PathBuf>) -> PathBuf {
    if let Some(path) = explicit {
        return path;
    }
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("bench-results").join(format!("{name}.json"))
}

/// Writes `results` (pretty) to `path`, creating its directory.
///
/// # Errors
/// When the file cannot be written.
pub fn write_json(path: &std::path::Path, results: &Value) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(results)?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("\nresults written to {}", path.display());
    Ok(())
}

/// Seconds since the Unix epoch, to date the results.
pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests;
