//! The contract's metrics (§7) in three views that move together: the Prometheus registry
//! behind `/metrics`, OpenTelemetry instruments (exported over OTLP when configured, no-ops
//! otherwise) and the running totals behind `/dashboard`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::core::data::RuleSet;
use crate::proto::v1 as pb;

/// Upper bounds of the latency histogram: 10 µs doubling to ~21 s (validation takes
/// microseconds, a NATS round trip milliseconds, a stuck publish seconds).
pub fn latency_bounds() -> Vec<f64> {
    (0..22).map(|i| 0.000_01 * f64::from(1u32 << i)).collect()
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
    code: ReasonCodeLabel,
    severity: &'static str,
    payer_kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RuleLabels {
    code: String,
    carc: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RulesetLabels {
    version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

/// A reason code as a label: the catalogue's own `&'static str` (no allocation per reason on
/// the hot path); a code the catalogue does not know (none is emitted) is kept as it came.
pub type ReasonCodeLabel = std::borrow::Cow<'static, str>;

fn code_label(code: &str) -> ReasonCodeLabel {
    crate::core::reason::ReasonCode::parse(code).map_or_else(
        || ReasonCodeLabel::Owned(code.to_owned()),
        |known| ReasonCodeLabel::Borrowed(known.as_str()),
    )
}

/// Latency observations of one source: a count per bucket of [`latency_bounds`] plus one
/// for everything above the last bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyCounts {
    pub per_bucket: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl LatencyCounts {
    fn observe(&mut self, bounds: &[f64], seconds: f64) {
        if self.per_bucket.is_empty() {
            self.per_bucket = vec![0; bounds.len() + 1];
        }
        let bucket = bounds.partition_point(|bound| *bound < seconds);
        self.per_bucket[bucket] += 1;
        self.sum_seconds += seconds;
        self.count += 1;
    }
}

/// Running totals since start, for the dashboard (which turns two of them into rates).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// (source, status) → encounters.
    pub encounters: BTreeMap<(&'static str, &'static str), u64>,
    /// (code, severity, payer kind) → reasons.
    pub reasons: BTreeMap<(ReasonCodeLabel, &'static str, &'static str), u64>,
    /// source → latency.
    pub latency: BTreeMap<&'static str, LatencyCounts>,
    pub redeliveries: u64,
    pub dead_letters: u64,
    pub consumer_pending: u64,
}

/// A copy of the totals and when it was taken.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub totals: Totals,
}

/// How much history the dashboard keeps (rates and the sparkline).
const HISTORY: Duration = Duration::from_secs(300);

struct OtelInstruments {
    encounters: opentelemetry::metrics::Counter<u64>,
    reasons: opentelemetry::metrics::Counter<u64>,
    duration: opentelemetry::metrics::Histogram<f64>,
    redeliveries: opentelemetry::metrics::Counter<u64>,
    dead_letters: opentelemetry::metrics::Counter<u64>,
    pending: opentelemetry::metrics::Gauge<u64>,
}

impl OtelInstruments {
    /// From the global meter provider: OTLP when configured, else no-ops. Names are OTel
    /// style; a collector's Prometheus exporter turns them into contract §7's names.
    fn new() -> OtelInstruments {
        let meter = opentelemetry::global::meter("claimlint");
        OtelInstruments {
            encounters: meter
                .u64_counter("claimlint.encounters")
                .with_description("Encounters judged, by source and status")
                .build(),
            reasons: meter
                .u64_counter("claimlint.reasons")
                .with_description("Reasons found, by code, severity and payer kind")
                .build(),
            duration: meter
                .f64_histogram("claimlint.validation.duration")
                .with_unit("s")
                .with_description("Time to decode, validate and encode one encounter")
                .with_boundaries(latency_bounds())
                .build(),
            redeliveries: meter
                .u64_counter("claimlint.nats.redeliveries")
                .with_description("Encounter messages delivered more than once")
                .build(),
            dead_letters: meter
                .u64_counter("claimlint.dead_letters")
                .with_description("Messages sent to the dead-letter stream")
                .build(),
            pending: meter
                .u64_gauge("claimlint.nats.consumer_pending")
                .with_description("Messages of the input stream not yet delivered to the consumer")
                .build(),
        }
    }
}

/// The contract's metrics, registered once per process (or per test server).
pub struct Metrics {
    registry: Registry,
    encounters: Family<EncounterLabels, Counter>,
    reasons: Family<ReasonLabels, Counter>,
    duration: Family<SourceLabels, Histogram>,
    redeliveries: Counter,
    dead_letters: Counter,
    consumer_pending: Gauge,
    rules: Family<RuleLabels, Gauge>,
    ruleset: Family<RulesetLabels, Gauge>,
    reloads: Family<ReloadLabels, Counter>,
    otel: OtelInstruments,
    bounds: Vec<f64>,
    totals: Mutex<Totals>,
    history: Mutex<VecDeque<Sample>>,
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

/// The `payer_kind` label of an encounter.
pub fn payer_kind(encounter: &pb::Encounter) -> &'static str {
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

pub fn status_label(outcome: &pb::Outcome) -> &'static str {
    if outcome.status == pb::Status::Rejected as i32 {
        "rejected"
    } else {
        "validated"
    }
}

fn severity_label(reason: &pb::Reason) -> &'static str {
    if reason.severity == pb::Severity::Error as i32 {
        "error"
    } else {
        "warning"
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let bounds = latency_bounds();
        let encounters = Family::<EncounterLabels, Counter>::default();
        let reasons = Family::<ReasonLabels, Counter>::default();
        let duration = Family::<SourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_bounds())
        });
        let redeliveries = Counter::default();
        let dead_letters = Counter::default();
        let consumer_pending = Gauge::default();
        let rules = Family::<RuleLabels, Gauge>::default();
        let ruleset = Family::<RulesetLabels, Gauge>::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
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
        registry.register(
            "claimlint_nats_redeliveries",
            "Encounter messages delivered more than once",
            redeliveries.clone(),
        );
        registry.register(
            "claimlint_dead_letters",
            "Messages sent to the dead-letter stream",
            dead_letters.clone(),
        );
        registry.register(
            "claimlint_nats_consumer_pending",
            "Messages of the input stream not yet delivered to the consumer",
            consumer_pending.clone(),
        );
        registry.register(
            "claimlint_rule_info",
            "One series per rule of the loaded catalogue, labelled with its CARC (for joins)",
            rules.clone(),
        );
        registry.register(
            "claimlint_ruleset_info",
            "The rule data version in force",
            ruleset.clone(),
        );
        registry.register(
            "claimlint_rules_reloads",
            "Rule data reloads, by result (loaded, refused)",
            reloads.clone(),
        );
        Metrics {
            registry,
            encounters,
            reasons,
            duration,
            redeliveries,
            dead_letters,
            consumer_pending,
            rules,
            ruleset,
            reloads,
            otel: OtelInstruments::new(),
            bounds,
            totals: Mutex::new(Totals::default()),
            history: Mutex::new(VecDeque::new()),
        }
    }

    /// Publishes the catalogue (code → CARC) and the version of the rules in force.
    pub fn set_rules(&self, rules: &RuleSet) {
        self.rules.clear();
        for entry in rules.catalogue().entries() {
            self.rules
                .get_or_create(&RuleLabels {
                    code: entry.code.as_str().to_owned(),
                    carc: entry.carc.clone(),
                })
                .set(1);
        }
        self.ruleset.clear();
        self.ruleset
            .get_or_create(&RulesetLabels {
                version: rules.version(),
            })
            .set(1);
    }

    /// Counts a rule data reload: `loaded` or `refused`.
    pub fn rules_reloaded(&self, result: &'static str) {
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    /// Counts one judged encounter (dry runs included).
    pub fn record(
        &self,
        source: &'static str,
        encounter: &pb::Encounter,
        outcome: &pb::Outcome,
        elapsed: Duration,
    ) {
        let status = status_label(outcome);
        let kind = payer_kind(encounter);
        let seconds = elapsed.as_secs_f64();
        self.encounters
            .get_or_create(&EncounterLabels { source, status })
            .inc();
        self.otel.encounters.add(
            1,
            &[
                KeyValue::new("source", source),
                KeyValue::new("status", status),
            ],
        );
        for reason in &outcome.reasons {
            let (code, severity) = (code_label(&reason.code), severity_label(reason));
            self.reasons
                .get_or_create(&ReasonLabels {
                    code: code.clone(),
                    severity,
                    payer_kind: kind,
                })
                .inc();
            self.otel.reasons.add(
                1,
                &[
                    KeyValue::new("code", code),
                    KeyValue::new("severity", severity),
                    KeyValue::new("payer_kind", kind),
                ],
            );
        }
        self.duration
            .get_or_create(&SourceLabels { source })
            .observe(seconds);
        self.otel
            .duration
            .record(seconds, &[KeyValue::new("source", source)]);
        if let Ok(mut totals) = self.totals.lock() {
            *totals.encounters.entry((source, status)).or_default() += 1;
            for reason in &outcome.reasons {
                let key = (code_label(&reason.code), severity_label(reason), kind);
                *totals.reasons.entry(key).or_default() += 1;
            }
            totals
                .latency
                .entry(source)
                .or_default()
                .observe(&self.bounds, seconds);
        }
    }

    /// A message of the input stream arrived for another time.
    pub fn redelivered(&self) {
        self.redeliveries.inc();
        self.otel.redeliveries.add(1, &[]);
        if let Ok(mut totals) = self.totals.lock() {
            totals.redeliveries += 1;
        }
    }

    /// A message went to the dead-letter stream.
    pub fn dead_lettered(&self) {
        self.dead_letters.inc();
        self.otel.dead_letters.add(1, &[]);
        if let Ok(mut totals) = self.totals.lock() {
            totals.dead_letters += 1;
        }
    }

    pub fn set_consumer_pending(&self, pending: u64) {
        self.consumer_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.otel.pending.record(pending, &[]);
        if let Ok(mut totals) = self.totals.lock() {
            totals.consumer_pending = pending;
        }
    }

    pub fn latency_bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The totals now.
    pub fn totals(&self) -> Totals {
        self.totals.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Keeps a copy of the totals for rates (called every few seconds), dropping what is
    /// older than the history kept.
    pub fn sample(&self, now: Instant) {
        let totals = self.totals();
        if let Ok(mut history) = self.history.lock() {
            history.push_back(Sample { at: now, totals });
            while history
                .front()
                .is_some_and(|oldest| now.duration_since(oldest.at) > HISTORY)
            {
                history.pop_front();
            }
        }
    }

    /// The samples kept, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        self.history
            .lock()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_resolve_microseconds_to_seconds() {
        let bounds = latency_bounds();
        assert_eq!(bounds.len(), 22);
        assert!((bounds[0] - 0.000_01).abs() < 1e-12);
        assert!(bounds[21] > 20.0 && bounds[21] < 21.0);
        let mut counts = LatencyCounts::default();
        // On a bound counts in that bucket (Prometheus `le`), above the last in the extra one.
        for seconds in [0.000_005, 0.000_01, 0.000_015, 30.0] {
            counts.observe(&bounds, seconds);
        }
        assert_eq!(counts.per_bucket[0], 2);
        assert_eq!(counts.per_bucket[1], 1);
        assert_eq!(counts.per_bucket[22], 1);
        assert_eq!(counts.count, 4);
    }

    fn outcome(status: pb::Status, reasons: &[(&str, pb::Severity)]) -> pb::Outcome {
        pb::Outcome {
            status: status as i32,
            reasons: reasons
                .iter()
                .map(|(code, severity)| pb::Reason {
                    code: (*code).to_owned(),
                    severity: *severity as i32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn every_view_moves_together() {
        let metrics = Metrics::new();
        let medicare = pb::Encounter {
            payer: Some(pb::Payer {
                kind: pb::PayerKind::Medicare as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        metrics.record(
            "grpc",
            &medicare,
            &outcome(pb::Status::Validated, &[]),
            Duration::from_micros(20),
        );
        metrics.record(
            "nats",
            &medicare,
            &outcome(
                pb::Status::Rejected,
                &[
                    ("MISSING_DIAGNOSIS", pb::Severity::Error),
                    ("KX_THRESHOLD_APPROACHING", pb::Severity::Warning),
                ],
            ),
            Duration::from_millis(3),
        );
        metrics.redelivered();
        metrics.dead_lettered();
        metrics.set_consumer_pending(7);
        let text = metrics.encode();
        for line in [
            "claimlint_encounters_total{source=\"grpc\",status=\"validated\"} 1",
            "claimlint_encounters_total{source=\"nats\",status=\"rejected\"} 1",
            "claimlint_reasons_total{code=\"MISSING_DIAGNOSIS\",severity=\"error\",payer_kind=\"medicare\"} 1",
            "claimlint_validation_duration_seconds_count{source=\"nats\"} 1",
            "claimlint_nats_redeliveries_total 1",
            "claimlint_dead_letters_total 1",
            "claimlint_nats_consumer_pending 7",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        let totals = metrics.totals();
        assert_eq!(totals.encounters[&("nats", "rejected")], 1);
        assert_eq!(
            totals.reasons[&(
                ReasonCodeLabel::from("MISSING_DIAGNOSIS"),
                "error",
                "medicare"
            )],
            1
        );
        assert_eq!(totals.latency["grpc"].count, 1);
        assert_eq!(
            (
                totals.redeliveries,
                totals.dead_letters,
                totals.consumer_pending
            ),
            (1, 1, 7)
        );
    }

    #[test]
    fn rule_info_names_each_rule_with_its_carc_and_the_version() {
        let metrics = Metrics::new();
        let rules = crate::core::test_support::rules();
        metrics.set_rules(rules);
        metrics.set_rules(rules);
        let text = metrics.encode();
        let entry = &rules.catalogue().entries()[0];
        assert!(text.contains(&format!(
            "claimlint_rule_info{{code=\"{}\",carc=\"{}\"}} 1",
            entry.code.as_str(),
            entry.carc
        )));
        let versions = text
            .lines()
            .filter(|l| l.starts_with("claimlint_ruleset_info{"))
            .count();
        assert_eq!(versions, 1, "{text}");
    }

    #[test]
    fn history_keeps_five_minutes() {
        let metrics = Metrics::new();
        let start = Instant::now();
        for second in (0..=400).step_by(5) {
            metrics.sample(start + Duration::from_secs(second));
        }
        let history = metrics.history();
        let span = history.last().unwrap().at - history[0].at;
        assert!(span <= HISTORY && span >= HISTORY - Duration::from_secs(5));
    }
}
