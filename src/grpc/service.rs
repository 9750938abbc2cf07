//! `claimlint.v1.ClaimValidator`: convert, call the app, convert back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::Instrument;

use crate::app::App;
use crate::nats::NatsError;
use crate::proto::v1 as pb;
use crate::proto::v1::claim_validator_server::ClaimValidator;
use crate::telemetry::propagation;
use crate::wire::{EncounterError, list_rules};

pub struct ClaimValidatorService {
    app: Arc<App>,
    request_timeout: Duration,
    stream_buffer: usize,
}

impl ClaimValidatorService {
    pub fn new(app: Arc<App>, request_timeout: Duration, stream_buffer: usize) -> Self {
        ClaimValidatorService {
            app,
            request_timeout,
            stream_buffer,
        }
    }
}

/// INVALID_ARGUMENT with a `google.rpc.BadRequest` field violation.
fn invalid_argument(error: &EncounterError, position: Option<usize>) -> Status {
    let description = match position {
        Some(position) => format!("{error} (request {position} of the stream)"),
        None => error.to_string(),
    };
    Status::with_error_details(
        tonic::Code::InvalidArgument,
        description.clone(),
        ErrorDetails::with_bad_request_violation(error.field(), description),
    )
}

/// Validates one request; the only refusals are a missing encounter or encounter_id. With
/// NATS configured and no `dry_run`, the outcome is published and acknowledged by JetStream
/// before the answer, or the call fails UNAVAILABLE (a retry is deduplicated).
async fn answer(
    app: &App,
    request: pb::ValidateRequest,
    position: Option<usize>,
    trace_headers: Option<&async_nats::HeaderMap>,
) -> Result<pb::ValidateResponse, Status> {
    let encounter = request
        .encounter
        .ok_or_else(|| invalid_argument(&EncounterError::MissingEncounter, position))?;
    let publish = app.nats_configured() && !request.dry_run;
    let Some(pipeline) = app.pipeline() else {
        if publish {
            return Err(Status::unavailable(
                "NATS is not connected yet; retry the call",
            ));
        }
        let outcome = app
            .check(&encounter, "grpc")
            .map_err(|error| invalid_argument(&error, position))?;
        return Ok(pb::ValidateResponse {
            outcome: Some(outcome),
            published: false,
        });
    };
    match pipeline
        .judge_and_publish(&encounter, "grpc", !publish, trace_headers)
        .await
    {
        Ok(outcome) => Ok(pb::ValidateResponse {
            outcome: Some(outcome),
            published: publish,
        }),
        Err(NatsError::Encounter(error)) => Err(invalid_argument(&error, position)),
        Err(error) => Err(Status::unavailable(format!("{error}; retry the call"))),
    }
}

/// The server span of a call, child of the caller's trace context, and the caller's
/// `traceparent` for the pass-through when tracing is off.
fn rpc_span<T>(
    request: &Request<T>,
    method: &'static str,
) -> (tracing::Span, Option<async_nats::HeaderMap>) {
    let span = if crate::telemetry::traces_exported() {
        tracing::info_span!(
            "claimlint.v1.ClaimValidator",
            otel.name = %format_args!("claimlint.v1.ClaimValidator/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = "claimlint.v1.ClaimValidator",
            rpc.method = method,
        )
    } else {
        tracing::info_span!("claimlint.v1.ClaimValidator", rpc.method = method)
    };
    propagation::set_parent_from_grpc(&span, request.metadata());
    (span, propagation::incoming_from_grpc(request.metadata()))
}

#[tonic::async_trait]
impl ClaimValidator for ClaimValidatorService {
    async fn validate(
        &self,
        request: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        let (span, trace_headers) = rpc_span(&request, "Validate");
        // Validation takes microseconds; the timeout bounds the call as a whole (the NATS
        // publish and its acknowledgement included).
        let work = answer(
            &self.app,
            request.into_inner(),
            None,
            trace_headers.as_ref(),
        )
        .instrument(span);
        match tokio::time::timeout(self.request_timeout, work).await {
            Ok(result) => result.map(Response::new),
            Err(_) => Err(Status::unavailable(
                "the call took longer than the request timeout; retry it",
            )),
        }
    }

    type ValidateStreamStream = ReceiverStream<Result<pb::ValidateResponse, Status>>;

    /// Answers in request order; at most `stream_buffer` answers wait for a slow reader, after
    /// which the server stops reading requests (HTTP/2 flow control pushes back).
    async fn validate_stream(
        &self,
        request: Request<Streaming<pb::ValidateRequest>>,
    ) -> Result<Response<Self::ValidateStreamStream>, Status> {
        let (span, trace_headers) = rpc_span(&request, "ValidateStream");
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(self.stream_buffer);
        let app = self.app.clone();
        let request_timeout = self.request_timeout;
        let stream = async move {
            let mut position = 0usize;
            loop {
                let next = match inbound.message().await {
                    // Each message gets the unary call's time limit.
                    Ok(Some(request)) => {
                        let work = answer(&app, request, Some(position), trace_headers.as_ref());
                        match tokio::time::timeout(request_timeout, work).await {
                            Ok(result) => result,
                            Err(_) => Err(Status::unavailable(format!(
                                "request {position} of the stream took longer than the request timeout; retry from it"
                            ))),
                        }
                    }
                    Ok(None) => break,
                    Err(status) => Err(status),
                };
                position += 1;
                let failed = next.is_err();
                if sender.send(next).await.is_err() || failed {
                    break;
                }
            }
        };
        tokio::spawn(stream.instrument(span));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn list_rules(
        &self,
        _request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        Ok(Response::new(list_rules(&self.app.rules())))
    }
}
