//! The baselines the load generator compares claimlint with, run as child processes of this
//! binary so they pay what claimlint pays (a process, a runtime, loopback):
//!
//! - `echo-server`: the same `claimlint.v1.ClaimValidator` service and messages on tonic with
//!   claimlint's server settings, answering every call with an outcome built once at start
//!   (claimlint's own outcome for the typical visit) instead of validating.
//! - `noop-pipeline`: claimlint's NATS set-up (streams, durable consumer, the same flags and
//!   defaults) and the same consume loop: pull in batches, bounded concurrency, decode, publish
//!   the outcome and wait for JetStream's ack, then ack the input, with validation (and the
//!   duplicate-service store it reads and writes) replaced by the prebuilt outcome.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use claimlint::config::NatsArgs;
use claimlint::nats::{STATUS_HEADER, VALIDATED_SUBJECT};
use claimlint::proto::v1 as pb;
use claimlint::proto::v1::claim_validator_server::{ClaimValidator, ClaimValidatorServer};
use futures_util::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::visits;

/// claimlint's outcome for the typical visit, computed once.
fn prebuilt_outcome() -> Result<pb::Outcome> {
    let rules = claimlint::rules_source::load_rules(None)?;
    let visit = visits::typical_visit()?;
    let today = chrono::Utc::now();
    Ok(claimlint::wire::check_encounter(
        &visit,
        &rules,
        today.date_naive(),
        today,
    )?)
}

// ---------------------------------------------------------------- gRPC echo

/// `serve`'s defaults (claimlint's `--concurrency-per-connection`, `--stream-buffer`,
/// `--max-message-bytes`, keep-alive), so only the handler differs.
const CONCURRENCY_PER_CONNECTION: usize = 256;
const STREAM_BUFFER: usize = 64;
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

struct Echo {
    outcome: pb::Outcome,
}

impl Echo {
    fn answer(&self, request: pb::ValidateRequest) -> Result<pb::ValidateResponse, Status> {
        let encounter = request
            .encounter
            .ok_or_else(|| Status::invalid_argument("encounter is required"))?;
        let mut outcome = self.outcome.clone();
        outcome.encounter_id = encounter.encounter_id;
        Ok(pb::ValidateResponse {
            outcome: Some(outcome),
            published: false,
        })
    }
}

#[tonic::async_trait]
impl ClaimValidator for Echo {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        self.answer(request.into_inner()).map(Response::new)
    }

    type ValidateStreamStream = ReceiverStream<Result<pb::ValidateResponse, Status>>;

    async fn validate_stream(
        &self,
        request: Request<Streaming<pb::ValidateRequest>>,
    ) -> Result<Response<Self::ValidateStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let echo = Echo {
            outcome: self.outcome.clone(),
        };
        tokio::spawn(async move {
            loop {
                let next = match inbound.message().await {
                    Ok(Some(request)) => echo.answer(request),
                    Ok(None) => break,
                    Err(status) => Err(status),
                };
                let failed = next.is_err();
                if sender.send(next).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn list_rules(
        &self,
        _request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        Err(Status::unimplemented("the echo baseline has no rules"))
    }
}

pub async fn echo_server(listen: SocketAddr) -> Result<()> {
    let echo = Echo {
        outcome: prebuilt_outcome()?,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(ClaimValidatorServer::new(echo).max_decoding_message_size(MAX_MESSAGE_BYTES))
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- NATS no-op pipeline

pub async fn noop_pipeline(args: NatsArgs) -> Result<()> {
    let outcome = prebuilt_outcome()?;
    let payload = Bytes::from(serde_json::to_vec(&outcome)?);
    let client = claimlint::nats::connect(&args).await?;
    let setup = claimlint::nats::ensure(&client, &args).await?;
    let js = jetstream::new(client.clone());
    let limit = Arc::new(Semaphore::new(args.concurrency));
    loop {
        let mut messages = match setup
            .consumer
            .stream()
            .max_messages_per_batch(args.batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(messages) => messages,
            Err(error) => {
                eprintln!("noop-pipeline: pull failed: {error}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let permit = limit.clone().acquire_owned().await?;
            let message = match messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    eprintln!("noop-pipeline: pull stream error: {error}");
                    break;
                }
                None => break,
            };
            let (js, payload) = (js.clone(), payload.clone());
            tokio::spawn(async move {
                let encounter = match claimlint::nats::decode(&message.message) {
                    Ok(encounter) => encounter,
                    Err(_) => {
                        let _ = message.ack_with(AckKind::Term).await;
                        return;
                    }
                };
                let mut headers = HeaderMap::new();
                headers.insert(
                    "Nats-Msg-Id",
                    format!("{}:noop", encounter.encounter_id).as_str(),
                );
                headers.insert(STATUS_HEADER, "validated");
                headers.insert("Content-Type", "application/json");
                let published = match js
                    .publish_with_headers(VALIDATED_SUBJECT, headers, payload)
                    .await
                {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if published {
                    let _ = message.ack().await;
                } else {
                    let _ = message.ack_with(AckKind::Nak(None)).await;
                }
                drop(permit);
            });
        }
    }
}
