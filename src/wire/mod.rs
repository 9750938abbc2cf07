//! The edge between wire types (proto, JSON) and the core: parse, don't validate.
//!
//! Every transport (CLI, gRPC, NATS) goes through [`check_encounter`]: convert the wire
//! encounter, run the core, encode the outcome with its content hash and timestamp.

mod encounter;

pub use encounter::check_identity;
pub mod json;
mod outcome;
pub mod sample;

use chrono::{DateTime, NaiveDate, Utc};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::core;
use crate::core::data::RuleSet;
use crate::proto::v1 as pb;

pub use outcome::{list_rules, outcome_to_proto};

/// Why a wire encounter cannot be validated at all (everything else is a reason in the
/// outcome).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncounterError {
    #[error("no encounter was sent")]
    MissingEncounter,
    #[error("encounter_id is missing")]
    MissingEncounterId,
    /// An identifier or code longer than any real one: not an encounter (and too long for a
    /// dedupe header).
    #[error("{field} is longer than {limit} bytes")]
    FieldTooLong { field: &'static str, limit: usize },
    /// A line break or other control character in the encounter_id: no real identifier has
    /// one, and it could not be sent in the outcome's `Nats-Msg-Id` header.
    #[error("{field} contains a control character")]
    ControlCharacter { field: &'static str },
    /// More entries than any real encounter has: the rules compare lines pairwise, so a
    /// request of thousands of lines would cost seconds of CPU and gigabytes of findings.
    #[error("{field} has more than {limit} entries")]
    TooManyEntries { field: &'static str, limit: usize },
}

impl EncounterError {
    /// The field path a client should fix.
    pub fn field(&self) -> &'static str {
        match self {
            EncounterError::MissingEncounter => "encounter",
            EncounterError::MissingEncounterId => "encounter.encounter_id",
            EncounterError::FieldTooLong { field, .. }
            | EncounterError::ControlCharacter { field }
            | EncounterError::TooManyEntries { field, .. } => field,
        }
    }
}

/// An encounter's billed services as the duplicate store sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledServices {
    /// The patient-day key: patient and date of service hashed, so no patient identifier is
    /// stored in clear.
    pub day_key: String,
    /// `(line index, procedure code)` of each billed line (units > 0, a code).
    pub lines: Vec<(usize, String)>,
}

/// Patient and date of service, trimmed; `None` without either (nothing to compare with).
fn patient_and_date(encounter: &pb::Encounter) -> Option<(&str, &str)> {
    let patient = encounter.patient_id.trim();
    let date = encounter.date_of_service.trim();
    (!patient.is_empty() && !date.is_empty()).then_some((patient, date))
}

/// `(line index, procedure code)` of each billed line (units > 0, a code), upper-cased.
fn billed_lines(encounter: &pb::Encounter) -> Vec<(usize, String)> {
    encounter
        .service_lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.units > 0 && !line.procedure_code.trim().is_empty())
        .map(|(index, line)| (index, line.procedure_code.trim().to_ascii_uppercase()))
        .collect()
}

/// `None` without a patient or a date of service (nothing to compare with).
pub fn billed_services(encounter: &pb::Encounter) -> Option<BilledServices> {
    let (patient, date) = patient_and_date(encounter)?;
    Some(BilledServices {
        day_key: format!(
            "day.{}",
            hex_sha256(format!("{patient}\u{1f}{date}").as_bytes())
        ),
        lines: billed_lines(encounter),
    })
}

/// The per-service keys of buckets written by earlier versions: patient, date of service and
/// code of each billed line, hashed. `(line index, key)`.
pub fn service_keys(encounter: &pb::Encounter) -> Vec<(usize, String)> {
    let Some((patient, date)) = patient_and_date(encounter) else {
        return Vec::new();
    };
    billed_lines(encounter)
        .into_iter()
        .map(|(index, code)| {
            let key = hex_sha256(format!("{patient}\u{1f}{date}\u{1f}{code}").as_bytes());
            (index, key)
        })
        .collect()
}

/// Hex SHA-256 of the encounter's protobuf encoding (deterministic: the contract's messages
/// have no maps, and prost writes fields in tag order).
pub fn content_hash(encounter: &pb::Encounter) -> String {
    hex_sha256(&encounter.encode_to_vec())
}

/// Lower-case hex SHA-256. Written out because `hex::encode` builds its string a `char` at a
/// time through an iterator (2 % of the JSON round trip's perf samples; one to four digests a
/// call).
fn hex_sha256(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(64);
    for byte in Sha256::digest(bytes) {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Converts, validates and encodes one encounter.
pub fn check_encounter(
    encounter: &pb::Encounter,
    rules: &RuleSet,
    as_of: NaiveDate,
    validated_at: DateTime<Utc>,
) -> Result<pb::Outcome, EncounterError> {
    check_encounter_with_prior(encounter, rules, as_of, validated_at, &[])
}

/// [`check_encounter`] with the services other encounters already had validated.
pub fn check_encounter_with_prior(
    encounter: &pb::Encounter,
    rules: &RuleSet,
    as_of: NaiveDate,
    validated_at: DateTime<Utc>,
    prior: &[core::PriorService],
) -> Result<pb::Outcome, EncounterError> {
    let domain = core::types::Encounter::try_from(encounter)?;
    let outcome = core::validate_with_prior(&domain, rules, as_of, prior);
    Ok(outcome_to_proto(
        outcome,
        &domain.encounter_id,
        content_hash(encounter),
        validated_at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_support::seed_visit_wire as seed;

    /// The content hash is part of every outcome's `Nats-Msg-Id`: a change of form would let a
    /// retry across an upgrade publish a second outcome, and tell consumers that stored it
    /// that every resubmission changed.
    #[test]
    fn the_content_hash_keeps_its_form() {
        assert_eq!(
            content_hash(&seed()),
            "b44c4d1f8e183c379893111a5d0bbd724adbf9f66869d637091d7329968988ba"
        );
    }

    /// The keys are stored: a change of form would lose every remembered service. The digests
    /// are SHA-256 of `patient ␟ date` and `patient ␟ date ␟ code` (␟ = U+001F).
    #[test]
    fn duplicate_store_keys_keep_their_form() {
        let mut visit = seed();
        visit.service_lines[0].procedure_code = " 97140 ".into();
        let billed = billed_services(&visit).unwrap();
        assert_eq!(
            billed.day_key,
            "day.066c15ad54ef0dfacb22f0def0c0fb6f67703de60b0b36096297390ade9f4957"
        );
        assert_eq!(
            billed.lines,
            [(0, "97140".to_owned()), (1, "97124".to_owned())]
        );
        assert_eq!(
            service_keys(&visit)[0],
            (
                0,
                "7c61d385399311b3524528175971b47c16580ca4d4b9c939a4aea0f1d91707bd".to_owned()
            )
        );
        // Lines without units are not billed; no patient or date, nothing to compare.
        visit.service_lines[1].units = 0;
        assert_eq!(billed_services(&visit).unwrap().lines.len(), 1);
        visit.patient_id = " ".into();
        assert_eq!(billed_services(&visit), None);
        assert!(service_keys(&visit).is_empty());
    }
}
