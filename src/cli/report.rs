//! Text for a person: outcomes and the rule catalogue.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

use super::{CliError, Format, RulesArgs};
use crate::proto::v1 as pb;
use crate::wire::list_rules;

/// One outcome: a status line, then each reason with its field, message, expected/actual,
/// remedy, likely denial and source.
pub fn format_outcome_text(source_name: &str, outcome: &pb::Outcome) -> String {
    let mut text = String::new();
    let status = match pb::Status::try_from(outcome.status) {
        Ok(pb::Status::Validated) => "VALIDATED",
        Ok(pb::Status::Rejected) => "REJECTED",
        _ => "UNKNOWN",
    };
    let _ = write!(text, "{status} {} ({source_name})", outcome.encounter_id);
    if let Some(claim) = &outcome.claim {
        let _ = write!(
            text,
            ": {} line{}, {} unit{}, {}",
            claim.lines.len(),
            plural(claim.lines.len()),
            claim.total_units,
            plural(claim.total_units as usize),
            crate::core::types::dollars(claim.total_charge_cents)
        );
    }
    text.push('\n');
    for reason in &outcome.reasons {
        let severity = match pb::Severity::try_from(reason.severity) {
            Ok(pb::Severity::Error) => "error",
            Ok(pb::Severity::Warning) => "warning",
            _ => "note",
        };
        let field = if reason.field.is_empty() {
            "encounter"
        } else {
            reason.field.as_str()
        };
        let _ = writeln!(text, "  {severity:<7} {} at {field}", reason.code);
        let _ = writeln!(text, "          {}", reason.message);
        if !reason.expected.is_empty() || !reason.actual.is_empty() {
            let _ = writeln!(
                text,
                "          expected: {}; sent: {}",
                or_dash(&reason.expected),
                or_dash(&reason.actual)
            );
        }
        if !reason.remedy.is_empty() {
            let _ = writeln!(text, "          fix: {}", reason.remedy);
        }
        if !reason.carc.is_empty() {
            let _ = writeln!(text, "          likely denial: {}", reason.carc);
        }
        let _ = writeln!(text, "          source: {}", reason.source);
    }
    text
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn or_dash(value: &str) -> &str {
    if value.is_empty() { "-" } else { value }
}

pub fn print_rules(args: RulesArgs) -> Result<ExitCode, CliError> {
    let rules = args.rules.load()?;
    let catalogue = list_rules(&rules);
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&catalogue)?)?,
        Format::Text => {
            writeln!(out, "ruleset {}", catalogue.ruleset_version)?;
            writeln!(out)?;
            let profiles: Vec<&str> = catalogue
                .rules
                .first()
                .map(|rule| rule.severities.iter().map(|s| s.profile.as_str()).collect())
                .unwrap_or_default();
            write!(out, "{:<32} {:<7}", "code", "carc")?;
            for profile in &profiles {
                write!(out, " {profile:<10}")?;
            }
            writeln!(out, " source")?;
            for rule in &catalogue.rules {
                write!(out, "{:<32} {:<7}", rule.code, or_dash(&rule.carc))?;
                for severity in &rule.severities {
                    let label = if !severity.enabled {
                        "off"
                    } else if severity.severity == pb::Severity::Error as i32 {
                        "error"
                    } else {
                        "warning"
                    };
                    write!(out, " {label:<10}")?;
                }
                writeln!(out, " {}", rule.source)?;
            }
            writeln!(out)?;
            writeln!(out, "rule data:")?;
            for table in &catalogue.data {
                writeln!(
                    out,
                    "  {:<18} {:<12} {} to {}  {}",
                    table.table,
                    table.version,
                    table.effective_from,
                    or_dash(&table.effective_to),
                    table.source
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
