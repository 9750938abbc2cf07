//! `claimlint publish --nats URL FILE...`: puts encounters on `encounters.submitted` and waits
//! for JetStream to store each one (for operators and tests).

use std::path::PathBuf;
use std::process::ExitCode;

use async_nats::HeaderMap;
use prost::Message as _;

use super::{CliError, EXIT_BAD_INPUT};
use crate::nats::INPUT_SUBJECT;

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// NATS server URL.
    #[arg(long, env = "CLAIMLINT_NATS_URL")]
    pub nats: String,
    /// NATS credentials file.
    #[arg(long, env = "CLAIMLINT_NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// Send binary protobuf (`Content-Type: application/protobuf`) instead of JSON.
    #[arg(long)]
    pub protobuf: bool,
    /// Encounter files (one object, an array, or JSON lines); `-` for standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

pub fn run(args: PublishArgs) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PublishError::Runtime)?;
    runtime.block_on(publish(args))
}

async fn publish(args: PublishArgs) -> Result<ExitCode, CliError> {
    let mut options = async_nats::ConnectOptions::new().name("claimlint-publish");
    if let Some(creds) = &args.creds {
        options = options.credentials_file(creds).await.map_err(|e| {
            PublishError::Nats(format!("credentials file {}: {e}", creds.display()))
        })?;
    }
    let client = options
        .connect(&args.nats)
        .await
        .map_err(|e| PublishError::Nats(e.to_string()))?;
    let jetstream = async_nats::jetstream::new(client.clone());
    let mut published = 0usize;
    let mut unreadable = 0usize;
    for name in &args.files {
        let encounters = match super::validate::read_input(name)
            .and_then(|text| crate::wire::json::parse_encounters(&text).map_err(|e| e.to_string()))
        {
            Ok(encounters) => encounters,
            Err(message) => {
                eprintln!("{name}: {message}");
                unreadable += 1;
                continue;
            }
        };
        let mut acks = Vec::with_capacity(encounters.len());
        for encounter in &encounters {
            let mut headers = HeaderMap::new();
            let payload = if args.protobuf {
                headers.insert("Content-Type", "application/protobuf");
                encounter.encode_to_vec()
            } else {
                headers.insert("Content-Type", "application/json");
                serde_json::to_vec(encounter)?
            };
            let ack = jetstream
                .publish_with_headers(INPUT_SUBJECT, headers, payload.into())
                .await
                .map_err(|e| PublishError::Nats(e.to_string()))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| PublishError::Nats(format!("not stored by JetStream: {e}")))?;
            published += 1;
        }
    }
    client
        .flush()
        .await
        .map_err(|e| PublishError::Nats(e.to_string()))?;
    eprintln!("published {published} encounter(s) to {INPUT_SUBJECT}");
    Ok(if unreadable > 0 {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}
