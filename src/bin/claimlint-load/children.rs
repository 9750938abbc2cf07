//! The processes under test: claimlint, the baselines (this binary's hidden modes) and
//! nats-server, each started on free loopback ports with its output in a run directory, and
//! read for memory through `/proc/<pid>/status`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// A scratch directory for one run's logs and JetStream store, removed on drop.
pub fn run_dir(name: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("claimlint-load-{name}-"))
        .tempdir()
        .context("creating a run directory")
}

/// A free loopback address (bound, then released for the child to take).
pub fn free_addr() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// A child process, killed when dropped.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    pub started: Instant,
}

impl Process {
    pub fn spawn(name: &str, program: &Path, args: &[String], dir: &Path) -> Result<Process> {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let started = Instant::now();
        let child = Command::new(program)
            .args(args)
            .env("CLAIMLINT_LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            log,
            started,
        })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS")
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM")
    }

    /// CPU time the process has used (user + system), from `/proc/<pid>/stat`.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the command name (which may hold spaces) start at field 3 (state);
        // utime and stime are fields 14 and 15, in clock ticks: USER_HZ, 100 on Linux.
        let after_name = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    }

    /// Fails with the log's tail when the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Waits until `addr` accepts a TCP connection.
pub async fn wait_for_port(
    process: &mut Process,
    addr: SocketAddr,
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        process.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "{} did not listen on {addr} within {within:?}",
                process.name
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A fresh JetStream-enabled nats-server on a free port, its store in `dir`.
pub async fn start_nats(program: &Path, dir: &Path) -> Result<(Process, String)> {
    let addr = free_addr()?;
    let store = dir.join("jetstream");
    let args = [
        "-a".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        addr.port().to_string(),
        "-js".to_owned(),
        "-sd".to_owned(),
        store.display().to_string(),
    ];
    let mut process = Process::spawn("nats-server", program, &args, dir)?;
    wait_for_port(&mut process, addr, Duration::from_secs(10)).await?;
    Ok((process, format!("nats://{addr}")))
}

/// claimlint itself, or this binary for a baseline mode.
pub fn claimlint_program(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_owned()),
        None => {
            let me = std::env::current_exe()?;
            let sibling = me.with_file_name("claimlint");
            if !sibling.exists() {
                bail!(
                    "{} not found; build it (`cargo build --release --bins`) or pass --claimlint-bin",
                    sibling.display()
                );
            }
            Ok(sibling)
        }
    }
}

/// nats-server from `--nats-server`, `NATS_SERVER_BIN`, or the PATH.
pub fn nats_program(given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_owned)
        .or_else(|| std::env::var_os("NATS_SERVER_BIN").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}
