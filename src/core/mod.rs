//! The pure validation core: no I/O, no clock, no global state.
//!
//! [`validate`] runs every rule family over one encounter with the rule data in force and
//! grades what they find with the payer profile. Each family is one module with one entry
//! point, `check(&Visit, &mut Vec<Finding>)`.

pub mod claim_format;
pub mod data;
pub mod diagnosis;
pub mod documentation;
pub mod edits;
pub mod npi;
pub mod outcome;
pub mod reason;
pub mod therapy;
pub mod timed_units;
pub mod types;

#[cfg(test)]
pub(crate) mod test_support;

use chrono::NaiveDate;
use smallvec::SmallVec;

use data::{Icd10Selection, Profile, RuleSet, RuleSetting};
use outcome::{Claim, ClaimLine, Outcome, Status};
use reason::{Finding, Reason, Severity};
use types::Encounter;

/// A rule family's working list for one visit (lines, codes, diagnoses): on the stack up to
/// the size of a large visit (12 lines), so validating a visit does not allocate for it.
pub(crate) type VisitList<T> = SmallVec<[T; 12]>;

/// Everything a rule family may consult for one encounter.
pub struct Visit<'a> {
    pub encounter: &'a Encounter,
    pub rules: &'a RuleSet,
    pub profile: &'a Profile,
    /// The validation date (contract §9: the current UTC date unless overridden).
    pub as_of: NaiveDate,
    pub date_of_service: Option<NaiveDate>,
    pub icd10: Icd10Selection<'a>,
}

/// A service of this encounter that another encounter already had validated: the same
/// patient, date of service and code (found by the transport in its shared store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorService {
    pub line_index: usize,
    pub other_encounter_id: String,
}

/// Validates one encounter as of `as_of` with the rule data in `rules`.
pub fn validate<'a>(encounter: &'a Encounter, rules: &'a RuleSet, as_of: NaiveDate) -> Outcome<'a> {
    validate_with_prior(encounter, rules, as_of, &[])
}

/// [`validate`], also judging the services other encounters already had validated.
pub fn validate_with_prior<'a>(
    encounter: &'a Encounter,
    rules: &'a RuleSet,
    as_of: NaiveDate,
    prior: &[PriorService],
) -> Outcome<'a> {
    let date_of_service = encounter.date_of_service.date();
    let visit = Visit {
        encounter,
        rules,
        profile: rules.profiles().for_payer(encounter.payer.as_ref()),
        as_of,
        date_of_service,
        icd10: rules.icd10().select(date_of_service),
    };

    let mut findings = Vec::new();
    claim_format::check(&visit, &mut findings);
    diagnosis::check(&visit, &mut findings);
    let units = timed_units::check(&visit, &mut findings);
    edits::check(&visit, &mut findings);
    therapy::check(&visit, &mut findings);
    documentation::check(&visit, &mut findings);
    duplicates(&visit, prior, &mut findings);

    let reasons = grade(findings, &visit);
    let rejected = reasons.iter().any(|r| r.severity == Severity::Error);
    Outcome {
        status: if rejected {
            Status::Rejected
        } else {
            Status::Validated
        },
        claim: (!rejected).then(|| build_claim(encounter)),
        reasons,
        units,
        ruleset_version: rules.version_for(visit.icd10.set),
    }
}

/// DUPLICATE_SERVICE: the encounter itself is never a duplicate of itself.
fn duplicates(visit: &Visit<'_>, prior: &[PriorService], out: &mut Vec<Finding>) {
    for service in prior {
        if service.other_encounter_id == visit.encounter.encounter_id {
            continue;
        }
        let Some(line) = visit.encounter.service_lines.get(service.line_index) else {
            continue;
        };
        out.push(
            Finding::new(
                reason::ReasonCode::DuplicateService,
                format!("service_lines[{}].procedure_code", service.line_index),
                format!(
                    "{} for this patient on this date of service was already validated in another encounter.",
                    line.procedure_code
                ),
            )
            .expected("one encounter per patient, date of service and code")
            .actual(format!("also in encounter {}", service.other_encounter_id))
            .remedy("If both encounters describe the same visit, bill it once (correct the first encounter instead); if they are separate services, bill them on one claim with the right units or modifiers."),
        );
    }
}

/// Applies the profile's severity (dropping rules it turns off) and the catalogue's CARC and
/// source.
fn grade(findings: Vec<Finding>, visit: &Visit<'_>) -> Vec<Reason> {
    let catalogue = visit.rules.catalogue();
    findings
        .into_iter()
        .filter_map(|finding| {
            let severity = match visit.profile.setting(finding.code) {
                RuleSetting::On(severity) => severity,
                RuleSetting::Off => return None,
            };
            let entry = catalogue.entry(finding.code);
            Some(Reason {
                code: finding.code,
                severity,
                field: finding.field,
                message: finding.message,
                expected: finding.expected,
                actual: finding.actual,
                remedy: finding.remedy,
                carc: entry.carc.clone(),
                source: finding.source.unwrap_or_else(|| entry.source.clone()),
            })
        })
        .collect()
}

/// The billable lines exactly as submitted; a timed line with minutes but no units is a
/// documented service that is not billed (contract §9) and stays off the claim.
fn build_claim(encounter: &Encounter) -> Claim<'_> {
    let lines: Vec<ClaimLine<'_>> = encounter
        .service_lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.units > 0)
        .map(|(index, line)| ClaimLine {
            line_index: u32::try_from(index).unwrap_or(u32::MAX),
            procedure_code: &line.procedure_code,
            modifiers: &line.modifiers,
            units: line.units,
            diagnosis_pointers: &line.diagnosis_pointers,
            charge_cents: line.charge_cents,
        })
        .collect();
    Claim {
        encounter_id: &encounter.encounter_id,
        patient_id: &encounter.patient_id,
        // A validated encounter has a valid date of service; the fallback is never used.
        date_of_service: encounter.date_of_service.date().unwrap_or_default(),
        place_of_service: &encounter.place_of_service,
        payer: encounter.payer.as_ref(),
        rendering_provider_npi: encounter
            .rendering_provider
            .as_ref()
            .map_or("", |provider| provider.npi.as_str()),
        billing_provider_npi: &encounter.billing_provider_npi,
        diagnosis_codes: &encounter.diagnosis_codes,
        total_units: lines
            .iter()
            .fold(0u32, |sum, l| sum.saturating_add(l.units)),
        total_charge_cents: lines
            .iter()
            .fold(0i64, |sum, l| sum.saturating_add(l.charge_cents)),
        lines,
    }
}
