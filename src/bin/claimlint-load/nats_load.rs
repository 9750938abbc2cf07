//! `nats` mode: a fresh JetStream nats-server per run, the pipeline under test as a child
//! (claimlint or the no-op baseline), N encounters published on `encounters.submitted` at an
//! offered rate or as fast as JetStream acknowledges them, and each outcome's latency taken
//! from the outcome stream: the time JetStream stored the outcome (its stream timestamp)
//! minus the time the encounter was due to be published.

use std::future::IntoFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use claimlint::config::NatsArgs;
use claimlint::nats::{INPUT_SUBJECT, STATUS_HEADER};
use clap::Parser;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::children::{self, Process};
use crate::grpc_load::Servers;
use crate::report::{self, Latency, Memory, RunReport};
use crate::visits;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NatsTarget {
    Claimlint,
    Noop,
}

impl NatsTarget {
    fn name(self) -> &'static str {
        match self {
            NatsTarget::Claimlint => "claimlint",
            NatsTarget::Noop => "noop",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct NatsLoad {
    /// Encounters to publish.
    #[arg(long, default_value_t = 20_000)]
    pub count: u64,
    /// The first encounters, not measured (connections, caches and the store warming up).
    #[arg(long, default_value_t = 1_000)]
    pub warmup_count: u64,
    /// Offered encounters per second; unset: as fast as JetStream acknowledges the publishes.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Publishes awaiting JetStream's acknowledgement at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// Give up waiting for outcomes after this long without one.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// nats-server to start (default: NATS_SERVER_BIN, else `nats-server` on the PATH).
    #[arg(long)]
    pub nats_server: Option<PathBuf>,
    /// Encounters of one patient on one day. 1: every encounter creates its own entry in the
    /// duplicate-service store. 2: the second visit of the day, with other codes, adds to the
    /// first's entry (an update, or a lost compare-and-set and a merge when both are in
    /// flight). 3 or more: the later ones repeat codes of an earlier visit (DUPLICATE_SERVICE
    /// when that one was recorded first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub visits_per_patient_day: u64,
}

fn unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The pipeline's defaults, as `claimlint serve` reads them (stream and consumer names).
fn pipeline_defaults() -> NatsArgs {
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        nats: NatsArgs,
    }
    Defaults::parse_from(["defaults"]).nats
}

struct Collected {
    histogram: hdrhistogram::Histogram<u64>,
    received: u64,
    validated: u64,
    rejected: u64,
    /// JetStream's store times of the measured outcomes (ns since the epoch).
    stored: Vec<i64>,
}

async fn collect(
    mut outcomes: consumer::push::Ordered,
    published_at: Arc<Vec<AtomicI64>>,
    warmup: u64,
    idle_timeout: Duration,
) -> Result<Collected> {
    let count = published_at.len();
    let mut seen = vec![false; count];
    let mut collected = Collected {
        histogram: report::new_histogram(),
        received: 0,
        validated: 0,
        rejected: 0,
        stored: Vec::with_capacity(count),
    };
    while (collected.received as usize) < count {
        let message = match tokio::time::timeout(idle_timeout, outcomes.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(Err(error))) => bail!("reading the outcome stream: {error}"),
            Ok(Some(Ok(message))) => message,
        };
        let headers = message.headers.as_ref();
        let index = headers
            .and_then(|h| h.get("Nats-Msg-Id"))
            .and_then(|id| visits::index_of(id.as_str().split(':').next().unwrap_or_default()))
            .map(|i| i as usize)
            .filter(|&i| i < count);
        let Some(index) = index else { continue };
        if std::mem::replace(&mut seen[index], true) {
            continue;
        }
        collected.received += 1;
        match headers
            .and_then(|h| h.get(STATUS_HEADER))
            .map(|v| v.as_str())
        {
            Some("validated") => collected.validated += 1,
            _ => collected.rejected += 1,
        }
        if (index as u64) < warmup {
            continue;
        }
        let stored = message
            .info()
            .map(|info| info.published.unix_timestamp_nanos() as i64)
            .map_err(|e| anyhow::anyhow!("an outcome without stream metadata: {e}"))?;
        let due = published_at[index].load(Ordering::Relaxed);
        collected
            .histogram
            .saturating_record(((stored - due).max(0) / 1_000) as u64);
        collected.stored.push(stored);
    }
    Ok(collected)
}

pub async fn measure(target: NatsTarget, servers: &Servers, load: &NatsLoad) -> Result<RunReport> {
    let dir = children::run_dir(&format!("nats-{}", target.name()))?;
    let nats_bin = children::nats_program(load.nats_server.as_deref());
    let (nats, url) = children::start_nats(&nats_bin, dir.path()).await?;
    let (program, args) = match target {
        NatsTarget::Claimlint => (
            servers.claimlint_bin.clone(),
            vec![
                "serve".to_owned(),
                "--grpc-addr".to_owned(),
                children::free_addr()?.to_string(),
                "--http-addr".to_owned(),
                children::free_addr()?.to_string(),
                "--nats-url".to_owned(),
                url.clone(),
            ],
        ),
        NatsTarget::Noop => (
            servers.load_bin.clone(),
            vec![
                "noop-pipeline".to_owned(),
                "--nats-url".to_owned(),
                url.clone(),
            ],
        ),
    };
    let mut pipeline = Process::spawn(target.name(), &program, &args, dir.path())?;
    let client = async_nats::connect(url.as_str())
        .await
        .context("connecting the load generator to NATS")?;
    let js = jetstream::new(client.clone());
    let names = pipeline_defaults();

    // Ready: the pipeline has made the streams and its durable consumer.
    let deadline = Instant::now() + Duration::from_secs(20);
    let claims = loop {
        if let (Ok(encounters), Ok(claims)) = (
            js.get_stream(&names.encounters_stream).await,
            js.get_stream(&names.claims_stream).await,
        ) && encounters.consumer_info(&names.consumer).await.is_ok()
        {
            break claims;
        }
        pipeline.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "{} did not set up JetStream within 20 s:\n{}",
                target.name(),
                pipeline.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let startup = pipeline.started.elapsed();
    let outcomes = claims
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            ..Default::default()
        })
        .await
        .context("creating an ordered consumer on the outcome stream")?
        .messages()
        .await
        .context("reading the outcome stream")?;

    let run_visits = visits::RunVisits::new(load.visits_per_patient_day)?;
    let run = format!("{}{}", target.name(), std::process::id());
    let mut payloads = Vec::with_capacity(load.count as usize);
    for index in 0..load.count {
        let visit = run_visits.encounter(&run, index);
        payloads.push((
            visit.encounter_id.clone(),
            Bytes::from(serde_json::to_vec(&visit)?),
        ));
    }
    let published_at: Arc<Vec<AtomicI64>> =
        Arc::new((0..load.count).map(|_| AtomicI64::new(0)).collect());
    let collector = tokio::spawn(collect(
        outcomes,
        published_at.clone(),
        load.warmup_count,
        load.idle_timeout,
    ));

    let (cpu_start, nats_cpu_start) = (pipeline.cpu_seconds(), nats.cpu_seconds());
    let (begin, begin_unix) = (Instant::now(), unix_nanos());
    let mut acks = FuturesUnordered::new();
    let (mut publish_errors, mut first_error) = (0u64, None::<String>);
    for (index, (encounter_id, payload)) in payloads.into_iter().enumerate() {
        let due = match load.rate {
            Some(rate) => {
                let offset = Duration::from_secs_f64(index as f64 / rate);
                tokio::time::sleep_until((begin + offset).into()).await;
                begin_unix + offset.as_nanos() as i64
            }
            None => unix_nanos(),
        };
        published_at[index].store(due, Ordering::Relaxed);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", encounter_id.as_str());
        headers.insert("Content-Type", "application/json");
        match js
            .publish_with_headers(INPUT_SUBJECT, headers, payload)
            .await
        {
            Ok(ack) => acks.push(ack.into_future()),
            Err(error) => {
                publish_errors += 1;
                first_error.get_or_insert_with(|| format!("publish: {error}"));
            }
        }
        while acks.len() >= load.in_flight.max(1) {
            if let Some(Err(error)) = acks.next().await {
                publish_errors += 1;
                first_error.get_or_insert_with(|| format!("publish ack: {error}"));
            }
        }
    }
    while let Some(ack) = acks.next().await {
        if let Err(error) = ack {
            publish_errors += 1;
            first_error.get_or_insert_with(|| format!("publish ack: {error}"));
        }
    }
    let collected = collector.await.context("the outcome reader")??;
    let (cpu_end, nats_cpu_end) = (pipeline.cpu_seconds(), nats.cpu_seconds());
    let memory = Memory {
        peak_rss_kib: pipeline.peak_rss_kib(),
        rss_end_kib: pipeline.rss_kib(),
        ..Memory::default()
    };
    pipeline.check_alive()?;
    pipeline.stop().await;
    nats.stop().await;

    let missing = load.count - collected.received;
    if missing > 0 {
        first_error.get_or_insert_with(|| {
            format!(
                "{missing} outcomes not seen within {:?} of the last",
                load.idle_timeout
            )
        });
    }
    let window = match (collected.stored.iter().min(), collected.stored.iter().max()) {
        (Some(first), Some(last)) if last > first => (last - first) as f64 / 1e9,
        _ => 0.0,
    };
    let measured = collected.stored.len() as u64;
    let per_encounter = |cpu: Option<(f64, f64)>| {
        cpu.filter(|_| collected.received > 0)
            .map(|(start, end)| (end - start) * 1e6 / collected.received as f64)
    };
    Ok(RunReport {
        target: target.name().to_owned(),
        mode: "nats".to_owned(),
        connections: None,
        concurrency: names.concurrency,
        visits_per_patient_day: Some(load.visits_per_patient_day),
        offered_rate: load.rate,
        measured_seconds: window,
        completed: collected.received,
        validated: collected.validated,
        rejected: collected.rejected,
        errors: publish_errors + missing,
        first_error,
        throughput_per_s: if window > 0.0 {
            measured.saturating_sub(1) as f64 / window
        } else {
            0.0
        },
        latency: Latency::of(&collected.histogram),
        memory,
        startup_ms: Some(startup.as_secs_f64() * 1000.0),
        // Over every encounter of the run (the warm-up ones too: the CPU clock cannot tell them apart).
        server_cpu_us_per_request: per_encounter(cpu_start.zip(cpu_end)),
        nats_server_cpu_us_per_request: per_encounter(nats_cpu_start.zip(nats_cpu_end)),
    })
}
