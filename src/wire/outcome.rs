//! core `Outcome` → proto `Outcome`, and the rule catalogue → `ListRulesResponse`.

use chrono::{DateTime, Utc};

use crate::core::data::{RuleSet, RuleSetting};
use crate::core::outcome::{self as core, Status};
use crate::core::reason::Severity;
use crate::core::types::{PayerKind, UnitMethod};
use crate::proto::v1 as pb;

pub fn outcome_to_proto(
    outcome: core::Outcome<'_>,
    encounter_id: &str,
    content_hash: String,
    validated_at: DateTime<Utc>,
) -> pb::Outcome {
    pb::Outcome {
        encounter_id: encounter_id.to_owned(),
        status: match outcome.status {
            Status::Validated => pb::Status::Validated,
            Status::Rejected => pb::Status::Rejected,
        } as i32,
        reasons: outcome
            .reasons
            .into_iter()
            .map(|reason| pb::Reason {
                code: reason.code.as_str().to_owned(),
                severity: severity(reason.severity) as i32,
                field: reason.field,
                message: reason.message,
                expected: reason.expected,
                actual: reason.actual,
                remedy: reason.remedy,
                carc: reason.carc,
                source: reason.source,
            })
            .collect(),
        claim: outcome.claim.map(claim),
        units: outcome.units.map(|units| pb::UnitSummary {
            method: unit_method(units.method) as i32,
            total_timed_minutes: units.total_timed_minutes,
            allowed_timed_units: units.allowed_timed_units,
            billed_timed_units: units.billed_timed_units,
            lines: units
                .lines
                .into_iter()
                .map(|line| pb::UnitLine {
                    line_index: line.line_index,
                    procedure_code: line.procedure_code.to_owned(),
                    expected_units_min: line.expected_units_min,
                    expected_units_max: line.expected_units_max,
                    minutes: line.minutes,
                    billed_units: line.billed_units,
                })
                .collect(),
        }),
        ruleset_version: outcome.ruleset_version.to_owned(),
        validated_at: Some(pbjson_types::Timestamp {
            seconds: validated_at.timestamp(),
            nanos: i32::try_from(validated_at.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        content_hash,
    }
}

fn claim(claim: core::Claim<'_>) -> pb::Claim {
    pb::Claim {
        encounter_id: claim.encounter_id.to_owned(),
        patient_id: claim.patient_id.to_owned(),
        date_of_service: claim.date_of_service.to_string(),
        place_of_service: claim.place_of_service.to_owned(),
        // The claim always names its payer, empty when the encounter sent none.
        payer: Some(pb::Payer {
            payer_id: claim
                .payer
                .map_or_else(String::new, |payer| payer.payer_id.clone()),
            kind: match claim.payer.and_then(|payer| payer.kind) {
                Some(PayerKind::Medicare) => pb::PayerKind::Medicare,
                Some(PayerKind::Medicaid) => pb::PayerKind::Medicaid,
                Some(PayerKind::Commercial) => pb::PayerKind::Commercial,
                None => pb::PayerKind::Unspecified,
            } as i32,
        }),
        rendering_provider_npi: claim.rendering_provider_npi.to_owned(),
        billing_provider_npi: claim.billing_provider_npi.to_owned(),
        diagnosis_codes: claim.diagnosis_codes.to_vec(),
        lines: claim
            .lines
            .into_iter()
            .map(|line| pb::ClaimLine {
                line_index: line.line_index,
                procedure_code: line.procedure_code.to_owned(),
                modifiers: line.modifiers.to_vec(),
                units: line.units,
                diagnosis_pointers: line.diagnosis_pointers.to_vec(),
                charge_cents: line.charge_cents,
            })
            .collect(),
        total_units: claim.total_units,
        total_charge_cents: claim.total_charge_cents,
    }
}

fn severity(severity: Severity) -> pb::Severity {
    match severity {
        Severity::Error => pb::Severity::Error,
        Severity::Warning => pb::Severity::Warning,
    }
}

fn unit_method(method: UnitMethod) -> pb::UnitMethod {
    match method {
        UnitMethod::CmsTotalTime => pb::UnitMethod::CmsTotalTime,
        UnitMethod::AmaPerCode => pb::UnitMethod::AmaPerCode,
    }
}

/// The catalogue with each rule's grading per profile, and the versions of the loaded tables.
pub fn list_rules(rules: &RuleSet) -> pb::ListRulesResponse {
    let profiles = rules.profiles().all();
    pb::ListRulesResponse {
        rules: rules
            .catalogue()
            .entries()
            .iter()
            .map(|entry| pb::RuleInfo {
                code: entry.code.as_str().to_owned(),
                description: entry.description.clone(),
                carc: entry.carc.clone(),
                source: entry.source.clone(),
                severities: profiles
                    .iter()
                    .map(|profile| {
                        let setting = profile.setting(entry.code);
                        pb::ProfileSeverity {
                            profile: profile.name.clone(),
                            severity: match setting {
                                RuleSetting::On(level) => severity(level),
                                RuleSetting::Off => pb::Severity::Unspecified,
                            } as i32,
                            enabled: setting != RuleSetting::Off,
                        }
                    })
                    .collect(),
            })
            .collect(),
        ruleset_version: rules.version(),
        data: rules
            .tables()
            .iter()
            .map(|table| pb::RuleDataVersion {
                table: table.table.clone(),
                version: table.version.clone(),
                source: table.source.clone(),
                effective_from: table.effective_from.to_string(),
                effective_to: table
                    .effective_to
                    .map(|date| date.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}
