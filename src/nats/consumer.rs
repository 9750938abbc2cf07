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
    'pulling: while !*stop.borrow() {
        let mut messages = match consumer
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
                    tasks.spawn(async move {
                        handle(&app, &pipeline, message, max_deliver).await;
                        drop(permit);
                    });
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "pull stream error; pulling again");
                    break;
                }
                None => break,
            }
            while tasks.try_join_next().is_some() {}
        }
    }
    // Stop pulling (the stream is dropped); finish what was taken.
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
        app.metrics.nats_redeliveries.inc();
    }
    let encounter = match decode(&message.message) {
        Ok(encounter) => encounter,
        Err(reason) => return dead_letter(app, pipeline, message, stream_sequence, &reason).await,
    };
    match pipeline
        .judge_and_publish(&encounter, "nats", false, message.message.headers.as_ref())
        .await
    {
        Ok(_) => {
            if let Err(error) = message.ack().await {
                // The outcome is published; a redelivery republishes it and dedupe drops it.
                tracing::warn!(%error, encounter_id = %encounter.encounter_id, "ack failed");
            }
        }
        Err(error) if delivered >= max_deliver => {
            let reason = format!("not processed after {delivered} deliveries: {error}");
            dead_letter(app, pipeline, message, stream_sequence, &reason).await;
        }
        Err(error) => {
            tracing::warn!(%error, encounter_id = %encounter.encounter_id, delivered, "processing failed; will be redelivered");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
    }
}

/// Publishes the original bytes and headers plus `Claimlint-Error` to the dead-letter
/// subject, waits for JetStream, then terminates the input message.
async fn dead_letter(
    app: &App,
    pipeline: &Pipeline,
    message: Message,
    stream_sequence: u64,
    reason: &str,
) {
    let mut headers = message.message.headers.clone().unwrap_or_default();
    // The dead letter dedupes on the input's position, so a redelivery does not repeat it.
    headers.insert("Nats-Msg-Id", format!("dead:{stream_sequence}").as_str());
    headers.insert(ERROR_HEADER, reason.replace(['\r', '\n'], " ").as_str());
    let published = match pipeline
        .jetstream
        .publish_with_headers(DEAD_SUBJECT, headers, message.message.payload.clone())
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    match published {
        Ok(()) => {
            app.metrics.dead_letters.inc();
            tracing::warn!(stream_sequence, error = reason, "dead-lettered a message");
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
