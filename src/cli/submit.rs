//! `claimlint submit --addr URL FILE...`: a gRPC client that prints outcomes like `validate`
//! and exits the same way.

use std::path::PathBuf;
use std::process::ExitCode;

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{CliError, Format};
use crate::proto::v1 as pb;
use crate::proto::v1::claim_validator_client::ClaimValidatorClient;

/// How a client reaches the gRPC server.
#[derive(Debug, clap::Args)]
pub struct GrpcClientArgs {
    /// Server URL, e.g. http://127.0.0.1:50051 or https://claimlint.internal:50051.
    #[arg(long, env = "CLAIMLINT_ADDR")]
    pub addr: String,
    /// PEM CA to verify the server's certificate (implies TLS).
    #[arg(long, env = "CLAIMLINT_CLIENT_TLS_CA")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --key).
    #[arg(long, env = "CLAIMLINT_CLIENT_TLS_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM client key for mutual TLS (with --cert).
    #[arg(long, env = "CLAIMLINT_CLIENT_TLS_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The server name to verify in its certificate (default: the URL's host).
    #[arg(long, env = "CLAIMLINT_CLIENT_TLS_SERVER_NAME")]
    pub server_name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub server: GrpcClientArgs,
    /// File holding the bearer token (first non-empty line).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Validate only: do not publish the outcome (when the server has NATS).
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Encounter files; `-` for standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file holds no token")]
    EmptyToken,
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

pub(super) fn read(what: &'static str, path: &PathBuf) -> Result<Vec<u8>, SubmitError> {
    std::fs::read(path).map_err(|source| SubmitError::Read {
        what,
        path: path.clone(),
        source,
    })
}

pub async fn connect(args: &GrpcClientArgs) -> Result<Channel, SubmitError> {
    let connect_error = |source| SubmitError::Connect {
        addr: args.addr.clone(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(args.addr.clone()).map_err(connect_error)?;
    if args.ca.is_some() || args.addr.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &args.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read("CA", ca)?));
        }
        if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
            tls = tls.identity(Identity::from_pem(
                read("client certificate", cert)?,
                read("client key", key)?,
            ));
        }
        if let Some(name) = &args.server_name {
            tls = tls.domain_name(name.clone());
        }
        endpoint = endpoint.tls_config(tls).map_err(connect_error)?;
    }
    endpoint.connect().await.map_err(connect_error)
}

pub fn run(args: SubmitArgs) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SubmitError::Runtime)?;
    let token = match &args.token_file {
        None => None,
        Some(path) => {
            let text = String::from_utf8_lossy(&read("token file", path)?).into_owned();
            let token = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .ok_or(SubmitError::EmptyToken)?;
            Some(
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| SubmitError::EmptyToken)?,
            )
        }
    };
    let channel = runtime.block_on(connect(&args.server))?;
    let mut client = ClaimValidatorClient::new(channel);
    super::validate::judge_files(&args.files, args.format, |encounter| {
        let mut request = tonic::Request::new(pb::ValidateRequest {
            encounter: Some(encounter.clone()),
            dry_run: args.dry_run,
        });
        if let Some(token) = &token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        runtime
            .block_on(client.validate(request))
            .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
            .and_then(|response| {
                response
                    .into_inner()
                    .outcome
                    .ok_or_else(|| "the server sent no outcome".to_owned())
            })
    })
}
