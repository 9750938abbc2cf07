//! The `claimlint` binary: parse the command line, run the verb, map the result to an exit
//! status (0 validated, 1 rejected, 2 bad input or a failure before judging).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: per-thread free lists suit a server that allocates many small, short-lived
/// objects per request on several worker threads (BENCHMARKS.md measures it against glibc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = claimlint::cli::Cli::parse();
    match claimlint::cli::run(cli).map_err(anyhow::Error::from) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("claimlint: {error:#}");
            ExitCode::from(claimlint::cli::EXIT_BAD_INPUT)
        }
    }
}
