//! The NATS JetStream transport (contract §5): a durable pull consumer on
//! `encounters.submitted`, outcomes published to `claims.validated` / `claims.rejected` with
//! `Nats-Msg-Id: <encounter_id>:<content_hash>` and acknowledged by JetStream before the input
//! is acknowledged, dead letters on `encounters.dead`, and the DUPLICATE_SERVICE store in a
//! key-value bucket. A crash anywhere means redelivery, and dedupe makes that one outcome.

mod consumer;
mod services;
mod setup;

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream;

use crate::app::App;
use crate::proto::v1 as pb;
use crate::wire::{self, EncounterError};

pub use consumer::{run_consumer, run_exhausted};
pub use services::{
    Claim, Claimed, LAYOUT_KEY, Layout, Lookup, PATIENT_DAY_LAYOUT, PER_SERVICE_LAYOUT,
    ServiceStore,
};
pub use setup::{Setup, connect, ensure, server_addrs};

pub const INPUT_SUBJECT: &str = "encounters.submitted";
pub const VALIDATED_SUBJECT: &str = "claims.validated";
pub const REJECTED_SUBJECT: &str = "claims.rejected";
pub const DEAD_SUBJECT: &str = "encounters.dead";
pub const ERROR_HEADER: &str = "Claimlint-Error";
pub const STATUS_HEADER: &str = "Claimlint-Status";

/// Judgements of one encounter when the duplicate-service store keeps changing under it (other
/// encounters of the same patient and day claiming services at the same moment).
const MAX_JUDGEMENTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("connecting to NATS: {0}")]
    Connect(String),
    #[error("setting up JetStream ({what}): {message}")]
    Setup { what: String, message: String },
    #[error("publishing the outcome was not acknowledged: {0}")]
    Publish(String),
    #[error("duplicate-service store: {0}")]
    Store(String),
    #[error(transparent)]
    Encounter(#[from] EncounterError),
}

/// Judge, claim, publish: the path every published outcome takes (NATS input and gRPC
/// `Validate` without `dry_run`).
pub struct Pipeline {
    app: Arc<App>,
    pub(crate) jetstream: jetstream::Context,
    pub(crate) client: async_nats::Client,
    services: ServiceStore,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pipeline")
    }
}

impl Pipeline {
    pub fn new(app: Arc<App>, client: async_nats::Client, services: ServiceStore) -> Pipeline {
        Pipeline {
            app,
            jetstream: jetstream::new(client.clone()),
            client,
            services,
        }
    }

    /// Whether the client is connected to NATS now (it reconnects on its own when not).
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Validates (with the duplicate store), claims a validated encounter's services, publishes
    /// the outcome and waits for JetStream's acknowledgement; `dry_run` publishes nothing and
    /// records nothing.
    pub async fn judge_and_publish(
        &self,
        encounter: &pb::Encounter,
        source: &'static str,
        dry_run: bool,
        trace_headers: Option<&HeaderMap>,
    ) -> Result<pb::Outcome, NatsError> {
        // Refuse what cannot be an encounter before touching the store.
        wire::check_identity(encounter)?;
        let mut attempts = 0;
        let (judged, claimed) = loop {
            attempts += 1;
            let lookup = self.services.lookup(encounter).await?;
            let judged = self
                .app
                .judge_with_prior(encounter, source, &lookup.prior)?;
            if dry_run || judged.outcome.status != pb::Status::Validated as i32 {
                break (judged, None);
            }
            match self
                .services
                .claim(&judged.outcome.encounter_id, lookup)
                .await?
            {
                Claim::Claimed(claimed) => break (judged, Some(claimed)),
                // Another encounter of the patient-day claimed a service meanwhile: judged
                // again, this one may be its duplicate now.
                Claim::Conflict if attempts < MAX_JUDGEMENTS => {}
                Claim::Conflict => {
                    return Err(NatsError::Store(format!(
                        "the patient-day's services changed under {MAX_JUDGEMENTS} judgements in a row"
                    )));
                }
            }
        };
        if dry_run {
            return Ok(self.app.count(encounter, source, judged));
        }
        let published = self.publish_outcome(&judged.outcome, trace_headers).await;
        if let Some(claimed) = claimed {
            // A claim without a published outcome, or with an outcome JetStream dropped because
            // an earlier one of the same content was published (it was not validated, or it
            // would have claimed these services already), is given back.
            let keep = matches!(published, Ok(ref ack) if !ack.duplicate);
            if !keep
                && claimed.added_anything()
                && let Err(error) = self.services.release(claimed).await
            {
                tracing::warn!(%error, encounter_id = %judged.outcome.encounter_id, "giving back an unpublished claim failed; a redelivery of the encounter finds it its own");
            }
        }
        published?;
        // Counted once it is out: a publish that fails and is tried again counts once.
        Ok(self.app.count(encounter, source, judged))
    }

    async fn publish_outcome(
        &self,
        outcome: &pb::Outcome,
        trace_headers: Option<&HeaderMap>,
    ) -> Result<jetstream::publish::PublishAck, NatsError> {
        let validated = outcome.status == pb::Status::Validated as i32;
        let subject = if validated {
            VALIDATED_SUBJECT
        } else {
            REJECTED_SUBJECT
        };
        let payload = serde_json::to_vec(outcome).map_err(|e| NatsError::Publish(e.to_string()))?;
        let mut headers = HeaderMap::new();
        crate::telemetry::propagation::write_trace_context(&mut headers, trace_headers);
        headers.insert(
            "Nats-Msg-Id",
            format!("{}:{}", outcome.encounter_id, outcome.content_hash).as_str(),
        );
        headers.insert(
            STATUS_HEADER,
            if validated { "validated" } else { "rejected" },
        );
        headers.insert("Content-Type", "application/json");
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(|e| NatsError::Publish(e.to_string()))?;
        ack.await.map_err(|e| NatsError::Publish(e.to_string()))
    }
}

/// Server URLs for a log line: any `user:password@` replaced by `***@`.
pub fn redact_url(urls: &str) -> String {
    urls.split(',')
        .map(|url| match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &url[..scheme + 3], &url[at..])
            }
            (None, Some(at)) => format!("***{}", &url[at..]),
            _ => url.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Why a message body is not an encounter.
pub fn decode(message: &async_nats::Message) -> Result<pb::Encounter, String> {
    use prost::Message as _;
    let protobuf = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Content-Type"))
        .is_some_and(|v| v.as_str().eq_ignore_ascii_case("application/protobuf"));
    let encounter = if protobuf {
        pb::Encounter::decode(message.payload.as_ref())
            .map_err(|e| format!("not a protobuf Encounter: {e}"))?
    } else {
        wire::json::decode_encounter(&message.payload)
            .map_err(|e| format!("not a JSON Encounter: {e}"))?
    };
    wire::check_identity(&encounter).map_err(|e| e.to_string())?;
    Ok(encounter)
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_server_urls_are_not_logged() {
        let cases = [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://user:secret@nats:4222", "nats://***@nats:4222"),
            (
                "tls://token@a:4222,nats://b:4222",
                "tls://***@a:4222,nats://b:4222",
            ),
            ("user:secret@nats:4222", "***@nats:4222"),
        ];
        for (url, logged) in cases {
            assert_eq!(super::redact_url(url), logged);
        }
    }
}
