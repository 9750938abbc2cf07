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

/// What one validation found. The claim and the unit summary borrow the encounter's codes and
/// identifiers instead of copying them (the transport copies once, into its wire types), and
/// the version borrows the rule data.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<'a> {
    pub status: Status,
    /// Errors (only when rejected) and warnings, in the order the rules found them.
    pub reasons: Vec<Reason>,
    /// Set when validated.
    pub claim: Option<Claim<'a>>,
    pub units: Option<UnitSummary<'a>>,
    pub ruleset_version: &'a str,
}

/// The claim ready for billing: exactly the submitted codes, units and modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim<'a> {
    pub encounter_id: &'a str,
    pub patient_id: &'a str,
    pub date_of_service: NaiveDate,
    pub place_of_service: &'a str,
    pub payer: Option<&'a Payer>,
    pub rendering_provider_npi: &'a str,
    pub billing_provider_npi: &'a str,
    pub diagnosis_codes: &'a [String],
    pub lines: Vec<ClaimLine<'a>>,
    pub total_units: u32,
    pub total_charge_cents: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimLine<'a> {
    /// Index of the service line in the encounter.
    pub line_index: u32,
    pub procedure_code: &'a str,
    pub modifiers: &'a [String],
    pub units: u32,
    pub diagnosis_pointers: &'a [u32],
    pub charge_cents: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitSummary<'a> {
    pub method: UnitMethod,
    pub total_timed_minutes: u32,
    pub allowed_timed_units: u32,
    pub billed_timed_units: u32,
    pub lines: Vec<UnitLine<'a>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitLine<'a> {
    pub line_index: u32,
    pub procedure_code: &'a str,
    pub expected_units_min: u32,
    pub expected_units_max: u32,
    pub minutes: u32,
    pub billed_units: u32,
}
