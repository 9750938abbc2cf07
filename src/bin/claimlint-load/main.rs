//! `claimlint-load`: drives claimlint's gRPC API and NATS pipeline with the typical visit and
//! compares it with baselines run the same way in the same run (an echo gRPC server, a no-op
//! NATS pipeline), printing throughput, latency percentiles, errors and the server's memory as
//! text or JSON. See BENCHMARKS.md for the commands and the latest figures.

mod baselines;
mod children;
mod grpc_load;
mod nats_load;
mod report;
mod suite;
mod visits;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use grpc_load::{GrpcLoad, GrpcTarget, Servers};
use nats_load::{NatsLoad, NatsTarget};
use report::Comparison;

/// claimlint's allocator, so the baselines this binary serves run on the same one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "claimlint-load",
    version,
    about = "Load generator for claimlint, with same-run baselines"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Against {
    /// claimlint, then its baseline with the same settings, and the ratio.
    Both,
    Claimlint,
    Baseline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
struct Common {
    #[arg(long, value_enum, default_value_t = Against::Both)]
    against: Against,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The claimlint binary (default: `claimlint` beside this one).
    #[arg(long)]
    claimlint_bin: Option<PathBuf>,
}

impl Common {
    fn servers(&self) -> Result<Servers> {
        Ok(Servers {
            claimlint_bin: children::claimlint_program(self.claimlint_bin.as_deref())?,
            load_bin: std::env::current_exe()?,
        })
    }
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Load the gRPC API (Validate or ValidateStream) of a claimlint it starts, and the echo baseline.
    Grpc {
        #[command(flatten)]
        load: GrpcLoad,
        #[command(flatten)]
        common: Common,
    },
    /// Publish encounters to a claimlint pipeline it starts (with a fresh nats-server), and to the no-op baseline.
    Nats {
        #[command(flatten)]
        load: NatsLoad,
        #[command(flatten)]
        common: Common,
    },
    /// Every measurement BENCHMARKS.md reports, in one run, with the targets.
    Suite(suite::SuiteArgs),
    /// The gRPC baseline: the ClaimValidator service answering a prebuilt outcome.
    #[command(hide = true)]
    EchoServer {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// The NATS baseline: claimlint's consume → publish → ack loop with a prebuilt outcome.
    #[command(hide = true)]
    NoopPipeline {
        #[command(flatten)]
        nats: claimlint::config::NatsArgs,
    },
}

fn print(comparison: &Comparison, format: Format) -> Result<()> {
    match format {
        Format::Text => print!("{}", comparison.text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(comparison)?),
    }
    Ok(())
}

/// Measures claimlint, then its baseline, as `against` asks.
async fn compare<T, F, Fut>(
    against: Against,
    claimlint: T,
    baseline: T,
    measure: F,
) -> Result<Comparison>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<report::RunReport>>,
{
    let subject = match against {
        Against::Baseline => None,
        _ => Some(measure(claimlint).await?),
    };
    let baseline = match against {
        Against::Claimlint => None,
        _ => Some(measure(baseline).await?),
    };
    match (subject, baseline) {
        (Some(subject), baseline) => Ok(Comparison::new(subject, baseline)),
        (None, Some(baseline)) => Ok(Comparison::new(baseline, None)),
        (None, None) => Err(anyhow::anyhow!("nothing measured")),
    }
}

async fn run(mode: Mode) -> Result<()> {
    match mode {
        Mode::Grpc { load, common } => {
            let servers = common.servers()?;
            let comparison = compare(
                common.against,
                GrpcTarget::Claimlint,
                GrpcTarget::Echo,
                |target| grpc_load::measure(target, &servers, &load),
            )
            .await?;
            print(&comparison, common.format)
        }
        Mode::Nats { load, common } => {
            let servers = common.servers()?;
            let comparison = compare(
                common.against,
                NatsTarget::Claimlint,
                NatsTarget::Noop,
                |target| nats_load::measure(target, &servers, &load),
            )
            .await?;
            print(&comparison, common.format)
        }
        Mode::Suite(args) => suite::run(args).await,
        Mode::EchoServer { listen } => baselines::echo_server(listen).await,
        Mode::NoopPipeline { nats } => baselines::noop_pipeline(nats).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // On Ctrl-C or SIGTERM the run is dropped, and with it every child process (they are
    // killed on drop), so no server under test outlives the load generator.
    let interrupted = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    };
    let outcome = tokio::select! {
        outcome = run(cli.mode) => outcome,
        signal = interrupted => match signal {
            Ok(()) => Err(anyhow::anyhow!("interrupted; the servers under test were stopped")),
            Err(error) => Err(anyhow::anyhow!("listening for signals: {error}")),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("claimlint-load: {error:#}");
            ExitCode::FAILURE
        }
    }
}
