//! What a run measured, as text for a person and JSON for a file.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies in microseconds, 1 µs to 10 minutes at 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant bounds are valid")
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Latency {
    pub fn of(histogram: &Histogram<u64>) -> Latency {
        Latency {
            samples: histogram.len(),
            mean_us: histogram.mean(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }
}

/// Resident memory of the server under test over a run, sampled from `/proc/<pid>/status`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Memory {
    /// VmHWM at the end of the run: the peak resident set since the process started.
    pub peak_rss_kib: Option<u64>,
    /// VmRSS when measuring began (after the warm-up) and at the end.
    pub rss_start_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    /// (seconds into the measured window, VmRSS KiB).
    pub samples: Vec<(f64, u64)>,
}

impl Memory {
    /// Growth of the resident set over the measured window, in percent.
    pub fn growth_percent(&self) -> Option<f64> {
        let (start, end) = (self.rss_start_kib?, self.rss_end_kib?);
        (start > 0).then(|| (end as f64 - start as f64) * 100.0 / start as f64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `claimlint`, `echo` (gRPC baseline) or `noop` (NATS baseline).
    pub target: String,
    /// `grpc-unary`, `grpc-stream` or `nats`.
    pub mode: String,
    pub connections: Option<usize>,
    pub concurrency: usize,
    /// NATS runs: encounters of one patient on one day (1: every encounter its own patient).
    pub visits_per_patient_day: Option<u64>,
    /// The offered rate (per second) when the run was paced; none: as fast as answered.
    pub offered_rate: Option<f64>,
    pub measured_seconds: f64,
    pub completed: u64,
    pub validated: u64,
    pub rejected: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub throughput_per_s: f64,
    pub latency: Latency,
    pub memory: Memory,
    /// Process start → first answered call (gRPC), or → consumer ready (NATS).
    pub startup_ms: Option<f64>,
    /// The server's CPU time (user + system) over the measured window ÷ requests completed
    /// in it: what one request costs the server, less noisy than throughput on a shared machine.
    pub server_cpu_us_per_request: Option<f64>,
    /// NATS runs: the nats-server's CPU per encounter the same way (it shares the machine, and
    /// the duplicate-service store is work it does for claimlint and not for the no-op).
    pub nats_server_cpu_us_per_request: Option<f64>,
}

impl RunReport {
    pub fn text(&self) -> String {
        let rate = self
            .offered_rate
            .map_or_else(|| "max".to_owned(), |r| format!("{r:.0}/s"));
        let mut connections = self
            .connections
            .map_or_else(String::new, |c| format!(" connections {c}"));
        if let Some(visits) = self.visits_per_patient_day.filter(|&v| v > 1) {
            connections.push_str(&format!(" visits per patient-day {visits}"));
        }
        let l = &self.latency;
        let mut text = format!(
            "{:<9} {:<11} offered {rate}{connections} concurrency {}\n  {:.0}/s over {:.1} s: {} completed ({} validated, {} rejected), {} errors\n  latency µs: p50 {} p90 {} p99 {} p99.9 {} max {} (mean {:.0})\n",
            self.target,
            self.mode,
            self.concurrency,
            self.throughput_per_s,
            self.measured_seconds,
            self.completed,
            self.validated,
            self.rejected,
            self.errors,
            l.p50_us,
            l.p90_us,
            l.p99_us,
            l.p999_us,
            l.max_us,
            l.mean_us,
        );
        if let Some(peak) = self.memory.peak_rss_kib {
            text.push_str(&format!(
                "  server peak RSS {:.1} MiB",
                peak as f64 / 1024.0
            ));
            if let Some(growth) = self.memory.growth_percent() {
                text.push_str(&format!(
                    ", RSS {:.1} → {:.1} MiB over the run ({growth:+.2}%)",
                    self.memory.rss_start_kib.unwrap_or(0) as f64 / 1024.0,
                    self.memory.rss_end_kib.unwrap_or(0) as f64 / 1024.0
                ));
            }
            text.push('\n');
        }
        if let Some(cpu) = self.server_cpu_us_per_request {
            text.push_str(&format!("  server CPU {cpu:.0} µs per request\n"));
        }
        if let Some(cpu) = self.nats_server_cpu_us_per_request {
            text.push_str(&format!("  nats-server CPU {cpu:.0} µs per request\n"));
        }
        if let Some(startup) = self.startup_ms {
            text.push_str(&format!("  start-up {startup:.0} ms\n"));
        }
        if let Some(error) = &self.first_error {
            text.push_str(&format!("  first error: {error}\n"));
        }
        text
    }
}

/// claimlint against its baseline at the same settings.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub claimlint: RunReport,
    pub baseline: Option<RunReport>,
    /// claimlint's throughput ÷ the baseline's.
    pub throughput_ratio: Option<f64>,
}

impl Comparison {
    pub fn new(claimlint: RunReport, baseline: Option<RunReport>) -> Comparison {
        let throughput_ratio = baseline
            .as_ref()
            .filter(|b| b.throughput_per_s > 0.0)
            .map(|b| claimlint.throughput_per_s / b.throughput_per_s);
        Comparison {
            claimlint,
            baseline,
            throughput_ratio,
        }
    }

    pub fn text(&self) -> String {
        let mut text = self.claimlint.text();
        if let Some(baseline) = &self.baseline {
            text.push_str(&baseline.text());
        }
        if let Some(ratio) = self.throughput_ratio {
            text.push_str(&format!(
                "  claimlint ÷ {}: throughput {:.1}%\n",
                self.baseline
                    .as_ref()
                    .map_or("baseline", |b| b.target.as_str()),
                ratio * 100.0
            ));
        }
        text
    }
}
