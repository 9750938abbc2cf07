//! Command-line verbs. `main` parses [`Cli`] and calls [`run`].

mod healthcheck;
mod publish;
mod report;
mod submit;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use healthcheck::HealthcheckArgs;
pub use publish::{PublishArgs, PublishError};
pub use report::format_outcome_text;
pub use submit::{GrpcClientArgs, SubmitArgs, SubmitError};

/// Exit status of `validate` (contract §8): all validated, some rejected, bad input.
pub const EXIT_VALIDATED: u8 = 0;
pub const EXIT_REJECTED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "claimlint",
    version,
    about = "Checks outpatient therapy claims before they are billed"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate encounters from JSON files (one object, an array, or JSON lines); `-` reads stdin.
    Validate(ValidateArgs),
    /// Print the rule catalogue with each rule's severity per payer profile.
    Rules(RulesArgs),
    /// Run the service: gRPC, HTTP health and metrics (configuration from flags or CLAIMLINT_*).
    Serve(Box<crate::config::ServeConfig>),
    /// Send encounters to a running service over gRPC and print the outcomes like `validate`.
    Submit(SubmitArgs),
    /// Publish encounters to NATS JetStream (`encounters.submitted`).
    Publish(PublishArgs),
    /// Exit 0 when a running service answers gRPC health SERVING (for container health checks).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For a person: status, then each reason with its field, message and remedy.
    Text,
    /// One JSON document per line (canonical proto3 JSON).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Encounter files; `-` for standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Validation date, YYYY-MM-DD (default: today, UTC).
    #[arg(long = "as-of", value_name = "YYYY-MM-DD", value_parser = parse_as_of)]
    pub as_of: Option<chrono::NaiveDate>,
    #[command(flatten)]
    pub rules: crate::rules_source::RulesSource,
}

#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub rules: crate::rules_source::RulesSource,
}

fn parse_as_of(raw: &str) -> Result<chrono::NaiveDate, String> {
    match crate::core::types::DateField::parse(raw) {
        crate::core::types::DateField::Valid(date) => Ok(date),
        _ => Err(format!("`{raw}` is not a YYYY-MM-DD date")),
    }
}

/// A failure that stops a verb before it could judge its input.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Rules(#[from] crate::rules_source::RulesLoadError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    #[error("encoding output: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Rules(args) => report::print_rules(args),
        Command::Serve(config) => serve(*config),
        Command::Submit(args) => submit::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Healthcheck(args) => healthcheck::run(args),
    }
}

fn serve(config: crate::config::ServeConfig) -> Result<ExitCode, CliError> {
    let workers = config.worker_threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    // The OTLP exporters' gRPC client lives on the runtime.
    let telemetry = runtime.block_on(async { crate::telemetry::init_service() })?;
    tracing::info!(worker_threads = workers, "starting");
    let result = runtime.block_on(crate::serve::run_until_signal(config));
    // Export the last spans and metrics while the runtime still drives the exporters' client.
    let flushing = runtime.spawn_blocking(move || telemetry.shutdown(TELEMETRY_FLUSH_TIMEOUT));
    let flushed = runtime.block_on(flushing);
    if let Err(error) = flushed {
        tracing::warn!(%error, "flushing telemetry failed");
    }
    // Tasks still running past the grace period are not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// How long exporting the last telemetry may hold up the exit.
const TELEMETRY_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
