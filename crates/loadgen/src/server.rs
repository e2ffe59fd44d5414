//! The server under load, seen from outside: started by the driver (`--spawn`) on a free port with
//! every data file in one directory, or already running (`--url`, `--server-pid`); its resident
//! memory and CPU time read from `/proc/<pid>/status` and `/proc/<pid>/stat` while the load runs,
//! with the machine's busy time (`/proc/stat`) and the driver's own, so that what other processes
//! took is known.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::http::{Connection, Request, Target};

/// `tsunagu serve` started by the driver; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Where its standard error (its log) goes.
    pub log: PathBuf,
}

/// The data files of a server whose data lives in `data`, as `tsunagu serve` flags.
pub fn data_flags(data: &Path) -> Vec<(&'static str, PathBuf)> {
    [
        ("--registry", "registry.json"),
        ("--patients", "patients.json"),
        ("--service-key", "service-key.pem"),
        ("--audit-log", "audit.sqlite"),
        ("--audit-key", "audit-key.pem"),
        ("--alerts", "alerts.jsonl"),
    ]
    .into_iter()
    .map(|(flag, name)| (flag, data.join(name)))
    .collect()
}

impl Spawned {
    /// Starts `binary serve --listen 127.0.0.1:<free port> --database <database> <data files>
    /// <extra>` with its log in `<data>/serve.log`, and waits until `/readyz` answers 200.
    ///
    /// # Errors
    /// When it cannot start, exits, or is not ready within `ready_within`.
    pub async fn start(
        binary: &Path,
        data: &Path,
        database: &str,
        extra: &[OsString],
        ready_within: Duration,
    ) -> anyhow::Result<Spawned> {
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = data.join("serve.log");
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database")
            .arg(database);
        for (flag, path) in data_flags(data) {
            command.arg(flag).arg(path);
        }
        let child = command
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut spawned = Spawned {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let target = Target::parse(&spawned.url)?;
        let mut connection = Connection::new(target, Duration::from_secs(5));
        let started = Instant::now();
        loop {
            if let Ok(reply) = connection.send(&Request::get("/readyz")).await
                && reply.status == 200
            {
                return Ok(spawned);
            }
            if let Some(status) = spawned.child.try_wait()? {
                bail!(
                    "the server exited with {status} before it was ready; its log: {}",
                    spawned.log.display()
                );
            }
            if started.elapsed() > ready_within {
                bail!(
                    "the server was not ready within {ready_within:?}; its log: {}",
                    spawned.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server: SIGTERM (it finishes in-flight requests and closes its audit log), and
    /// SIGKILL if it has not exited within 30 s.
    ///
    /// # Errors
    /// When it exited with a failure status.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let status = self.terminate()?;
        if !status.success() {
            bail!(
                "the server exited with {status}; its log: {}",
                self.log.display()
            );
        }
        Ok(())
    }

    fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // `kill` the command: the crate forbids `unsafe`, so no libc call.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// One reading of the machine, the driver and the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the measurement started (negative during the warm-up).
    pub at: f64,
    /// CPU time every processor of the machine spent busy so far (`/proc/stat`: user, nice,
    /// system, irq, softirq, steal), seconds.
    pub machine_busy_seconds: f64,
    /// The driver's own CPU time so far, seconds.
    pub driver_cpu_seconds: f64,
    /// The server's, when its process is known and alive.
    pub server: Option<ServerSample>,
}

/// The server process at one reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerSample {
    /// Resident set size (`VmRSS`), bytes.
    pub rss_bytes: u64,
    /// User + system CPU time of every thread so far, seconds.
    pub cpu_seconds: f64,
}

/// Reads `/proc` at `at`: the machine, this process, and `pid` when given. None when `/proc`
/// cannot be read (not Linux).
pub fn sample(pid: Option<u32>, at: f64) -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|index| ticks.get(*index))
        .sum();
    let server = pid.and_then(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(ServerSample {
            rss_bytes: status_kib(&status, "VmRSS:")? * 1024,
            cpu_seconds: process_cpu_seconds(&pid.to_string())?,
        })
    });
    Some(Sample {
        at,
        machine_busy_seconds: busy as f64 / USER_HZ,
        driver_cpu_seconds: process_cpu_seconds("self")?,
        server,
    })
}

/// USER_HZ, the unit of `/proc` CPU times: 100 on every Linux architecture the project runs on.
const USER_HZ: f64 = 100.0;

/// User + system CPU time of every thread of a process (`/proc/<process>/stat`), seconds.
fn process_cpu_seconds(process: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, inside parentheses): state is the
    // first, utime and stime the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / USER_HZ)
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The peak resident set size of the process's life (`VmHWM`), bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(status_kib(&status, "VmHWM:")? * 1024)
}
