//! What a validation produces.

use chrono::NaiveDate;

use super::reason::Reason;
use super::types::{Payer, UnitMethod};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Validated,
    Rejected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Validated => "validated",
            Status::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    /// Errors (only when rejected) and warnings, in the order the rules found them.
    pub reasons: Vec<Reason>,
    /// Set when validated.
    pub claim: Option<Claim>,
    pub units: Option<UnitSummary>,
    pub ruleset_version: String,
}

/// The claim ready for billing: exactly the submitted codes, units and modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub encounter_id: String,
    pub patient_id: String,
    pub date_of_service: NaiveDate,
    pub place_of_service: String,
    pub payer: Payer,
    pub rendering_provider_npi: String,
    pub billing_provider_npi: String,
    pub diagnosis_codes: Vec<String>,
    pub lines: Vec<ClaimLine>,
    pub total_units: u32,
    pub total_charge_cents: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimLine {
    /// Index of the service line in the encounter.
    pub line_index: u32,
    pub procedure_code: String,
    pub modifiers: Vec<String>,
    pub units: u32,
    pub diagnosis_pointers: Vec<u32>,
    pub charge_cents: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitSummary {
    pub method: UnitMethod,
    pub total_timed_minutes: u32,
    pub allowed_timed_units: u32,
    pub billed_timed_units: u32,
    pub lines: Vec<UnitLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitLine {
    pub line_index: u32,
    pub procedure_code: String,
    pub expected_units_min: u32,
    pub expected_units_max: u32,
    pub minutes: u32,
    pub billed_units: u32,
}
