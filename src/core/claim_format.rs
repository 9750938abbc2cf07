//! Claim-format rules: required fields, dates, timely filing, NPIs, place of service,
//! procedure codes, modifiers and units present.

use chrono::{Days, Months, NaiveDate};

use super::Visit;
use super::data::{
    FilingLimit, FilingSpan, ProcedureKind, is_well_formed_modifier, is_well_formed_procedure,
};
use super::npi::is_valid_npi;
use super::reason::{Finding, ReasonCode};
use super::types::{DateField, ServiceLine};

/// At most four modifiers per line (X12 837P SV101-3..6).
const MAX_MODIFIERS: usize = 4;

pub fn check(visit: &Visit<'_>, out: &mut Vec<Finding>) {
    let encounter = visit.encounter;
    if encounter.patient_id.is_empty() {
        out.push(missing(
            "patient_id",
            "patient identifier",
            "Send the patient's identifier from the EMR (an opaque id, never a name or SSN).",
        ));
    }
    check_date_of_service(visit, out);

    if encounter.place_of_service.is_empty() {
        out.push(missing(
            "place_of_service",
            "place of service",
            "Send the two-digit CMS place-of-service code, e.g. 11 for an office.",
        ));
    } else if !visit
        .rules
        .places_of_service()
        .is_valid(&encounter.place_of_service, visit.date_of_service)
    {
        out.push(
            Finding::new(
                ReasonCode::PlaceOfServiceInvalid,
                "place_of_service",
                "The place of service is not a CMS place-of-service code in force on the date of service.",
            )
            .expected("a two-digit CMS POS code, e.g. 11 (office) or 22 (on-campus outpatient hospital)")
            .actual(&encounter.place_of_service)
            .remedy("Correct the place of service to the CMS code for where the visit took place."),
        );
    }

    match &encounter.payer {
        None => out.push(missing(
            "payer",
            "payer",
            "Send the payer with its kind (medicare, medicaid or commercial) and payer_id.",
        )),
        Some(payer) if payer.kind.is_none() => out.push(missing(
            "payer.kind",
            "payer kind",
            "Set payer.kind to PAYER_KIND_MEDICARE, PAYER_KIND_MEDICAID or PAYER_KIND_COMMERCIAL.",
        )),
        Some(_) => {}
    }

    match &encounter.rendering_provider {
        None => out.push(missing(
            "rendering_provider",
            "rendering provider",
            "Send the rendering provider's NPI and discipline.",
        )),
        Some(provider) => {
            check_npi(
                "rendering_provider.npi",
                "rendering provider",
                &provider.npi,
                true,
                out,
            );
            if provider.discipline.is_none() {
                out.push(missing(
                    "rendering_provider.discipline",
                    "rendering provider's discipline",
                    "Set the discipline of the clinician who furnished the care (e.g. DISCIPLINE_PHYSICAL_THERAPIST).",
                ));
            }
        }
    }
    check_npi(
        "billing_provider_npi",
        "billing provider",
        &encounter.billing_provider_npi,
        true,
        out,
    );

    if let Some(documentation) = &encounter.documentation {
        if let Some(plan) = &documentation.plan_of_care {
            check_npi(
                "documentation.plan_of_care.certifying_npi",
                "certifying physician/NPP",
                &plan.certifying_npi,
                false,
                out,
            );
            check_date_format(
                "documentation.plan_of_care.start_date",
                &plan.start_date,
                out,
            );
            check_date_format("documentation.plan_of_care.end_date", &plan.end_date, out);
            check_date_format(
                "documentation.plan_of_care.certified_date",
                &plan.certified_date,
                out,
            );
        }
        for (index, goal) in documentation.goals.iter().enumerate() {
            check_date_format(
                &format!("documentation.goals[{index}].target_date"),
                &goal.target_date,
                out,
            );
        }
        for (index, measure) in documentation.objective_measures.iter().enumerate() {
            check_date_format(
                &format!("documentation.objective_measures[{index}].measured_on"),
                &measure.measured_on,
                out,
            );
        }
    }

    if encounter.service_lines.is_empty() {
        out.push(missing(
            "service_lines",
            "service line",
            "Send at least one service line with its procedure code and units.",
        ));
    }
    for (index, line) in encounter.service_lines.iter().enumerate() {
        check_line(visit, index, line, out);
    }
}

fn missing(field: &str, what: &str, remedy: &str) -> Finding {
    Finding::new(
        ReasonCode::RequiredFieldMissing,
        field,
        format!("The {what} is missing."),
    )
    .expected("a value")
    .remedy(remedy)
}

fn check_date_of_service(visit: &Visit<'_>, out: &mut Vec<Finding>) {
    let date_of_service = match &visit.encounter.date_of_service {
        DateField::Missing => {
            out.push(missing(
                "date_of_service",
                "date of service",
                "Send the date the service was furnished, as YYYY-MM-DD.",
            ));
            return;
        }
        DateField::Invalid(raw) => {
            out.push(invalid_date("date_of_service", raw));
            return;
        }
        DateField::Valid(date) => *date,
    };
    if date_of_service > visit.as_of {
        out.push(
            Finding::new(
                ReasonCode::DateOfServiceInFuture,
                "date_of_service",
                "The date of service is after the validation date: a service is billed after it is furnished.",
            )
            .expected(format!("on or before {}", visit.as_of))
            .actual(date_of_service.to_string())
            .remedy("Correct the date of service, or submit the claim on or after that date."),
        );
        return;
    }
    if let Some(limit) = &visit.profile.filing_limit
        && let Some(deadline) = filing_deadline(date_of_service, limit)
        && visit.as_of > deadline
    {
        out.push(
            Finding::new(
                ReasonCode::TimelyFilingExpired,
                "date_of_service",
                format!(
                    "The filing limit for this payer ({}) ended on {deadline}.",
                    describe_limit(limit)
                ),
            )
            .expected(format!("filed on or before {deadline}"))
            .actual(format!("validated on {}", visit.as_of))
            .remedy("Do not bill the patient; check whether a timely-filing exception applies (e.g. CMS Pub 100-04 Ch.1 §70.7) and file with proof, or write the charge off.")
            .source(limit.source.clone()),
        );
    }
}

/// The last day a claim may be filed. A span in months keeps the day of the month, clamped
/// to the month's end: a 29 February service with a one-year limit is due by 28 February
/// (billing-rules §9).
pub fn filing_deadline(date_of_service: NaiveDate, limit: &FilingLimit) -> Option<NaiveDate> {
    match limit.span {
        FilingSpan::Months(months) => date_of_service.checked_add_months(Months::new(months)),
        FilingSpan::Days(days) => date_of_service.checked_add_days(Days::new(u64::from(days))),
    }
}

fn describe_limit(limit: &FilingLimit) -> String {
    match limit.span {
        FilingSpan::Months(12) => "one calendar year after the date of service".into(),
        FilingSpan::Months(months) => format!("{months} months after the date of service"),
        FilingSpan::Days(days) => format!("{days} days after the date of service"),
    }
}

fn invalid_date(field: &str, raw: &str) -> Finding {
    Finding::new(
        ReasonCode::DateInvalid,
        field,
        "The date is not a real calendar date in YYYY-MM-DD form.",
    )
    .expected("YYYY-MM-DD, e.g. 2025-03-14")
    .actual(raw)
    .remedy("Correct the date to the YYYY-MM-DD form with a real month and day.")
}

fn check_date_format(field: &str, date: &DateField, out: &mut Vec<Finding>) {
    if let DateField::Invalid(raw) = date {
        out.push(invalid_date(field, raw));
    }
}

fn check_npi(field: &str, whose: &str, npi: &str, required: bool, out: &mut Vec<Finding>) {
    if npi.is_empty() {
        if required {
            out.push(missing(
                field,
                &format!("{whose} NPI"),
                &format!("Send the {whose}'s 10-digit NPI (look it up in NPPES)."),
            ));
        }
        return;
    }
    if !is_valid_npi(npi) {
        out.push(
            Finding::new(
                ReasonCode::NpiInvalid,
                field,
                format!("The {whose} NPI is not 10 digits with a valid check digit."),
            )
            .expected("10 digits passing the Luhn check with prefix 80840")
            .actual(npi)
            .remedy(format!(
                "Correct the {whose} NPI from NPPES; a typo in one digit fails the check digit."
            )),
        );
    }
}

fn check_line(visit: &Visit<'_>, index: usize, line: &ServiceLine, out: &mut Vec<Finding>) {
    let code = line.procedure_code.as_str();
    let kind = if code.is_empty() {
        out.push(missing(
            &format!("service_lines[{index}].procedure_code"),
            "procedure code",
            "Send the CPT/HCPCS code of the service, e.g. 97124.",
        ));
        None
    } else if !is_well_formed_procedure(code) {
        out.push(
            Finding::new(
                ReasonCode::ProcedureCodeInvalid,
                format!("service_lines[{index}].procedure_code"),
                "The procedure code is not a well-formed CPT or HCPCS code.",
            )
            .expected("5 characters: CPT (e.g. 97124), 4 digits + F/T, or HCPCS letter + 4 digits (e.g. G0283)")
            .actual(code)
            .remedy("Correct the procedure code from the current CPT/HCPCS code set."),
        );
        None
    } else {
        let kind = visit.rules.procedures().kind(code);
        if kind.is_none() {
            out.push(
                Finding::new(
                    ReasonCode::ProcedureCodeUnknown,
                    format!("service_lines[{index}].procedure_code"),
                    format!("{code} is not in claimlint's rule data, so its units and edits were not checked."),
                )
                .actual(code)
                .remedy("Check the units and edits of this code by hand, or add the code to rules/procedures.toml with its source."),
            );
        }
        kind
    };

    check_modifiers(visit, index, line, out);

    // Contract §9: a timed line with minutes but no units is documented, not billed.
    let unbilled_timed = kind == Some(ProcedureKind::Timed) && line.minutes > 0;
    if line.units == 0 && !unbilled_timed && !code.is_empty() {
        let remedy = match kind {
            Some(ProcedureKind::Untimed) => format!(
                "Bill {code} as 1 unit: it is a service-based code, one unit per date of service."
            ),
            _ => "Enter the units billed for this line (and the minutes, for a timed code)."
                .to_owned(),
        };
        out.push(
            Finding::new(
                ReasonCode::UnitsMissing,
                format!("service_lines[{index}].units"),
                format!("The {code} line bills no units."),
            )
            .expected("at least 1")
            .actual("0")
            .remedy(remedy),
        );
    }
}

fn check_modifiers(visit: &Visit<'_>, index: usize, line: &ServiceLine, out: &mut Vec<Finding>) {
    if line.modifiers.len() > MAX_MODIFIERS {
        out.push(
            Finding::new(
                ReasonCode::ModifierInvalid,
                format!("service_lines[{index}].modifiers"),
                "A claim line carries at most four modifiers.",
            )
            .expected(format!("at most {MAX_MODIFIERS}"))
            .actual(line.modifiers.len().to_string())
            .remedy("Keep the modifiers payment depends on (therapy GP/GO/GN, CQ/CO, KX, 59/X) and drop the others."),
        );
    }
    for (position, modifier) in line.modifiers.iter().enumerate() {
        let field = format!("service_lines[{index}].modifiers[{position}]");
        if !is_well_formed_modifier(modifier) {
            out.push(
                Finding::new(
                    ReasonCode::ModifierInvalid,
                    field,
                    "A modifier is two letters or digits.",
                )
                .expected("2 characters, e.g. GP or 59")
                .actual(modifier.as_str())
                .remedy("Correct or remove the modifier."),
            );
        } else if line.modifiers[..position].contains(modifier) {
            out.push(
                Finding::new(
                    ReasonCode::ModifierInvalid,
                    field,
                    format!("Modifier {modifier} appears twice on the line."),
                )
                .expected("each modifier once")
                .actual(modifier.as_str())
                .remedy(format!("Remove the second {modifier}.")),
            );
        } else if !visit.rules.modifiers().is_known(modifier) {
            out.push(
                Finding::new(ReasonCode::ModifierInvalid, field, format!("Modifier {modifier} is not one claimlint knows for therapy claims."))
                    .expected("a modifier from rules/modifiers.toml, e.g. GP, GO, CQ, KX, 59, XS")
                    .actual(modifier.as_str())
                    .remedy("Correct the modifier, or add it to rules/modifiers.toml with its source if the payer accepts it."),
            );
        }
    }
}
