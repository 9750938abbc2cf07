//! Logs and metrics. Logs carry encounter ids, codes, status and reason codes, never note text
//! or patient identifiers. Metric names and labels are contract §7's.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::proto::v1 as pb;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); JSON unless stderr is a terminal
/// or `CLAIMLINT_LOG_FORMAT=text`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let text = match std::env::var("CLAIMLINT_LOG_FORMAT").as_deref() {
        Ok("json") => false,
        Ok("text") => true,
        _ => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if text {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}

/// Where an encounter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EncounterLabels {
    source: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    code: String,
    severity: &'static str,
    payer_kind: &'static str,
}

/// The contract's metrics, registered once per process (or per test server).
pub struct Metrics {
    registry: Mutex<Registry>,
    encounters: Family<EncounterLabels, Counter>,
    reasons: Family<ReasonLabels, Counter>,
    duration: Family<SourceLabels, Histogram>,
    pub nats_redeliveries: Counter,
    pub dead_letters: Counter,
    pub nats_consumer_pending: prometheus_client::metrics::gauge::Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn payer_kind(encounter: &pb::Encounter) -> &'static str {
    match encounter
        .payer
        .as_ref()
        .map(|p| pb::PayerKind::try_from(p.kind))
    {
        Some(Ok(pb::PayerKind::Medicare)) => "medicare",
        Some(Ok(pb::PayerKind::Medicaid)) => "medicaid",
        Some(Ok(pb::PayerKind::Commercial)) => "commercial",
        _ => "unspecified",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let encounters = Family::<EncounterLabels, Counter>::default();
        let reasons = Family::<ReasonLabels, Counter>::default();
        // 10 µs to ~20 s: validation is microseconds, a NATS round trip milliseconds.
        let duration = Family::<SourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.000_01, 2.0, 22,
            ))
        });
        let mut registry = Registry::default();
        registry.register(
            "claimlint_encounters",
            "Encounters judged, by source and status",
            encounters.clone(),
        );
        registry.register(
            "claimlint_reasons",
            "Reasons found, by code, severity and payer kind",
            reasons.clone(),
        );
        registry.register(
            "claimlint_validation_duration_seconds",
            "Time to decode, validate and encode one encounter",
            duration.clone(),
        );
        let nats_redeliveries = Counter::default();
        let dead_letters = Counter::default();
        let nats_consumer_pending = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "claimlint_nats_redeliveries",
            "Encounter messages delivered more than once",
            nats_redeliveries.clone(),
        );
        registry.register(
            "claimlint_dead_letters",
            "Messages sent to the dead-letter stream",
            dead_letters.clone(),
        );
        registry.register(
            "claimlint_nats_consumer_pending",
            "Messages of the input stream not yet delivered to the consumer",
            nats_consumer_pending.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            encounters,
            reasons,
            duration,
            nats_redeliveries,
            dead_letters,
            nats_consumer_pending,
        }
    }

    /// Counts one judged encounter (dry runs included).
    pub fn record(
        &self,
        source: &'static str,
        encounter: &pb::Encounter,
        outcome: &pb::Outcome,
        elapsed: Duration,
    ) {
        let status = if outcome.status == pb::Status::Rejected as i32 {
            "rejected"
        } else {
            "validated"
        };
        self.encounters
            .get_or_create(&EncounterLabels { source, status })
            .inc();
        let kind = payer_kind(encounter);
        for reason in &outcome.reasons {
            let severity = if reason.severity == pb::Severity::Error as i32 {
                "error"
            } else {
                "warning"
            };
            self.reasons
                .get_or_create(&ReasonLabels {
                    code: reason.code.clone(),
                    severity,
                    payer_kind: kind,
                })
                .inc();
        }
        self.duration
            .get_or_create(&SourceLabels { source })
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        }
        text
    }
}
