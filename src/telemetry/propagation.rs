//! W3C trace context across the transports: taken from gRPC metadata and NATS headers, written
//! into the outcome's NATS headers, so one trace runs producer → claimlint → consumer.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";

struct NatsHeaders<'a>(&'a HeaderMap);

impl Extractor for NatsHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

struct NatsHeadersMut<'a>(&'a mut HeaderMap);

impl Injector for NatsHeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HttpHeaders<'a>(&'a http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

fn set_parent(span: &tracing::Span, extractor: &dyn Extractor) {
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(extractor));
    if parent.span().span_context().is_valid() {
        // Fails only when tracing is off for this span; then there is nothing to link.
        let _ = span.set_parent(parent);
    }
}

/// Makes `span` a child of the trace context carried by a NATS message, if any.
pub fn set_parent_from_nats(span: &tracing::Span, headers: Option<&HeaderMap>) {
    if let Some(headers) = headers {
        set_parent(span, &NatsHeaders(headers));
    }
}

/// Makes `span` a child of the trace context carried by a gRPC call's metadata, if any.
pub fn set_parent_from_grpc(span: &tracing::Span, metadata: &tonic::metadata::MetadataMap) {
    set_parent(span, &HttpHeaders(metadata.as_ref()));
}

/// Writes the trace context for an outgoing message: the current span's when tracing is on,
/// else the incoming `traceparent` as it came (the trace still links producer and consumer).
pub fn write_trace_context(outgoing: &mut HeaderMap, incoming: Option<&HeaderMap>) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut NatsHeadersMut(outgoing));
        });
    } else if let Some(incoming) = incoming {
        for name in [TRACEPARENT, "tracestate"] {
            if let Some(value) = incoming.get(name) {
                outgoing.insert(name, value.clone());
            }
        }
    }
}

/// The `traceparent` (and `tracestate`) of a gRPC call as NATS headers, for
/// [`write_trace_context`]'s pass-through.
pub fn incoming_from_grpc(metadata: &tonic::metadata::MetadataMap) -> Option<HeaderMap> {
    let traceparent = metadata.get(TRACEPARENT)?.to_str().ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(TRACEPARENT, traceparent);
    if let Some(state) = metadata.get("tracestate").and_then(|v| v.to_str().ok()) {
        headers.insert("tracestate", state);
    }
    Some(headers)
}
