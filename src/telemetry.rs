//! Logs, traces and metrics. Logs and spans carry encounter ids, codes, status and reason codes,
//! never documentation text, patient or provider identifiers (HIPAA minimum necessary). Metric
//! names and labels are contract §7's.
//!
//! Traces and OTLP metrics follow the standard `OTEL_*` variables: they are on when an OTLP
//! endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the per-signal `…_TRACES_ENDPOINT` /
//! `…_METRICS_ENDPOINT`), unless `OTEL_SDK_DISABLED=true` or `OTEL_{TRACES,METRICS}_EXPORTER=none`.

pub mod metrics;
pub mod propagation;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use metrics::{Metrics, SourceLabels};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "{variable}={value} is not supported: claimlint exports OTLP over gRPC (set it to `grpc`, collector port 4317)"
    )]
    UnsupportedProtocol { variable: String, value: String },
    #[error("building the OTLP {signal} exporter: {message}")]
    Exporter {
        signal: &'static str,
        message: String,
    },
}

/// Which OpenTelemetry signals to export, read from the standard variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtelSignals {
    pub traces: bool,
    pub metrics: bool,
}

impl OtelSignals {
    /// Reads the `OTEL_*` variables through `var` (the process environment in production).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<OtelSignals, TelemetryError> {
        let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(OtelSignals {
                traces: false,
                metrics: false,
            });
        }
        let exporter_on = |name: &str| {
            var(name).is_none_or(|v| !v.split(',').any(|e| e.trim().eq_ignore_ascii_case("none")))
        };
        let signals = OtelSignals {
            traces: (set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
                && exporter_on("OTEL_TRACES_EXPORTER"),
            metrics: (set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
                && exporter_on("OTEL_METRICS_EXPORTER"),
        };
        for (signal, variable) in [
            (
                signals.traces || signals.metrics,
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ),
            (signals.traces, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            (signals.metrics, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"),
        ] {
            if let Some(value) = var(variable)
                && signal
                && !value.trim().eq_ignore_ascii_case("grpc")
            {
                return Err(TelemetryError::UnsupportedProtocol {
                    variable: variable.to_owned(),
                    value,
                });
            }
        }
        Ok(signals)
    }
}

/// The exporters of a running service; [`Telemetry::shutdown`] flushes them.
#[derive(Debug, Default)]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

impl Telemetry {
    pub fn tracing_enabled(&self) -> bool {
        self.tracer_provider.is_some()
    }

    /// Exports what is buffered and stops the exporters (blocking: call it off the async
    /// workers, with the runtime still running, since the exporter's client lives on it).
    pub fn shutdown(self, timeout: Duration) {
        // One deadline for both providers, so the exit waits at most `timeout` in all (the
        // deployments' stop grace periods count on it).
        let deadline = std::time::Instant::now() + timeout;
        if let Some(provider) = self.tracer_provider
            && let Err(error) = provider.shutdown_with_timeout(timeout)
        {
            tracing::warn!(%error, "flushing traces at shutdown failed");
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if let Some(provider) = self.meter_provider
            && let Err(error) = provider.shutdown_with_timeout(left)
        {
            tracing::warn!(%error, "flushing OTLP metrics at shutdown failed");
        }
    }
}

/// An error with its causes, `outer: inner: …`, for one log field.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Set when traces are exported. Transport spans then carry the OpenTelemetry conventions'
/// attributes (`otel.*`, `rpc.*`, `messaging.*`); without an exporter nobody reads them, and
/// the log layer would format them into every call's span (a few per cent of a call's CPU).
static TRACES_EXPORTED: AtomicBool = AtomicBool::new(false);

pub fn traces_exported() -> bool {
    TRACES_EXPORTED.load(Ordering::Relaxed)
}

fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// JSON unless stderr is a terminal or `CLAIMLINT_LOG_FORMAT=text`.
fn text_logs() -> bool {
    match std::env::var("CLAIMLINT_LOG_FORMAT").as_deref() {
        Ok("json") => false,
        Ok("text") => true,
        _ => std::io::stderr().is_terminal(),
    }
}

fn log_layer<S>(filter: tracing_subscriber::EnvFilter) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if text_logs() {
        layer.with_filter(filter).boxed()
    } else {
        layer.json().flatten_event(true).with_filter(filter).boxed()
    }
}

/// The subscriber without a trace exporter: the registry and the log layer alone.
fn log_only_subscriber(
    filter: tracing_subscriber::EnvFilter,
) -> impl tracing::Subscriber + Send + Sync + 'static {
    tracing_subscriber::registry().with(log_layer(filter))
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). For the one-shot verbs.
pub fn init_logging() {
    // A second initialisation (tests) keeps the first subscriber.
    let _ = log_only_subscriber(log_filter()).try_init();
}

/// The resource of every exported span and metric: `OTEL_SERVICE_NAME` /
/// `OTEL_RESOURCE_ATTRIBUTES` when given, else service.name `claimlint`.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if named {
        builder.build()
    } else {
        builder.with_service_name("claimlint").build()
    }
}

/// Logs plus, when configured, OTLP traces (spans of target `claimlint` at info and above,
/// whatever `RUST_LOG` says) and OTLP metrics. Call it inside the Tokio runtime: the gRPC
/// exporters' client lives there.
pub fn init_service() -> Result<Telemetry, TelemetryError> {
    let signals = OtelSignals::from_env(|name| std::env::var(name).ok())?;
    let mut telemetry = Telemetry::default();
    let resource = resource();
    if signals.traces {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter {
                signal: "traces",
                message: e.to_string(),
            })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.clone())
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        telemetry.tracer_provider = Some(provider);
        TRACES_EXPORTED.store(true, Ordering::Relaxed);
    }
    if signals.metrics {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter {
                signal: "metrics",
                message: e.to_string(),
            })?;
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).build())
            .with_resource(resource)
            .build();
        opentelemetry::global::set_meter_provider(provider.clone());
        telemetry.meter_provider = Some(provider);
    }
    let trace_layer = telemetry.tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("claimlint"))
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("claimlint", tracing::Level::INFO),
            )
    });
    // Not `.with(Option<Layer>)`: a `None` layer answers `Interest::always` for every
    // callsite, so the registry would create and close every span of every crate (h2's
    // per-frame trace spans included) for nobody: about a quarter of claimlint's CPU per gRPC call
    // (BENCHMARKS.md).
    let _ = match trace_layer {
        Some(trace_layer) => tracing_subscriber::registry()
            .with(log_layer(log_filter()))
            .with(trace_layer)
            .try_init(),
        None => log_only_subscriber(log_filter()).try_init(),
    };
    tracing::info!(
        traces = signals.traces,
        otlp_metrics = signals.metrics,
        "telemetry configured"
    );
    Ok(telemetry)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without an exporter, a span below the log level is never created: h2 opens trace spans
    /// per frame, and span machinery for nobody showed in the gRPC profile (BENCHMARKS.md).
    /// (The earlier `Option::None` composition passes this too in a test process: it guards
    /// the levels, it does not reproduce that profile.)
    #[test]
    fn without_a_trace_exporter_spans_below_the_log_level_are_not_created() {
        // The default level, whatever RUST_LOG the test runs with.
        let filter = tracing_subscriber::EnvFilter::new("info");
        let dispatch = tracing::Dispatch::new(log_only_subscriber(filter));
        tracing::dispatcher::with_default(&dispatch, || {
            let frame =
                tracing::trace_span!(target: "h2::codec::framed_read", "FramedRead::decode_frame");
            assert!(frame.is_disabled(), "h2's trace span was created");
            let debug = tracing::debug_span!(target: "claimlint::nats", "pull");
            assert!(
                debug.is_disabled(),
                "a debug span was created at the default level"
            );
            // claimlint's own spans at info stay: log lines take their context from them.
            let call =
                tracing::info_span!(target: "claimlint::grpc", "claimlint.v1.ClaimValidator");
            assert!(!call.is_disabled());
        });
    }

    fn signals(vars: &[(&str, &str)]) -> Result<OtelSignals, TelemetryError> {
        OtelSignals::from_env(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    const ENDPOINT: (&str, &str) = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");

    #[test]
    fn otel_is_configured_by_the_standard_variables() {
        let off = OtelSignals {
            traces: false,
            metrics: false,
        };
        let both = OtelSignals {
            traces: true,
            metrics: true,
        };
        let cases: &[(&[(&str, &str)], OtelSignals)] = &[
            (&[], off),
            (&[ENDPOINT], both),
            (&[ENDPOINT, ("OTEL_SDK_DISABLED", "true")], off),
            (&[ENDPOINT, ("OTEL_SDK_DISABLED", "false")], both),
            (
                &[ENDPOINT, ("OTEL_TRACES_EXPORTER", "none")],
                OtelSignals {
                    traces: false,
                    metrics: true,
                },
            ),
            (
                &[ENDPOINT, ("OTEL_METRICS_EXPORTER", "none")],
                OtelSignals {
                    traces: true,
                    metrics: false,
                },
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")],
                OtelSignals {
                    traces: true,
                    metrics: false,
                },
            ),
            (&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")], both),
            // A protocol for a signal that is off does not matter.
            (&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")], off),
        ];
        for (vars, expected) in cases {
            assert_eq!(signals(vars).unwrap(), *expected, "{vars:?}");
        }
    }

    #[test]
    fn an_unsupported_protocol_is_a_clear_error() {
        let error = signals(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
            "{error}"
        );
        assert!(error.contains("grpc"), "{error}");
    }
}
