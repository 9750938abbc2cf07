//! The consume loop: pull in batches, judge with bounded concurrency, publish, then ack; dead
//! letters for what is not an encounter or runs out of deliveries. On stop: no more pulls,
//! in-flight messages finished and acknowledged, the connection flushed.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{AckKind, Message, consumer::PullConsumer};
use futures_util::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{DEAD_SUBJECT, ERROR_HEADER, Pipeline, decode};
use crate::app::App;
use crate::config::NatsArgs;
use crate::telemetry::propagation;
use tracing::Instrument;

/// Runs until `stop` turns true, then drains what is in flight (the caller bounds the wait).
pub async fn run_consumer(
    app: Arc<App>,
    pipeline: Arc<Pipeline>,
    consumer: PullConsumer,
    args: NatsArgs,
    mut stop: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = JoinSet::new();
    let mut current = None;
    'pulling: while !*stop.borrow() {
        let messages = match consumer
            .stream()
            .max_messages_per_batch(args.batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot pull from the consumer; retrying");
                tokio::select! {
                    _ = stop.changed() => break 'pulling,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'pulling,
                }
            }
        };
        let messages = current.insert(messages);
        loop {
            // Wait for a processing slot before taking a message, so nothing is held unacked
            // without being worked on.
            let permit = tokio::select! {
                _ = stop.changed() => break 'pulling,
                permit = limit.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break 'pulling },
            };
            let next = tokio::select! {
                _ = stop.changed() => break 'pulling,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    let (app, pipeline, max_deliver) =
                        (app.clone(), pipeline.clone(), args.max_deliver);
                    let span = if crate::telemetry::traces_exported() {
                        tracing::info_span!(
                            "process",
                            otel.name = %format_args!("process {}", message.subject),
                            otel.kind = "consumer",
                            messaging.system = "nats",
                            messaging.operation = "process",
                            messaging.destination.name = %message.subject,
                        )
                    } else {
                        tracing::info_span!("process")
                    };
                    propagation::set_parent_from_nats(&span, message.headers.as_ref());
                    tasks.spawn(
                        async move {
                            handle(&app, &pipeline, message, max_deliver).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Some(Err(error)) => {
                    // A lasting error (the consumer deleted, no responders) would otherwise
                    // make a new pull fail at once, in a loop.
                    tracing::warn!(%error, "pull stream error; pulling again in 1 s");
                    tokio::select! {
                        _ = stop.changed() => break 'pulling,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => break,
                    }
                }
                None => break,
            }
            while tasks.try_join_next().is_some() {}
        }
    }
    // Stop pulling. Messages the server sent ahead but no task took are neither acked nor
    // naked (a nak would be redelivered into this same pull): ack_wait hands them to another
    // instance. Then finish what was taken.
    drop(current);
    while tasks.join_next().await.is_some() {}
    if let Err(error) = pipeline.client.flush().await {
        tracing::warn!(%error, "flushing NATS at shutdown failed");
    }
    tracing::info!("NATS consumer stopped; in-flight messages were finished");
}

async fn handle(app: &App, pipeline: &Pipeline, message: Message, max_deliver: i64) {
    let (delivered, stream_sequence) = match message.info() {
        Ok(info) => (info.delivered, info.stream_sequence),
        Err(_) => (1, 0),
    };
    if delivered > 1 {
        app.metrics.redelivered();
    }
    let encounter = match decode(&message.message) {
        Ok(encounter) => encounter,
        Err(reason) => {
            return dead_letter(
                app,
                pipeline,
                message,
                stream_sequence,
                NOT_AN_ENCOUNTER,
                &reason,
            )
            .await;
        }
    };
    // A publish that JetStream does not acknowledge (a node lost, a leader being elected) is
    // retried here with backoff, telling the server the message is in progress, so a short
    // outage does not use up the message's deliveries.
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 1;
    let result = loop {
        match pipeline
            .judge_and_publish(&encounter, "nats", false, message.message.headers.as_ref())
            .await
        {
            Ok(outcome) => break Ok(outcome),
            Err(error @ super::NatsError::Encounter(_)) => break Err(error),
            Err(error) if attempt >= PUBLISH_ATTEMPTS => break Err(error),
            Err(error) => {
                tracing::warn!(%error, encounter_id = %encounter.encounter_id, attempt, "publish not acknowledged; retrying");
                let _ = message.ack_with(AckKind::Progress).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
        }
    };
    match result {
        Ok(_) => {
            if let Err(error) = message.ack().await {
                // The outcome is published; a redelivery republishes it and dedupe drops it.
                tracing::warn!(%error, encounter_id = %encounter.encounter_id, "ack failed");
            }
        }
        Err(error) if delivered >= max_deliver => {
            let reason = format!("not processed after {delivered} deliveries: {error}");
            dead_letter(
                app,
                pipeline,
                message,
                stream_sequence,
                DELIVERIES_EXHAUSTED,
                &reason,
            )
            .await;
        }
        Err(error) => {
            tracing::warn!(%error, encounter_id = %encounter.encounter_id, delivered, "processing failed; will be redelivered");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                .await;
        }
    }
}

/// Publish attempts per delivery (about 15 s with the backoff) before the message is handed
/// back for redelivery.
const PUBLISH_ATTEMPTS: u32 = 10;

/// Why a message was dead-lettered, as logged. The `Claimlint-Error` header has the details,
/// which may quote the message (a decoder's error names the value it could not read), so they
/// stay out of logs and spans.
const NOT_AN_ENCOUNTER: &str = "not an encounter";
const DELIVERIES_EXHAUSTED: &str = "deliveries exhausted";

/// Publishes the original bytes and headers plus `Claimlint-Error` to the dead-letter
/// subject, waits for JetStream, then terminates the input message.
async fn dead_letter(
    app: &App,
    pipeline: &Pipeline,
    message: Message,
    stream_sequence: u64,
    why: &'static str,
    reason: &str,
) {
    let headers = message.message.headers.clone().unwrap_or_default();
    let published = publish_dead(
        pipeline,
        headers,
        message.message.payload.clone(),
        stream_sequence,
        reason,
    )
    .await;
    match published {
        Ok(()) => {
            app.metrics.dead_lettered();
            tracing::warn!(stream_sequence, why, "dead-lettered a message");
            if let Err(error) = message.ack_with(AckKind::Term).await {
                tracing::warn!(%error, stream_sequence, "terminating the dead-lettered message failed");
            }
        }
        Err(error) => {
            tracing::warn!(%error, stream_sequence, "dead-letter publish failed; will be redelivered");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
    }
}

/// Dead-letters the messages whose deliveries ran out (from the captured max-deliveries
/// advisories): original bytes and headers, `Claimlint-Error`, then removed from the input.
pub async fn run_exhausted(
    app: Arc<App>,
    pipeline: Arc<Pipeline>,
    advisories: PullConsumer,
    encounters: async_nats::jetstream::stream::Stream,
    mut stop: watch::Receiver<bool>,
) {
    #[derive(serde::Deserialize)]
    struct Advisory {
        stream_seq: u64,
        #[serde(default)]
        deliveries: u64,
    }
    'pulling: while !*stop.borrow() {
        let mut messages = match advisories.messages().await {
            Ok(messages) => messages,
            Err(_) => {
                tokio::select! {
                    _ = stop.changed() => break 'pulling,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'pulling,
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = stop.changed() => break 'pulling,
                next = messages.next() => next,
            };
            let Some(Ok(advisory)) = next else { break };
            let Ok(parsed) = serde_json::from_slice::<Advisory>(&advisory.message.payload) else {
                let _ = advisory.ack_with(AckKind::Term).await;
                continue;
            };
            let handled = match encounters.get_raw_message(parsed.stream_seq).await {
                Ok(original) => {
                    let reason = format!(
                        "not processed after {} deliveries (max_deliver reached)",
                        parsed.deliveries
                    );
                    let dead = publish_dead(
                        pipeline.as_ref(),
                        original.headers.clone(),
                        original.payload.clone(),
                        parsed.stream_seq,
                        &reason,
                    )
                    .await;
                    match dead {
                        Ok(()) => {
                            app.metrics.dead_lettered();
                            tracing::warn!(
                                stream_sequence = parsed.stream_seq,
                                why = DELIVERIES_EXHAUSTED,
                                "dead-lettered a message"
                            );
                            let _ = encounters.delete_message(parsed.stream_seq).await;
                            true
                        }
                        Err(error) => {
                            tracing::warn!(%error, "dead-letter publish failed; retrying later");
                            false
                        }
                    }
                }
                // Already gone (acknowledged late, or removed): nothing to do.
                Err(_) => true,
            };
            let kind = if handled {
                AckKind::Ack
            } else {
                AckKind::Nak(Some(Duration::from_secs(1)))
            };
            let _ = advisory.ack_with(kind).await;
        }
    }
}

/// The prefix a dead letter puts before the producer's `Nats-*` headers.
const ORIGINAL_HEADER_PREFIX: &str = "Claimlint-Original-";

/// The original headers for a dead letter. JetStream acts on `Nats-*` headers when a message is
/// published (`Nats-Expected-Stream`, `Nats-Expected-Last-Sequence`, `Nats-Rollup`,
/// `Nats-TTL`, `Nats-Msg-Id`, …): the producer's, sent again to the dead-letter stream, would
/// steer or refuse that publish (an expected stream of ENCOUNTERS is not ENCOUNTERS_DEAD), and
/// the message could never be dead-lettered. They are kept under `Claimlint-Original-`.
fn dead_letter_headers(original: &async_nats::HeaderMap) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    for (name, values) in original.iter() {
        let name: &str = name.as_ref();
        let kept = if name
            .get(..5)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("nats-"))
        {
            format!("{ORIGINAL_HEADER_PREFIX}{name}")
        } else {
            name.to_owned()
        };
        for value in values {
            headers.append(kept.as_str(), value.clone());
        }
    }
    headers
}

async fn publish_dead(
    pipeline: &Pipeline,
    original_headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
    stream_sequence: u64,
    reason: &str,
) -> Result<(), String> {
    let mut headers = dead_letter_headers(&original_headers);
    // The dead letter dedupes on the input's position, so a redelivery does not repeat it.
    headers.insert("Nats-Msg-Id", format!("dead:{stream_sequence}").as_str());
    headers.insert(ERROR_HEADER, reason.replace(['\r', '\n'], " ").as_str());
    let ack = pipeline
        .jetstream
        .publish_with_headers(DEAD_SUBJECT, headers, payload)
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a dead letter keeps of the producer's headers, and under which name.
    #[test]
    fn dead_letters_keep_jetstream_headers_under_another_name() {
        let mut original = async_nats::HeaderMap::new();
        original.insert("Content-Type", "application/json");
        original.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
        original.insert("Nats-Msg-Id", "producer-1");
        original.insert("Nats-Expected-Stream", "ENCOUNTERS");
        original.insert("nats-rollup", "sub");
        original.append("X-Tag", "a");
        original.append("X-Tag", "b");
        let headers = dead_letter_headers(&original);
        let cases: [(&str, Option<&[&str]>); 9] = [
            ("Content-Type", Some(&["application/json"])),
            (
                "traceparent",
                Some(&["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]),
            ),
            ("X-Tag", Some(&["a", "b"])),
            ("Nats-Msg-Id", None),
            ("Nats-Expected-Stream", None),
            ("nats-rollup", None),
            ("Claimlint-Original-Nats-Msg-Id", Some(&["producer-1"])),
            (
                "Claimlint-Original-Nats-Expected-Stream",
                Some(&["ENCOUNTERS"]),
            ),
            ("Claimlint-Original-nats-rollup", Some(&["sub"])),
        ];
        for (name, expected) in cases {
            let values: Vec<&str> = headers.get_all(name).map(|v| v.as_str()).collect();
            assert_eq!(values, expected.unwrap_or_default(), "{name}");
        }
        assert_eq!(headers.len(), 6);
    }
}
