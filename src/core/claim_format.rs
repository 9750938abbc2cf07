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
                || "documentation.plan_of_care.start_date".to_owned(),
                &plan.start_date,
                out,
            );
            check_date_format(
                || "documentation.plan_of_care.end_date".to_owned(),
                &plan.end_date,
                out,
            );
            check_date_format(
                || "documentation.plan_of_care.certified_date".to_owned(),
                &plan.certified_date,
                out,
            );
        }
        for (index, goal) in documentation.goals.iter().enumerate() {
            check_date_format(
                || format!("documentation.goals[{index}].target_date"),
                &goal.target_date,
                out,
            );
        }
        for (index, measure) in documentation.objective_measures.iter().enumerate() {
            check_date_format(
                || format!("documentation.objective_measures[{index}].measured_on"),
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

/// `field` is built only for a finding: most dates are valid.
fn check_date_format(field: impl FnOnce() -> String, date: &DateField, out: &mut Vec<Finding>) {
    if let DateField::Invalid(raw) = date {
        out.push(invalid_date(&field(), raw));
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

    if line.units == 0 && !line.is_documented_only(kind) && !code.is_empty() {
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
        let field = || format!("service_lines[{index}].modifiers[{position}]");
        if !is_well_formed_modifier(modifier) {
            out.push(
                Finding::new(
                    ReasonCode::ModifierInvalid,
                    field(),
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
                    field(),
                    format!("Modifier {modifier} appears twice on the line."),
                )
                .expected("each modifier once")
                .actual(modifier.as_str())
                .remedy(format!("Remove the second {modifier}.")),
            );
        } else if !visit.rules.modifiers().is_known(modifier) {
            out.push(
                Finding::new(ReasonCode::ModifierInvalid, field(), format!("Modifier {modifier} is not one claimlint knows for therapy claims."))
                    .expected("a modifier from rules/modifiers.toml, e.g. GP, GO, CQ, KX, 59, XS")
                    .actual(modifier.as_str())
                    .remedy("Correct the modifier, or add it to rules/modifiers.toml with its source if the payer accepts it."),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reason::Severity::{Error, Warning};
    use crate::core::test_support::{Case, Expect::*, run_table};
    use crate::core::types::PayerKind;

    const CONTRACT: &str = "contract §3";

    fn date(raw: &str) -> DateField {
        DateField::parse(raw)
    }

    #[test]
    fn required_fields() {
        use ReasonCode::RequiredFieldMissing as R;
        let fails = |field| Fails {
            code: R,
            severity: Error,
            field,
            carc: "CO-16",
        };
        run_table(&[
            Case {
                name: "complete visit",
                source: CONTRACT,
                change: |_| {},
                expect: Passes(R),
            },
            Case {
                name: "no patient",
                source: CONTRACT,
                change: |e| e.patient_id.clear(),
                expect: fails("patient_id"),
            },
            Case {
                name: "no date of service",
                source: CONTRACT,
                change: |e| e.date_of_service = date(""),
                expect: fails("date_of_service"),
            },
            Case {
                name: "no place of service",
                source: CONTRACT,
                change: |e| e.place_of_service.clear(),
                expect: fails("place_of_service"),
            },
            Case {
                name: "no payer",
                source: CONTRACT,
                change: |e| e.payer = None,
                expect: fails("payer"),
            },
            Case {
                name: "payer kind unspecified",
                source: CONTRACT,
                change: |e| e.payer.as_mut().unwrap().kind = None,
                expect: fails("payer.kind"),
            },
            Case {
                name: "no rendering provider",
                source: CONTRACT,
                change: |e| e.rendering_provider = None,
                expect: fails("rendering_provider"),
            },
            Case {
                name: "no discipline",
                source: CONTRACT,
                change: |e| e.rendering_provider.as_mut().unwrap().discipline = None,
                expect: fails("rendering_provider.discipline"),
            },
            Case {
                name: "no rendering NPI",
                source: CONTRACT,
                change: |e| e.rendering_provider.as_mut().unwrap().npi.clear(),
                expect: fails("rendering_provider.npi"),
            },
            Case {
                name: "no billing NPI",
                source: CONTRACT,
                change: |e| e.billing_provider_npi.clear(),
                expect: fails("billing_provider_npi"),
            },
            Case {
                name: "no service line",
                source: CONTRACT,
                change: |e| e.service_lines.clear(),
                expect: fails("service_lines"),
            },
            Case {
                name: "no procedure code",
                source: CONTRACT,
                change: |e| e.service_lines[1].procedure_code.clear(),
                expect: fails("service_lines[1].procedure_code"),
            },
            Case {
                name: "no diagnosis",
                source: CONTRACT,
                change: |e| e.diagnosis_codes.clear(),
                expect: fails("diagnosis_codes"),
            },
        ]);
    }

    #[test]
    fn dates() {
        run_table(&[
            Case {
                name: "real date",
                source: "contract §2",
                change: |_| {},
                expect: Passes(ReasonCode::DateInvalid),
            },
            Case {
                name: "30 February",
                source: "contract §2",
                change: |e| e.date_of_service = date("2025-02-30"),
                expect: Fails {
                    code: ReasonCode::DateInvalid,
                    severity: Error,
                    field: "date_of_service",
                    carc: "CO-16",
                },
            },
            Case {
                name: "US order",
                source: "contract §2",
                change: |e| e.date_of_service = date("06/16/2025"),
                expect: Fails {
                    code: ReasonCode::DateInvalid,
                    severity: Error,
                    field: "date_of_service",
                    carc: "CO-16",
                },
            },
            Case {
                name: "plan certified on a bad date",
                source: "contract §2",
                change: |e| {
                    e.documentation
                        .as_mut()
                        .unwrap()
                        .plan_of_care
                        .as_mut()
                        .unwrap()
                        .certified_date = date("2025-06-31")
                },
                expect: Fails {
                    code: ReasonCode::DateInvalid,
                    severity: Error,
                    field: "documentation.plan_of_care.certified_date",
                    carc: "CO-16",
                },
            },
            Case {
                name: "goal target date malformed",
                source: "contract §2",
                change: |e| {
                    e.documentation.as_mut().unwrap().goals[1].target_date = date("2025-7-28")
                },
                expect: Fails {
                    code: ReasonCode::DateInvalid,
                    severity: Error,
                    field: "documentation.goals[1].target_date",
                    carc: "CO-16",
                },
            },
            Case {
                name: "service on the validation date",
                source: CONTRACT,
                change: |e| e.date_of_service = date("2025-06-20"),
                expect: Passes(ReasonCode::DateOfServiceInFuture),
            },
            Case {
                name: "service tomorrow",
                source: CONTRACT,
                change: |e| e.date_of_service = date("2025-06-21"),
                expect: Fails {
                    code: ReasonCode::DateOfServiceInFuture,
                    severity: Error,
                    field: "date_of_service",
                    carc: "CO-16",
                },
            },
        ]);
    }

    #[test]
    fn timely_filing() {
        // As of 2025-06-20. Medicare: one calendar year (42 CFR 424.44, billing-rules §9).
        use ReasonCode::TimelyFilingExpired as R;
        let fails = Fails {
            code: R,
            severity: Error,
            field: "date_of_service",
            carc: "CO-29",
        };
        run_table(&[
            Case {
                name: "medicare, 12 months to the day",
                source: "42 CFR 424.44",
                change: |e| e.date_of_service = date("2024-06-20"),
                expect: Passes(R),
            },
            Case {
                name: "medicare, one day past a year",
                source: "42 CFR 424.44",
                change: |e| e.date_of_service = date("2024-06-19"),
                expect: fails,
            },
            Case {
                name: "medicaid, one day past 12 months",
                source: "42 CFR 447.45(d)(1)",
                change: |e| {
                    e.date_of_service = date("2024-06-19");
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Medicaid);
                },
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "date_of_service",
                    carc: "CO-29",
                },
            },
            Case {
                name: "commercial, no limit shipped",
                source: "rules/profiles.toml",
                change: |e| {
                    e.date_of_service = date("2023-01-10");
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                },
                expect: Passes(R),
            },
        ]);
    }

    #[test]
    fn leap_day_service_is_due_by_28_february() {
        // billing-rules §9: a Feb 29 DOS must be filed by Feb 28 of the next year.
        let limit = FilingLimit {
            span: FilingSpan::Months(12),
            source: String::new(),
        };
        let dos = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(
            filing_deadline(dos, &limit),
            NaiveDate::from_ymd_opt(2025, 2, 28)
        );
        let days = FilingLimit {
            span: FilingSpan::Days(90),
            source: String::new(),
        };
        assert_eq!(
            filing_deadline(dos, &days),
            NaiveDate::from_ymd_opt(2024, 5, 29)
        );
    }

    #[test]
    fn npis() {
        use ReasonCode::NpiInvalid as R;
        let source = "billing-rules §9 (Luhn with 80840)";
        run_table(&[
            Case {
                name: "valid NPIs",
                source,
                change: |_| {},
                expect: Passes(R),
            },
            Case {
                name: "rendering check digit",
                source,
                change: |e| e.rendering_provider.as_mut().unwrap().npi = "1234567890".into(),
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "rendering_provider.npi",
                    carc: "CO-207",
                },
            },
            Case {
                name: "billing 9 digits",
                source,
                change: |e| e.billing_provider_npi = "155859879".into(),
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "billing_provider_npi",
                    carc: "CO-207",
                },
            },
            Case {
                name: "certifying NPI with a letter",
                source,
                change: |e| {
                    e.documentation
                        .as_mut()
                        .unwrap()
                        .plan_of_care
                        .as_mut()
                        .unwrap()
                        .certifying_npi = "11987654X4".into()
                },
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "documentation.plan_of_care.certifying_npi",
                    carc: "CO-207",
                },
            },
        ]);
    }

    #[test]
    fn place_of_service() {
        use ReasonCode::PlaceOfServiceInvalid as R;
        let source = "CMS POS code set";
        run_table(&[
            Case {
                name: "office",
                source,
                change: |_| {},
                expect: Passes(R),
            },
            Case {
                name: "CORF",
                source,
                change: |e| e.place_of_service = "62".into(),
                expect: Passes(R),
            },
            Case {
                name: "unassigned 98",
                source,
                change: |e| e.place_of_service = "98".into(),
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "place_of_service",
                    carc: "CO-58",
                },
            },
            Case {
                name: "one digit",
                source,
                change: |e| e.place_of_service = "1".into(),
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "place_of_service",
                    carc: "CO-58",
                },
            },
            Case {
                name: "POS 10 before it existed (2022-01-01)",
                source,
                change: |e| {
                    e.place_of_service = "10".into();
                    e.date_of_service = date("2021-12-31");
                },
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "place_of_service",
                    carc: "CO-58",
                },
            },
        ]);
    }

    #[test]
    fn procedure_codes() {
        let source = "billing-rules §9";
        run_table(&[
            Case {
                name: "known CPT",
                source,
                change: |_| {},
                expect: Passes(ReasonCode::ProcedureCodeInvalid),
            },
            Case {
                name: "four digits",
                source,
                change: |e| e.service_lines[0].procedure_code = "9714".into(),
                expect: Fails {
                    code: ReasonCode::ProcedureCodeInvalid,
                    severity: Error,
                    field: "service_lines[0].procedure_code",
                    carc: "CO-181",
                },
            },
            Case {
                name: "letter inside",
                source,
                change: |e| e.service_lines[1].procedure_code = "97I24".into(),
                expect: Fails {
                    code: ReasonCode::ProcedureCodeInvalid,
                    severity: Error,
                    field: "service_lines[1].procedure_code",
                    carc: "CO-181",
                },
            },
            Case {
                name: "known HCPCS",
                source,
                change: |e| e.service_lines[0].procedure_code = "G0283".into(),
                expect: Passes(ReasonCode::ProcedureCodeUnknown),
            },
            Case {
                name: "well formed, not in rule data",
                source: "rules/procedures.toml",
                change: |e| e.service_lines[0].procedure_code = "99213".into(),
                expect: Fails {
                    code: ReasonCode::ProcedureCodeUnknown,
                    severity: Warning,
                    field: "service_lines[0].procedure_code",
                    carc: "",
                },
            },
        ]);
    }

    #[test]
    fn modifiers() {
        use ReasonCode::ModifierInvalid as R;
        let source = "X12 837P SV101; rules/modifiers.toml";
        run_table(&[
            Case {
                name: "GP and 59",
                source,
                change: |_| {},
                expect: Passes(R),
            },
            Case {
                name: "four known",
                source,
                change: |e| {
                    e.service_lines[1].modifiers =
                        vec!["GP".into(), "59".into(), "KX".into(), "LT".into()]
                },
                expect: Passes(R),
            },
            Case {
                name: "five",
                source,
                change: |e| {
                    e.service_lines[1].modifiers = vec![
                        "GP".into(),
                        "59".into(),
                        "KX".into(),
                        "LT".into(),
                        "25".into(),
                    ]
                },
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "service_lines[1].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "malformed",
                source,
                change: |e| e.service_lines[0].modifiers.push("G".into()),
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "service_lines[0].modifiers[1]",
                    carc: "CO-4",
                },
            },
            Case {
                name: "unknown",
                source,
                change: |e| e.service_lines[0].modifiers.push("ZZ".into()),
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "service_lines[0].modifiers[1]",
                    carc: "CO-4",
                },
            },
            Case {
                name: "duplicate",
                source,
                change: |e| e.service_lines[1].modifiers.push("GP".into()),
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "service_lines[1].modifiers[2]",
                    carc: "CO-4",
                },
            },
        ]);
    }

    #[test]
    fn units_missing() {
        use ReasonCode::UnitsMissing as R;
        let source = "contract §9; billing-rules §9";
        run_table(&[
            Case {
                name: "billed lines",
                source,
                change: |_| {},
                expect: Passes(R),
            },
            Case {
                name: "timed line documented but not billed",
                source,
                change: |e| e.service_lines[0].units = 0,
                expect: Passes(R),
            },
            Case {
                name: "timed line with neither units nor minutes",
                source,
                change: |e| {
                    e.service_lines[0].units = 0;
                    e.service_lines[0].minutes = 0;
                },
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "service_lines[0].units",
                    carc: "CO-16",
                },
            },
            Case {
                name: "service-based code with 0 units",
                source,
                change: |e| {
                    let mut evaluation = e.service_lines[0].clone();
                    evaluation.procedure_code = "97164".into();
                    evaluation.units = 0;
                    evaluation.minutes = 20;
                    e.service_lines.push(evaluation);
                },
                expect: Fails {
                    code: R,
                    severity: Error,
                    field: "service_lines[2].units",
                    carc: "CO-16",
                },
            },
        ]);
    }

    #[test]
    fn severity_and_switches_come_from_the_profile() {
        // A payer override graded in data: NPI_INVALID downgraded, PROCEDURE_CODE_UNKNOWN off,
        // a 90-day filing limit. Nothing in rule code changes.
        let profiles = r#"
[meta]
source = "test"
effective_from = "2019-01-01"
[profile.medicare]
unit_method = "cms_total_time"
unit_method_source = "test"
[profile.medicaid]
unit_method = "cms_total_time"
unit_method_source = "test"
[profile.commercial]
unit_method = "ama_per_code"
unit_method_source = "test"
[payer."ACME"]
base = "commercial"
filing_limit_days = 90
filing_limit_source = "ACME provider contract"
rules = { NPI_INVALID = "warning", PROCEDURE_CODE_UNKNOWN = "off", MODIFIER_59_UNSUPPORTED = "off" }
"#;
        let rules = crate::core::test_support::rules_with("profiles.toml", profiles);
        let mut encounter = crate::core::test_support::seed_visit();
        encounter.payer.as_mut().unwrap().payer_id = "ACME".into();
        encounter.rendering_provider.as_mut().unwrap().npi = "1234567890".into();
        encounter.service_lines[0].procedure_code = "99213".into();
        encounter.service_lines[0].techniques.clear();
        let outcome = crate::core::validate(&encounter, &rules, crate::core::test_support::as_of());
        assert_eq!(
            outcome.status,
            crate::core::outcome::Status::Validated,
            "{:#?}",
            outcome.reasons
        );
        assert_eq!(outcome.reasons.len(), 1, "{:#?}", outcome.reasons);
        assert_eq!(outcome.reasons[0].code, ReasonCode::NpiInvalid);
        assert_eq!(outcome.reasons[0].severity, Warning);

        encounter.date_of_service = date("2025-03-21");
        let outcome = crate::core::validate(&encounter, &rules, crate::core::test_support::as_of());
        let late = outcome
            .reasons
            .iter()
            .find(|r| r.code == ReasonCode::TimelyFilingExpired)
            .unwrap();
        assert_eq!(late.source, "ACME provider contract");
        assert_eq!(late.expected, "filed on or before 2025-06-19");
        // Another payer of the same kind keeps the shipped grading.
        encounter.payer.as_mut().unwrap().payer_id = "OTHER".into();
        let outcome = crate::core::validate(&encounter, &rules, crate::core::test_support::as_of());
        assert_eq!(outcome.status, crate::core::outcome::Status::Rejected);
    }
}
