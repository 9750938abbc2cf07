//! The edge between wire types (proto, JSON) and the core: parse, don't validate.
//!
//! Every transport (CLI, gRPC, NATS) goes through [`check_encounter`]: convert the wire
//! encounter, run the core, encode the outcome with its content hash and timestamp.

mod encounter;
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
}

impl EncounterError {
    /// The field path a client should fix.
    pub fn field(&self) -> &'static str {
        match self {
            EncounterError::MissingEncounter => "encounter",
            EncounterError::MissingEncounterId => "encounter.encounter_id",
        }
    }
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
    let domain = core::types::Encounter::try_from(encounter)?;
    let outcome = core::validate(&domain, rules, as_of);
    Ok(outcome_to_proto(
        outcome,
        &domain.encounter_id,
        content_hash(encounter),
        validated_at,
    ))
}
