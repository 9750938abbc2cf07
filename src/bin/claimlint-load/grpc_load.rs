//! `grpc` mode: `Validate` (unary) or `ValidateStream` (one request in flight per stream)
//! from `concurrency` workers over `connections` HTTP/2 connections, as fast as answered or
//! paced at an offered rate. A paced request's latency counts from when it was due, not from
//! when a worker got to it, so a stalled server is not hidden (no coordinated omission).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use claimlint::proto::v1 as pb;
use claimlint::proto::v1::claim_validator_client::ClaimValidatorClient;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use crate::children::{self, Process};
use crate::report::{self, Latency, Memory, RunReport};
use crate::visits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Rpc {
    Unary,
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GrpcTarget {
    Claimlint,
    Echo,
}

impl GrpcTarget {
    fn name(self) -> &'static str {
        match self {
            GrpcTarget::Claimlint => "claimlint",
            GrpcTarget::Echo => "echo",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct GrpcLoad {
    /// HTTP/2 connections the workers share.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight at once (workers).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Stop after this many measured requests instead (still bounded by --duration).
    #[arg(long)]
    pub count: Option<u64>,
    /// Load sent before measuring starts.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    #[arg(long, value_enum, default_value_t = Rpc::Unary)]
    pub rpc: Rpc,
    /// Offered requests per second; unset: as fast as answered.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Sample the server's resident memory this often (for a soak).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub rss_every: Duration,
}

/// Where the server under test comes from.
#[derive(Debug, Clone)]
pub struct Servers {
    pub claimlint_bin: PathBuf,
    pub load_bin: PathBuf,
}

/// A server under test, started as a child on a free port and answering.
pub struct Started {
    process: Process,
    channels: Vec<Channel>,
    startup: Duration,
    _dir: tempfile::TempDir,
}

pub async fn start(target: GrpcTarget, servers: &Servers, connections: usize) -> Result<Started> {
    let dir = children::run_dir(target.name())?;
    let grpc = children::free_addr()?;
    let (program, args) = match target {
        GrpcTarget::Claimlint => {
            let http = children::free_addr()?;
            (
                servers.claimlint_bin.clone(),
                vec![
                    "serve".to_owned(),
                    "--grpc-addr".to_owned(),
                    grpc.to_string(),
                    "--http-addr".to_owned(),
                    http.to_string(),
                ],
            )
        }
        GrpcTarget::Echo => (
            servers.load_bin.clone(),
            vec![
                "echo-server".to_owned(),
                "--listen".to_owned(),
                grpc.to_string(),
            ],
        ),
    };
    let mut process = Process::spawn(target.name(), &program, &args, dir.path())?;
    let endpoint = Endpoint::from_shared(format!("http://{grpc}"))?;
    let probe = visits::numbered_visit(&visits::typical_visit()?, "probe", 0);
    // Serving = a Validate answered on a new connection.
    let deadline = Instant::now() + Duration::from_secs(20);
    let startup = loop {
        if let Ok(channel) = endpoint.connect().await {
            let mut client = ClaimValidatorClient::new(channel);
            let request = pb::ValidateRequest {
                encounter: Some(probe.clone()),
                dry_run: true,
            };
            if client.validate(request).await.is_ok() {
                break process.started.elapsed();
            }
        }
        process.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "{} did not answer within 20 s:\n{}",
                target.name(),
                process.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        channels.push(
            endpoint
                .connect()
                .await
                .context("connecting a load connection")?,
        );
    }
    Ok(Started {
        process,
        channels,
        startup,
        _dir: dir,
    })
}

impl Started {
    pub fn startup_ms(&self) -> f64 {
        self.startup.as_secs_f64() * 1000.0
    }

    pub async fn stop(self) {
        self.process.stop().await;
    }
}

/// What every worker shares: the schedule and the clock.
struct Plan {
    begin: Instant,
    measure_from: Instant,
    end: Instant,
    rate: Option<f64>,
    count: Option<u64>,
    tickets: AtomicU64,
    measured: AtomicU64,
}

impl Plan {
    /// When the next request's latency counts from, or none when the run is over. A paced
    /// request already overdue (every worker was busy: the server is behind) counts from its
    /// due time; one that had to wait counts from when the timer woke it, so the timer's
    /// millisecond granularity is not charged to the server.
    async fn next_due(&self) -> Option<Instant> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let due = match self.rate {
            Some(rate) => {
                let due = self.begin + Duration::from_secs_f64(ticket as f64 / rate);
                if due > self.end {
                    return None;
                }
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                    Instant::now()
                } else {
                    due
                }
            }
            None => Instant::now(),
        };
        if due >= self.end {
            return None;
        }
        if due >= self.measure_from
            && let Some(count) = self.count
            && self.measured.fetch_add(1, Ordering::Relaxed) >= count
        {
            return None;
        }
        Some(due)
    }
}

#[derive(Default)]
struct Tally {
    validated: u64,
    rejected: u64,
    errors: u64,
    first_error: Option<String>,
    last_done: Option<Instant>,
}

impl Tally {
    fn record(&mut self, answer: Result<pb::ValidateResponse, tonic::Status>) {
        match answer {
            Ok(response) => match response.outcome.map(|o| o.status) {
                Some(status) if status == pb::Status::Validated as i32 => self.validated += 1,
                Some(_) => self.rejected += 1,
                None => self.fail("an answer without an outcome".to_owned()),
            },
            Err(status) => self.fail(format!("{:?}: {}", status.code(), status.message())),
        }
    }

    fn fail(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }
}

async fn worker(
    channel: Channel,
    rpc: Rpc,
    request: pb::ValidateRequest,
    plan: Arc<Plan>,
) -> (Histogram<u64>, Tally) {
    let mut histogram = report::new_histogram();
    let mut tally = Tally::default();
    let mut client = ClaimValidatorClient::new(channel);
    // Stream mode: one stream per worker, one request in flight on it.
    let mut stream = None;
    if rpc == Rpc::Stream {
        let (sender, receiver) = mpsc::channel(1);
        match client.validate_stream(ReceiverStream::new(receiver)).await {
            Ok(response) => stream = Some((sender, response.into_inner())),
            Err(status) => {
                tally.fail(format!("opening a stream: {status}"));
                return (histogram, tally);
            }
        }
    }
    while let Some(due) = plan.next_due().await {
        let answer = match stream.as_mut() {
            None => client
                .validate(request.clone())
                .await
                .map(tonic::Response::into_inner),
            Some((sender, inbound)) => {
                if sender.send(request.clone()).await.is_err() {
                    Err(tonic::Status::unavailable("the stream closed"))
                } else {
                    match inbound.message().await {
                        Ok(Some(response)) => Ok(response),
                        Ok(None) => Err(tonic::Status::unavailable("the stream ended")),
                        Err(status) => Err(status),
                    }
                }
            }
        };
        let done = Instant::now();
        let failed = answer.is_err();
        if due >= plan.measure_from {
            histogram.saturating_record(done.duration_since(due).as_micros() as u64);
            tally.record(answer);
            tally.last_done = Some(done);
        }
        if stream.is_some() && failed {
            // A broken stream stays broken: this worker stops rather than count it forever.
            break;
        }
    }
    (histogram, tally)
}

/// One measured run against a started server.
pub async fn run(target: &mut Started, name: &str, load: &GrpcLoad) -> Result<RunReport> {
    let template = visits::typical_visit()?;
    let request = pb::ValidateRequest {
        encounter: Some(visits::numbered_visit(&template, "grpc", 1)),
        dry_run: true,
    };
    let begin = Instant::now();
    let measure_from = begin + load.warmup;
    let plan = Arc::new(Plan {
        begin,
        measure_from,
        end: measure_from + load.duration,
        rate: load.rate,
        count: load.count,
        tickets: AtomicU64::new(0),
        measured: AtomicU64::new(0),
    });
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..load.concurrency.max(1) {
        let channel = target.channels[index % target.channels.len()].clone();
        workers.spawn(worker(channel, load.rpc, request.clone(), plan.clone()));
    }
    // Memory while the load runs.
    let mut memory = Memory::default();
    tokio::time::sleep_until(measure_from.into()).await;
    memory.rss_start_kib = target.process.rss_kib();
    let cpu_start = target.process.cpu_seconds();
    let mut sampling = tokio::time::interval(load.rss_every);
    sampling.tick().await;
    let mut histogram = report::new_histogram();
    let mut tally = Tally::default();
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok((worker_histogram, worker_tally))) => {
                    histogram.add(&worker_histogram).context("merging latencies")?;
                    tally.validated += worker_tally.validated;
                    tally.rejected += worker_tally.rejected;
                    tally.errors += worker_tally.errors;
                    if tally.first_error.is_none() {
                        tally.first_error = worker_tally.first_error;
                    }
                    tally.last_done = tally.last_done.max(worker_tally.last_done);
                }
                Some(Err(error)) => bail!("a load worker failed: {error}"),
                None => break,
            },
            _ = sampling.tick() => {
                if let Some(rss) = target.process.rss_kib() {
                    memory.samples.push((measure_from.elapsed().as_secs_f64(), rss));
                }
            }
        }
    }
    let cpu_end = target.process.cpu_seconds();
    memory.rss_end_kib = target.process.rss_kib();
    memory.peak_rss_kib = target.process.peak_rss_kib();
    target.process.check_alive()?;
    let completed = tally.validated + tally.rejected + tally.errors;
    let window = tally
        .last_done
        .unwrap_or(plan.end)
        .min(plan.end)
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(1e-9);
    Ok(RunReport {
        target: name.to_owned(),
        mode: match load.rpc {
            Rpc::Unary => "grpc-unary",
            Rpc::Stream => "grpc-stream",
        }
        .to_owned(),
        connections: Some(target.channels.len()),
        concurrency: load.concurrency,
        visits_per_patient_day: None,
        offered_rate: load.rate,
        measured_seconds: window,
        completed,
        validated: tally.validated,
        rejected: tally.rejected,
        errors: tally.errors,
        first_error: tally.first_error,
        throughput_per_s: (completed - tally.errors) as f64 / window,
        latency: Latency::of(&histogram),
        memory,
        startup_ms: Some(target.startup.as_secs_f64() * 1000.0),
        server_cpu_us_per_request: cpu_start
            .zip(cpu_end)
            .filter(|_| completed > 0)
            .map(|(start, end)| (end - start) * 1e6 / completed as f64),
        nats_server_cpu_us_per_request: None,
    })
}

/// Starts the target, runs the load, stops it.
pub async fn measure(target: GrpcTarget, servers: &Servers, load: &GrpcLoad) -> Result<RunReport> {
    let mut started = start(target, servers, load.connections).await?;
    let report = run(&mut started, target.name(), load).await;
    started.process.stop().await;
    report
}
