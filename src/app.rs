//! What every transport shares: the rule data in force (swappable), metrics, readiness.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use chrono::Utc;

use crate::core::data::RuleSet;
use crate::proto::v1 as pb;
use crate::telemetry::Metrics;
use crate::telemetry::metrics;
use crate::wire::{self, EncounterError};

/// An outcome's reason codes, comma-separated, for logs and spans.
struct ReasonCodes<'a>(&'a [pb::Reason]);

impl std::fmt::Display for ReasonCodes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, reason) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            f.write_str(&reason.code)?;
        }
        Ok(())
    }
}

/// An outcome not yet counted in the metrics, and how long its validation took.
#[derive(Debug)]
pub struct Judged {
    pub outcome: pb::Outcome,
    elapsed: std::time::Duration,
}

#[derive(Debug)]
pub struct App {
    rules: ArcSwap<RuleSet>,
    pub metrics: Metrics,
    shutting_down: AtomicBool,
    /// Set when NATS is configured; the pipeline appears once connected and set up.
    nats_configured: bool,
    pipeline: std::sync::OnceLock<Arc<crate::nats::Pipeline>>,
}

impl App {
    pub fn new(rules: RuleSet, nats_configured: bool) -> App {
        let metrics = Metrics::new();
        metrics.set_rules(&rules);
        App {
            rules: ArcSwap::from_pointee(rules),
            metrics,
            shutting_down: AtomicBool::new(false),
            nats_configured,
            pipeline: std::sync::OnceLock::new(),
        }
    }

    pub fn nats_configured(&self) -> bool {
        self.nats_configured
    }

    /// The NATS pipeline, once connected and set up.
    pub fn pipeline(&self) -> Option<&Arc<crate::nats::Pipeline>> {
        self.pipeline.get()
    }

    pub fn set_pipeline(&self, pipeline: Arc<crate::nats::Pipeline>) {
        let _ = self.pipeline.set(pipeline);
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.load_full()
    }

    /// Puts new rule data in force atomically: calls in flight finish with the data they
    /// started with, later ones get the new. Returns (old version, new version).
    pub fn replace_rules(&self, rules: RuleSet) -> (String, String) {
        let new_version = rules.version();
        self.metrics.set_rules(&rules);
        let old = self.rules.swap(Arc::new(rules));
        (old.version(), new_version)
    }

    /// Validates one wire encounter as of today (UTC) and records it.
    pub fn check(
        &self,
        encounter: &pb::Encounter,
        source: &'static str,
    ) -> Result<pb::Outcome, EncounterError> {
        self.check_with_prior(encounter, source, &[])
    }

    /// [`App::check`] with the services other encounters already had validated.
    pub fn check_with_prior(
        &self,
        encounter: &pb::Encounter,
        source: &'static str,
        prior: &[crate::core::PriorService],
    ) -> Result<pb::Outcome, EncounterError> {
        let judged = self.judge_with_prior(encounter, source, prior)?;
        Ok(self.count(encounter, source, judged))
    }

    /// Validates without counting the validation in the metrics: a caller that may judge the
    /// same encounter again (the duplicate-service store changed under it) counts only the
    /// judgement it keeps, with [`App::count`].
    pub fn judge_with_prior(
        &self,
        encounter: &pb::Encounter,
        source: &'static str,
        prior: &[crate::core::PriorService],
    ) -> Result<Judged, EncounterError> {
        // One span per validation; its parent is the transport's span (and through it the
        // caller's trace). Identifiers other than encounter_id and all free text stay out.
        // No log line at info or above is written inside it, so without a trace exporter it is
        // a debug span: at the default log level it is not created (the log layer would
        // format its fields on every call for nobody).
        // (A span's level is part of its static callsite, hence one macro call per level.)
        macro_rules! validate_span {
            ($level:expr) => {
                tracing::span!(
                    $level,
                    "validate",
                    encounter_id = %encounter.encounter_id,
                    source,
                    payer_kind = metrics::payer_kind(encounter),
                    status = tracing::field::Empty,
                    reason_codes = tracing::field::Empty,
                )
            };
        }
        let span = if crate::telemetry::traces_exported() {
            validate_span!(tracing::Level::INFO)
        } else {
            validate_span!(tracing::Level::DEBUG)
        };
        let _entered = span.enter();
        let started = Instant::now();
        let rules = self.rules.load();
        let now = Utc::now();
        let outcome =
            wire::check_encounter_with_prior(encounter, &rules, now.date_naive(), now, prior)?;
        let elapsed = started.elapsed();
        let status = metrics::status_label(&outcome);
        // Formatted only by a subscriber that wants the field: nothing is built per call.
        let codes = ReasonCodes(&outcome.reasons);
        span.record("status", status);
        span.record("reason_codes", tracing::field::display(&codes));
        tracing::debug!(
            encounter_id = %outcome.encounter_id,
            source,
            status,
            reasons = %codes,
            "validated encounter"
        );
        Ok(Judged { outcome, elapsed })
    }

    /// Counts a judgement in the metrics, once.
    pub fn count(
        &self,
        encounter: &pb::Encounter,
        source: &'static str,
        judged: Judged,
    ) -> pb::Outcome {
        self.metrics
            .record(source, encounter, &judged.outcome, judged.elapsed);
        judged.outcome
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Rules loaded (an `App` has them), not shutting down, and NATS connected and set up when
    /// configured: a publishing call could not succeed otherwise.
    pub fn readiness(&self) -> Readiness {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Readiness::ShuttingDown;
        }
        if !self.nats_configured {
            return Readiness::Ready;
        }
        match self.pipeline.get() {
            None => Readiness::NatsNotSetUp,
            Some(pipeline) if !pipeline.connected() => Readiness::NatsDisconnected,
            Some(_) => Readiness::Ready,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.readiness() == Readiness::Ready
    }
}

/// Whether the service takes traffic, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    ShuttingDown,
    /// Configured, not yet connected and set up (streams, consumer, bucket).
    NatsNotSetUp,
    /// Set up, and the connection is lost (the client reconnects on its own).
    NatsDisconnected,
}

impl Readiness {
    /// For `/readyz` and logs.
    pub fn describe(self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::ShuttingDown => "shutting down",
            Readiness::NatsNotSetUp => "NATS not connected and set up yet",
            Readiness::NatsDisconnected => "NATS connection lost; reconnecting",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Records the name of every span its subscriber creates and the level of every event.
    #[derive(Clone, Default)]
    struct Recorded {
        spans: Arc<Mutex<Vec<&'static str>>>,
        event_levels: Arc<Mutex<Vec<tracing::Level>>>,
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorded {
        fn on_new_span(
            &self,
            attributes: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if let Ok(mut names) = self.spans.lock() {
                names.push(attributes.metadata().name());
            }
        }

        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if let Ok(mut levels) = self.event_levels.lock() {
                levels.push(*event.metadata().level());
            }
        }
    }

    /// What checking `visits` records at a log level, without an exporter.
    fn record_checks(level: &str, visits: &[pb::Encounter]) -> Recorded {
        let recorded = Recorded::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new(level))
            .with(recorded.clone());
        let app = App::new(crate::rules_source::load_rules(None).unwrap(), false);
        tracing::subscriber::with_default(subscriber, || {
            for visit in visits {
                // Refusals are cases here too; `validation_logs_nothing_at_info` checks them.
                let _ = app.check(visit, "grpc");
            }
        });
        recorded
    }

    /// The spans one validation of the seed visit creates at a log level, without an exporter.
    fn spans_of_one_check(level: &str) -> Vec<&'static str> {
        let recorded = record_checks(level, &[crate::core::test_support::seed_visit_wire()]);
        recorded.spans.lock().unwrap().clone()
    }

    /// The premise of the debug-level validate span: a validation logs nothing at info or
    /// above (such a line would lose its span context without a trace exporter). A clean
    /// visit, a rejected one and one that cannot be validated at all.
    #[test]
    fn validation_logs_nothing_at_info() {
        let clean = crate::core::test_support::recent_seed_visit_wire();
        let mut rejected = clean.clone();
        rejected.service_lines[1].units = 9;
        rejected.diagnosis_codes.push("NOT-A-CODE".into());
        let mut no_id = clean.clone();
        no_id.encounter_id.clear();
        // Each case is what it is meant to be (checked outside the recorder).
        let app = App::new(crate::rules_source::load_rules(None).unwrap(), false);
        let status = |visit: &pb::Encounter| app.check(visit, "grpc").map(|o| o.status);
        assert_eq!(status(&clean), Ok(pb::Status::Validated as i32));
        assert_eq!(status(&rejected), Ok(pb::Status::Rejected as i32));
        assert!(status(&no_id).is_err());
        let recorded = record_checks("info", &[clean.clone(), rejected, no_id]);
        assert_eq!(
            *recorded.event_levels.lock().unwrap(),
            Vec::<tracing::Level>::new()
        );
        // The recorder does see events that are logged (the debug summary line).
        let recorded = record_checks("debug", &[clean]);
        assert_eq!(
            *recorded.event_levels.lock().unwrap(),
            [tracing::Level::DEBUG]
        );
    }

    /// The validate span costs a few per cent of a gRPC call when the log layer formats it;
    /// at the default level, without a trace exporter, nothing reads it.
    #[test]
    fn validation_opens_its_span_only_for_debug_logs_without_a_trace_exporter() {
        assert!(!crate::telemetry::traces_exported());
        assert_eq!(spans_of_one_check("info"), Vec::<&str>::new());
        assert_eq!(spans_of_one_check("debug"), ["validate"]);
    }
}
