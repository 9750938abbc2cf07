//! `claimlint healthcheck`: asks a running service's `grpc.health.v1.Health` whether it is
//! SERVING, for container health checks (the runtime image has no shell or curl).

use std::process::ExitCode;
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::CliError;
use super::submit::{GrpcClientArgs, SubmitError, connect};

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    #[command(flatten)]
    pub server: GrpcClientArgs,
    /// The service to ask about; empty: the server as a whole.
    #[arg(long, default_value = "")]
    pub service: String,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub fn run(args: HealthcheckArgs) -> Result<ExitCode, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SubmitError::Runtime)?;
    let answer = runtime.block_on(async {
        tokio::time::timeout(args.timeout, async {
            let channel = connect(&args.server).await.map_err(|e| e.to_string())?;
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: args.service.clone(),
                })
                .await
                .map(|response| response.into_inner().status)
                .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", args.timeout)))
    });
    match answer {
        Ok(status) if status == ServingStatus::Serving as i32 => {
            println!("SERVING");
            Ok(ExitCode::SUCCESS)
        }
        Ok(status) => {
            let name = ServingStatus::try_from(status)
                .map_or_else(|_| status.to_string(), |s| s.as_str_name().to_owned());
            println!("{name}");
            Ok(ExitCode::from(1))
        }
        Err(error) => {
            eprintln!("claimlint healthcheck: {error}");
            Ok(ExitCode::from(1))
        }
    }
}
