//! The edge between wire types (proto, JSON) and the core: parse, don't validate.
//!
//! Every transport (CLI, gRPC, NATS) goes through [`check_encounter`]: convert the wire
//! encounter, run the core, encode the outcome with its content hash and timestamp.

mod encounter;

pub use encounter::check_identity;
pub mod json;
mod outcome;

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
}

impl EncounterError {
    /// The field path a client should fix.
    pub fn field(&self) -> &'static str {
        match self {
            EncounterError::MissingEncounter => "encounter",
            EncounterError::MissingEncounterId => "encounter.encounter_id",
            EncounterError::FieldTooLong { field, .. } => field,
        }
    }
}

/// The key of one service in the duplicate store: patient, date of service and code of each
/// billed line, hashed so no patient identifier is stored in clear. `(line index, key)`.
pub fn service_keys(encounter: &pb::Encounter) -> Vec<(usize, String)> {
    let patient = encounter.patient_id.trim();
    let date = encounter.date_of_service.trim();
    if patient.is_empty() || date.is_empty() {
        return Vec::new();
    }
    encounter
        .service_lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.units > 0 && !line.procedure_code.trim().is_empty())
        .map(|(index, line)| {
            let code = line.procedure_code.trim().to_ascii_uppercase();
            let digest = Sha256::digest(format!("{patient}\u{1f}{date}\u{1f}{code}").as_bytes());
            (index, hex::encode(digest))
        })
        .collect()
}

/// Hex SHA-256 of the encounter's protobuf encoding (deterministic: the contract's messages
/// have no maps, and prost writes fields in tag order).
pub fn content_hash(encounter: &pb::Encounter) -> String {
    hex::encode(Sha256::digest(encounter.encode_to_vec()))
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
