//! `claimlint validate FILE... | -`

use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use chrono::Utc;

use super::{CliError, EXIT_BAD_INPUT, EXIT_REJECTED, EXIT_VALIDATED, Format, ValidateArgs};
use crate::proto::v1 as pb;
use crate::wire::{check_encounter, json::parse_encounters};

#[derive(Debug, Default)]
struct Tally {
    validated: usize,
    rejected: usize,
    unreadable: usize,
}

impl Tally {
    fn exit_code(&self) -> ExitCode {
        ExitCode::from(if self.unreadable > 0 {
            EXIT_BAD_INPUT
        } else if self.rejected > 0 {
            EXIT_REJECTED
        } else {
            EXIT_VALIDATED
        })
    }
}

pub fn run(args: ValidateArgs) -> Result<ExitCode, CliError> {
    let rules = args.rules.load()?;
    let as_of = args.as_of.unwrap_or_else(|| Utc::now().date_naive());
    judge_files(&args.files, args.format, |encounter| {
        check_encounter(encounter, &rules, as_of, Utc::now()).map_err(|error| error.to_string())
    })
}

/// Reads every file, judges every encounter with `judge` (locally or over gRPC), prints the
/// outcomes, and returns the exit status of contract §8.
pub(super) fn judge_files(
    files: &[String],
    format: Format,
    mut judge: impl FnMut(&pb::Encounter) -> Result<pb::Outcome, String>,
) -> Result<ExitCode, CliError> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut tally = Tally::default();

    for name in files {
        let encounters = match read_input(name)
            .and_then(|text| parse_encounters(&text).map_err(|error| error.to_string()))
        {
            Ok(encounters) => encounters,
            Err(message) => {
                // One line naming the file (and line and column): the biller's next step.
                eprintln!("{name}: {message}");
                tally.unreadable += 1;
                continue;
            }
        };
        if encounters.is_empty() {
            let note = format!("{name}: no encounters (empty array); nothing to validate");
            match format {
                Format::Text => writeln!(out, "{note}")?,
                Format::Json => eprintln!("{note}"),
            }
            continue;
        }
        for (position, encounter) in encounters.iter().enumerate() {
            match judge(encounter) {
                Ok(outcome) => {
                    if outcome.status == pb::Status::Rejected as i32 {
                        tally.rejected += 1;
                    } else {
                        tally.validated += 1;
                    }
                    match format {
                        Format::Text => {
                            write!(out, "{}", super::format_outcome_text(name, &outcome))?
                        }
                        Format::Json => writeln!(out, "{}", serde_json::to_string(&outcome)?)?,
                    }
                }
                Err(error) => {
                    eprintln!("{name}: encounter {}: {error}", position + 1);
                    tally.unreadable += 1;
                }
            }
        }
    }
    if format == Format::Text {
        let total = tally.validated + tally.rejected;
        write!(
            out,
            "{total} encounter{}: {} validated, {} rejected",
            if total == 1 { "" } else { "s" },
            tally.validated,
            tally.rejected
        )?;
        if tally.unreadable > 0 {
            write!(out, ", {} unreadable", tally.unreadable)?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(tally.exit_code())
}

pub(super) fn read_input(name: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let read = if name == "-" {
        io::stdin().lock().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::File::open(name).and_then(|mut file| file.read_to_end(&mut bytes).map(|_| ()))
    };
    read.map_err(|error| error.to_string())?;
    String::from_utf8(bytes).map_err(|error| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            error.utf8_error().valid_up_to()
        )
    })
}
