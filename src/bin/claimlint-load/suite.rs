//! `suite`: every figure BENCHMARKS.md reports, in one run, judged against the performance
//! targets (issue 9): gRPC unary at its maximum beside the echo baseline, gRPC latency at 70%
//! of claimlint's maximum, the NATS pipeline at its maximum beside the no-op baseline, NATS
//! latency at 50% of claimlint's maximum, start-up, peak memory, and (with `--soak`) memory
//! growth over a long run at 50%.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::Format;
use crate::children;
use crate::grpc_load::{self, GrpcLoad, GrpcTarget, Rpc, Servers};
use crate::nats_load::{self, NatsLoad, NatsTarget};
use crate::report::{Comparison, RunReport};

#[derive(Debug, clap::Args)]
pub struct SuiteArgs {
    /// gRPC: HTTP/2 connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// gRPC: requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// gRPC: measured time per run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// gRPC: warm-up per run.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// NATS: encounters per run at the maximum.
    #[arg(long, default_value_t = 20_000)]
    nats_count: u64,
    /// NATS: unmeasured encounters at the start of each run.
    #[arg(long, default_value_t = 1_000)]
    nats_warmup_count: u64,
    /// Start claimlint this many times to measure start-up.
    #[arg(long, default_value_t = 5)]
    startups: usize,
    /// Also run claimlint this long at 50% of its gRPC maximum and report memory growth.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    soak: Duration,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the JSON report here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    #[arg(long)]
    claimlint_bin: Option<PathBuf>,
    #[arg(long)]
    nats_server: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpu_model: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|line| {
                line.strip_prefix(name)?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let memory_kib: f64 = field(&meminfo, "MemTotal")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or(0.0);
    Machine {
        cpu_model: field(&cpuinfo, "model name"),
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// One line of the targets table.
#[derive(Debug, Serialize)]
struct Target {
    what: &'static str,
    target: &'static str,
    measured: String,
    baseline: Option<String>,
    ratio: Option<String>,
    met: bool,
}

#[derive(Debug, Serialize)]
struct Suite {
    machine: Machine,
    started_at: String,
    finished_at: String,
    grpc_unary_max: Comparison,
    grpc_stream_max: Comparison,
    grpc_unary_at_70_percent: Comparison,
    nats_max: Comparison,
    nats_at_50_percent: Comparison,
    startup_ms: Vec<f64>,
    soak: Option<RunReport>,
    targets: Vec<Target>,
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn grpc_pair(servers: &Servers, load: &GrpcLoad) -> Result<Comparison> {
    let claimlint = grpc_load::measure(GrpcTarget::Claimlint, servers, load).await?;
    let echo = grpc_load::measure(GrpcTarget::Echo, servers, load).await?;
    Ok(Comparison::new(claimlint, Some(echo)))
}

async fn nats_pair(servers: &Servers, load: &NatsLoad) -> Result<Comparison> {
    let claimlint = nats_load::measure(NatsTarget::Claimlint, servers, load).await?;
    let noop = nats_load::measure(NatsTarget::Noop, servers, load).await?;
    Ok(Comparison::new(claimlint, Some(noop)))
}

pub async fn run(args: SuiteArgs) -> Result<()> {
    let servers = Servers {
        claimlint_bin: children::claimlint_program(args.claimlint_bin.as_deref())?,
        load_bin: std::env::current_exe()?,
    };
    // A report path that cannot be written fails now, not after the runs.
    let mut report_file = args
        .json_out
        .as_deref()
        .map(|path| create_report_file(path).map(|file| (path, file)))
        .transpose()?;
    let started_at = chrono::Utc::now().to_rfc3339();
    let progress = |what: &str| eprintln!("claimlint-load suite: {what}");
    let grpc = GrpcLoad {
        connections: args.connections,
        concurrency: args.concurrency,
        duration: args.duration,
        count: None,
        warmup: args.warmup,
        rpc: Rpc::Unary,
        rate: None,
        rss_every: Duration::from_secs(5),
    };

    progress("gRPC unary, as fast as answered");
    let grpc_unary_max = grpc_pair(&servers, &grpc).await?;
    progress("gRPC stream, as fast as answered");
    let grpc_stream_max = grpc_pair(
        &servers,
        &GrpcLoad {
            rpc: Rpc::Stream,
            ..grpc.clone()
        },
    )
    .await?;
    let grpc_max = grpc_unary_max.claimlint.throughput_per_s;
    progress("gRPC unary at 70% of claimlint's maximum");
    let grpc_unary_at_70_percent = grpc_pair(
        &servers,
        &GrpcLoad {
            rate: Some(grpc_max * 0.7),
            ..grpc.clone()
        },
    )
    .await?;

    let nats = NatsLoad {
        count: args.nats_count,
        warmup_count: args.nats_warmup_count,
        rate: None,
        in_flight: 256,
        idle_timeout: Duration::from_secs(30),
        nats_server: args.nats_server.clone(),
        visits_per_patient_day: 1,
    };
    progress("NATS, as fast as acknowledged");
    let nats_max = nats_pair(&servers, &nats).await?;
    let nats_rate = nats_max.claimlint.throughput_per_s * 0.5;
    progress("NATS at 50% of claimlint's maximum");
    let paced_count = (nats_rate * args.duration.as_secs_f64()) as u64 + args.nats_warmup_count;
    let nats_at_50_percent = nats_pair(
        &servers,
        &NatsLoad {
            rate: Some(nats_rate),
            count: paced_count,
            ..nats.clone()
        },
    )
    .await?;

    progress("start-up");
    let mut startup_ms = Vec::with_capacity(args.startups);
    for _ in 0..args.startups.max(1) {
        let started = grpc_load::start(GrpcTarget::Claimlint, &servers, 1).await?;
        startup_ms.push(started.startup_ms());
        started.stop().await;
    }
    startup_ms.sort_by(f64::total_cmp);

    let soak = if args.soak.is_zero() {
        None
    } else {
        progress(&format!(
            "soak: {:?} at 50% of claimlint's gRPC maximum",
            args.soak
        ));
        let load = GrpcLoad {
            rate: Some(grpc_max * 0.5),
            duration: args.soak,
            warmup: Duration::from_secs(30),
            rss_every: Duration::from_secs(10),
            ..grpc.clone()
        };
        Some(grpc_load::measure(GrpcTarget::Claimlint, &servers, &load).await?)
    };

    let targets = judge(
        &grpc_unary_max,
        &grpc_unary_at_70_percent,
        &nats_max,
        &nats_at_50_percent,
        &startup_ms,
        soak.as_ref(),
    );
    let suite = Suite {
        machine: machine(),
        started_at,
        finished_at: chrono::Utc::now().to_rfc3339(),
        grpc_unary_max,
        grpc_stream_max,
        grpc_unary_at_70_percent,
        nats_max,
        nats_at_50_percent,
        startup_ms,
        soak,
        targets,
    };
    let json = serde_json::to_string_pretty(&suite)?;
    match args.format {
        Format::Json => println!("{json}"),
        Format::Text => print!("{}", text(&suite)),
    }
    if let Some((path, file)) = report_file.as_mut() {
        file.write_all(json.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Creates the JSON report's file (and its directory).
fn create_report_file(path: &std::path::Path) -> Result<std::fs::File> {
    if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("creating {}", directory.display()))?;
    }
    std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// claimlint's throughput as a share of the baseline's, without errors.
fn throughput_target(
    what: &'static str,
    target: &'static str,
    minimum: f64,
    run: &Comparison,
) -> Target {
    let rate = |r: &RunReport| format!("{:.0}/s", r.throughput_per_s);
    let ratio = run.throughput_ratio.unwrap_or(0.0);
    Target {
        what,
        target,
        measured: rate(&run.claimlint),
        baseline: run.baseline.as_ref().map(rate),
        ratio: Some(percent(ratio)),
        met: ratio >= minimum && run.claimlint.errors == 0,
    }
}

/// claimlint's p99 at a paced rate, beside the baseline's at the same rate.
fn p99_target(what: &'static str, target: &'static str, limit_us: u64, run: &Comparison) -> Target {
    let p99 = run.claimlint.latency.p99_us;
    let baseline = run.baseline.as_ref();
    Target {
        what,
        target,
        measured: format!(
            "{} at {:.0}/s",
            ms(p99),
            run.claimlint.offered_rate.unwrap_or(0.0)
        ),
        baseline: baseline.map(|b| ms(b.latency.p99_us)),
        ratio: baseline
            .filter(|b| b.latency.p99_us > 0)
            .map(|b| format!("{:.2}×", p99 as f64 / b.latency.p99_us as f64)),
        met: p99 <= limit_us && run.claimlint.errors == 0,
    }
}

fn judge(
    grpc_max: &Comparison,
    grpc_70: &Comparison,
    nats_max: &Comparison,
    nats_50: &Comparison,
    startup_ms: &[f64],
    soak: Option<&RunReport>,
) -> Vec<Target> {
    let mut targets = vec![
        throughput_target(
            "gRPC unary throughput",
            "≥ 85% of the echo baseline",
            0.85,
            grpc_max,
        ),
        p99_target(
            "gRPC unary p99 at 70% of claimlint's maximum",
            "≤ 5 ms",
            5_000,
            grpc_70,
        ),
        throughput_target(
            "NATS pipeline throughput",
            "≥ 70% of the no-op baseline",
            0.70,
            nats_max,
        ),
        p99_target(
            "NATS publish → outcome acked p99 at 50% of the maximum",
            "≤ 25 ms",
            25_000,
            nats_50,
        ),
    ];
    let peak = grpc_max.claimlint.memory.peak_rss_kib.unwrap_or(u64::MAX);
    targets.push(Target {
        what: "peak RSS at maximum gRPC load",
        target: "≤ 80 MB",
        measured: mib(peak),
        baseline: grpc_max
            .baseline
            .as_ref()
            .and_then(|b| b.memory.peak_rss_kib)
            .map(mib),
        ratio: None,
        met: peak * 1024 <= 80_000_000,
    });
    if let Some(soak) = soak {
        let growth = soak.memory.growth_percent();
        targets.push(Target {
            what: "RSS growth over the soak at 50%",
            target: "≤ 5%",
            measured: growth.map_or_else(
                || "not measured".to_owned(),
                |g| {
                    format!(
                        "{g:+.2}% ({} → {} over {:.0} s)",
                        mib(soak.memory.rss_start_kib.unwrap_or(0)),
                        mib(soak.memory.rss_end_kib.unwrap_or(0)),
                        soak.measured_seconds
                    )
                },
            ),
            baseline: None,
            ratio: None,
            met: growth.is_some_and(|g| g <= 5.0) && soak.errors == 0,
        });
    }
    let median = startup_ms
        .get(startup_ms.len() / 2)
        .copied()
        .unwrap_or(f64::MAX);
    let worst = startup_ms.last().copied().unwrap_or(f64::MAX);
    targets.push(Target {
        what: "start-up to serving gRPC (no NATS)",
        target: "≤ 300 ms",
        measured: format!(
            "median {median:.0} ms, worst {worst:.0} ms of {}",
            startup_ms.len()
        ),
        baseline: grpc_max
            .baseline
            .as_ref()
            .and_then(|b| b.startup_ms)
            .map(|s| format!("{s:.0} ms")),
        ratio: None,
        met: worst <= 300.0,
    });
    targets
}

fn text(suite: &Suite) -> String {
    let m = &suite.machine;
    let mut text = format!(
        "claimlint-load suite, {} → {}\nmachine: {} ({} cores, {} GiB, Linux {})\n\n",
        suite.started_at, suite.finished_at, m.cpu_model, m.cores, m.memory_gib, m.kernel
    );
    for (title, comparison) in [
        ("gRPC unary, as fast as answered", &suite.grpc_unary_max),
        ("gRPC stream, as fast as answered", &suite.grpc_stream_max),
        (
            "gRPC unary at 70% of claimlint's maximum",
            &suite.grpc_unary_at_70_percent,
        ),
        ("NATS, as fast as acknowledged", &suite.nats_max),
        (
            "NATS at 50% of claimlint's maximum",
            &suite.nats_at_50_percent,
        ),
    ] {
        text.push_str(&format!("== {title}\n{}\n", comparison.text()));
    }
    if let Some(soak) = &suite.soak {
        text.push_str(&format!("== soak\n{}\n", soak.text()));
    }
    text.push_str(&format!(
        "start-up (ms): {:?}\n\n== targets\n",
        suite.startup_ms
    ));
    for target in &suite.targets {
        text.push_str(&format!(
            "{} {}: {} (target {}){}{}\n",
            if target.met { "MET    " } else { "NOT MET" },
            target.what,
            target.measured,
            target.target,
            target
                .baseline
                .as_ref()
                .map_or_else(String::new, |b| format!("; baseline {b}")),
            target
                .ratio
                .as_ref()
                .map_or_else(String::new, |r| format!("; ratio {r}")),
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Latency, Memory};

    fn report(throughput: f64, p99_us: u64, errors: u64, peak_kib: u64) -> RunReport {
        RunReport {
            target: "claimlint".into(),
            mode: "grpc-unary".into(),
            connections: Some(4),
            concurrency: 32,
            visits_per_patient_day: None,
            offered_rate: None,
            measured_seconds: 10.0,
            completed: 1000,
            validated: 1000,
            rejected: 0,
            errors,
            first_error: None,
            throughput_per_s: throughput,
            latency: Latency {
                samples: 1000,
                mean_us: 1.0,
                p50_us: 1,
                p90_us: 1,
                p99_us,
                p999_us: p99_us,
                max_us: p99_us,
            },
            memory: Memory {
                peak_rss_kib: Some(peak_kib),
                rss_start_kib: Some(1000),
                rss_end_kib: Some(1050),
                samples: Vec::new(),
            },
            startup_ms: Some(20.0),
            server_cpu_us_per_request: None,
            nats_server_cpu_us_per_request: None,
        }
    }

    fn pair(claimlint: RunReport, baseline: RunReport) -> Comparison {
        Comparison::new(claimlint, Some(baseline))
    }

    /// One row per target boundary: (what, met).
    #[test]
    fn targets_are_judged_at_their_boundaries() {
        let good = pair(report(85.0, 5_000, 0, 78_125), report(100.0, 1_000, 0, 1));
        let nats_good = pair(report(70.0, 25_000, 0, 1), report(100.0, 1_000, 0, 1));
        let soak = report(1.0, 1, 0, 1); // RSS 1000 → 1050 KiB: +5.0 %
        let targets = judge(
            &good,
            &good,
            &nats_good,
            &nats_good,
            &[10.0, 300.0],
            Some(&soak),
        );
        let met: Vec<(&str, bool)> = targets.iter().map(|t| (t.what, t.met)).collect();
        assert_eq!(
            met,
            [
                ("gRPC unary throughput", true),
                ("gRPC unary p99 at 70% of claimlint's maximum", true),
                ("NATS pipeline throughput", true),
                (
                    "NATS publish → outcome acked p99 at 50% of the maximum",
                    true
                ),
                ("peak RSS at maximum gRPC load", true),
                ("RSS growth over the soak at 50%", true),
                ("start-up to serving gRPC (no NATS)", true),
            ]
        );

        // Just past each boundary, or with errors, or unmeasured: not met.
        let slow = pair(report(84.9, 5_001, 0, 78_126), report(100.0, 1_000, 0, 1));
        let erring = pair(report(90.0, 1_000, 1, 1), report(100.0, 1_000, 0, 1));
        let no_baseline = Comparison::new(report(90.0, 1_000, 0, 1), None);
        let mut grown = report(1.0, 1, 0, 1);
        grown.memory.rss_end_kib = Some(1051);
        let targets = judge(&slow, &slow, &erring, &erring, &[10.0, 301.0], Some(&grown));
        assert!(targets.iter().all(|t| !t.met), "{targets:?}");
        let targets = judge(
            &no_baseline,
            &no_baseline,
            &no_baseline,
            &no_baseline,
            &[],
            None,
        );
        let unmet: Vec<&str> = targets.iter().filter(|t| !t.met).map(|t| t.what).collect();
        assert_eq!(
            unmet,
            [
                "gRPC unary throughput",
                "NATS pipeline throughput",
                "start-up to serving gRPC (no NATS)"
            ]
        );
    }
}
