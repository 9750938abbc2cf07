//! Therapy rules: who may bill the code, the therapy modifiers GP/GO/GN, the assistant
//! modifiers CQ/CO, the KX threshold and the targeted medical review threshold.

use super::reason::{Finding, ReasonCode};
use super::types::{Discipline, ServiceLine, dollars};
use super::{Visit, VisitList};
use chrono::Datelike;

const THERAPY_MODIFIERS: [&str; 3] = ["GP", "GO", "GN"];

/// The plan-of-care modifier a discipline bills under (CMS Pub 100-04 Ch.5 §20.1; a
/// chiropractor's therapy codes carry GP, billing-rules §5). `None`: any of the three.
fn expected_therapy_modifier(discipline: Option<Discipline>) -> Option<&'static str> {
    match discipline? {
        Discipline::PhysicalTherapist
        | Discipline::PhysicalTherapistAssistant
        | Discipline::Chiropractor => Some("GP"),
        Discipline::OccupationalTherapist | Discipline::OccupationalTherapyAssistant => Some("GO"),
        Discipline::MassageTherapist | Discipline::Physician => None,
    }
}

fn is_assistant(discipline: Option<Discipline>) -> bool {
    matches!(
        discipline,
        Some(Discipline::PhysicalTherapistAssistant | Discipline::OccupationalTherapyAssistant)
    )
}

pub fn check(visit: &Visit<'_>, out: &mut Vec<Finding>) {
    let encounter = visit.encounter;
    let discipline = encounter
        .rendering_provider
        .as_ref()
        .and_then(|p| p.discipline);
    let procedures = visit.rules.procedures();
    for (index, line) in encounter.service_lines.iter().enumerate() {
        let code = line.procedure_code.as_str();
        let info = procedures.get(code);
        // Not on the claim, so neither claim modifiers nor who may bill it apply.
        if line.is_documented_only(info.map(|i| i.kind)) {
            continue;
        }
        if let Some(limit) = discipline.and_then(|d| visit.profile.discipline_limit(d))
            && !limit.may_bill.iter().any(|allowed| allowed == code)
            && !code.is_empty()
        {
            let who = limit.discipline.as_str();
            out.push(
                Finding::new(
                    ReasonCode::ProviderNotEligible,
                    format!("service_lines[{index}].procedure_code"),
                    format!("A {who} may not bill {code} to this payer."),
                )
                .expected(if limit.may_bill.is_empty() { "no codes for this discipline".to_owned() } else { limit.may_bill.join(", ") })
                .actual(format!("{code} by a {who}"))
                .remedy(format!("Bill {code} only when a PT, OT or physician furnished or supervised it as the payer requires; otherwise do not bill it to this payer (an ABN may let the patient pay)."))
                .source(limit.source.clone()),
            );
        }
        let Some(info) = info else {
            continue;
        };
        if info.always_therapy {
            check_therapy_modifier(index, line, discipline, out);
        }
        if info.always_therapy || info.kind == super::data::ProcedureKind::Timed {
            check_assistant(visit, index, line, discipline, out);
        }
    }
    check_thresholds(visit, discipline, out);
}

fn check_therapy_modifier(
    index: usize,
    line: &ServiceLine,
    discipline: Option<Discipline>,
    out: &mut Vec<Finding>,
) {
    let present: VisitList<&str> = THERAPY_MODIFIERS
        .into_iter()
        .filter(|m| line.has_modifier(m))
        .collect();
    let expected = expected_therapy_modifier(discipline);
    let field = || format!("service_lines[{index}].modifiers");
    let code = &line.procedure_code;
    match (present.as_slice(), expected) {
        ([], _) => out.push(
            Finding::new(ReasonCode::TherapyModifierMissing, field(), format!("{code} is an always-therapy code and needs the modifier of the plan of care it was furnished under."))
                .expected(expected.unwrap_or("GP, GO or GN"))
                .actual("none")
                .remedy(format!("Append {} to {code}.", expected.unwrap_or("GP (PT), GO (OT) or GN (SLP)"))),
        ),
        ([_, _, ..], _) => out.push(
            Finding::new(ReasonCode::TherapyModifierMismatch, field(), format!("{code} carries more than one of GP/GO/GN; a line belongs to one plan of care."))
                .expected(expected.unwrap_or("one of GP, GO, GN"))
                .actual(present.join(","))
                .remedy("Keep the modifier of the discipline whose plan of care the service was furnished under."),
        ),
        ([one], Some(expected)) if *one != expected => out.push(
            Finding::new(ReasonCode::TherapyModifierMismatch, field(), format!("{code} carries {one}, but the rendering discipline bills under {expected}."))
                .expected(expected)
                .actual(*one)
                .remedy(format!("Replace {one} with {expected}, or correct the rendering provider's discipline.")),
        ),
        _ => {}
    }
}

fn check_assistant(
    visit: &Visit<'_>,
    index: usize,
    line: &ServiceLine,
    discipline: Option<Discipline>,
    out: &mut Vec<Finding>,
) {
    let Some(date) = visit.date_of_service else {
        return;
    };
    let therapy = visit.rules.therapy();
    if date < therapy.assistant_required_from {
        return;
    }
    let (has_cq, has_co) = (line.has_modifier("CQ"), line.has_modifier("CO"));
    let occupational = line.has_modifier("GO")
        || matches!(
            discipline,
            Some(Discipline::OccupationalTherapist | Discipline::OccupationalTherapyAssistant)
        );
    let expected = if occupational { "CO" } else { "CQ" };
    let field = || format!("service_lines[{index}].modifiers");
    let code = &line.procedure_code;
    let share_over = u64::from(line.assistant_minutes) * 100
        > u64::from(line.minutes) * u64::from(therapy.assistant_de_minimis_percent);
    let assistant_renders = is_assistant(discipline);
    if (share_over || assistant_renders) && !has_cq && !has_co {
        let why = if assistant_renders {
            "an assistant is the rendering provider".to_owned()
        } else {
            format!(
                "the assistant furnished {} of its {} minutes, more than {}%",
                line.assistant_minutes, line.minutes, therapy.assistant_de_minimis_percent
            )
        };
        out.push(
            Finding::new(ReasonCode::AssistantModifierMissing, field(), format!("{code} needs {expected}: {why}."))
                .expected(expected)
                .actual(if line.modifiers.is_empty() { "none".to_owned() } else { line.modifiers.join(",") })
                .remedy(format!("Append {expected} to {code} (payment is 85% of the fee schedule for assistant services)."))
                .source(therapy.assistant_source.clone()),
        );
    }
    let mismatch = if has_cq && has_co {
        Some("CQ and CO are both on the line".to_owned())
    } else if has_cq && !line.has_modifier("GP") {
        Some("CQ (PTA) goes with GP".to_owned())
    } else if has_co && !line.has_modifier("GO") {
        Some("CO (OTA) goes with GO".to_owned())
    } else if (has_cq || has_co) && !assistant_renders && line.assistant_minutes == 0 {
        Some("no assistant minutes are documented on the line".to_owned())
    } else {
        None
    };
    if let Some(why) = mismatch {
        out.push(
            Finding::new(ReasonCode::AssistantModifierMismatch, field(), format!("The assistant modifier on {code} does not fit: {why}."))
                .expected(format!("{expected} with {}", if occupational { "GO" } else { "GP" }))
                .actual(line.modifiers.join(","))
                .remedy("Use CQ with GP for a PTA, CO with GO for an OTA, and only when the assistant furnished more than 10% of the service.")
                .source(therapy.assistant_source.clone()),
        );
    }
}

fn check_thresholds(visit: &Visit<'_>, discipline: Option<Discipline>, out: &mut Vec<Finding>) {
    let Some(date) = visit.date_of_service else {
        return;
    };
    let procedures = visit.rules.procedures();
    let lines: VisitList<(usize, &ServiceLine)> = visit
        .encounter
        .service_lines
        .iter()
        .enumerate()
        .filter(|(_, line)| {
            line.units > 0
                && procedures
                    .get(&line.procedure_code)
                    .is_some_and(|i| i.always_therapy)
        })
        .collect();
    if lines.is_empty() {
        return;
    }
    let claim_cents = lines.iter().fold(0i64, |sum, (_, line)| {
        sum.saturating_add(line.charge_cents.max(0))
    });
    let year_to_date = visit
        .encounter
        .documentation
        .as_ref()
        .map_or(0, |d| d.year_to_date_allowed_cents.max(0));
    let total = year_to_date.saturating_add(claim_cents);
    let occupational = match discipline {
        Some(Discipline::OccupationalTherapist | Discipline::OccupationalTherapyAssistant) => true,
        Some(Discipline::PhysicalTherapist | Discipline::PhysicalTherapistAssistant) => false,
        _ => lines.iter().any(|(_, line)| line.has_modifier("GO")),
    };
    let group = if occupational { "OT" } else { "PT and SLP" };
    let therapy = visit.rules.therapy();
    let kx_graded = [
        ReasonCode::KxModifierRequired,
        ReasonCode::KxModifierUnsupported,
    ]
    .iter()
    .any(|code| visit.profile.setting(*code) != super::data::RuleSetting::Off);
    if let Some(selection) = therapy.kx_for_year(date.year()) {
        let threshold = if occupational {
            selection.threshold.ot_cents
        } else {
            selection.threshold.pt_slp_cents
        };
        if !selection.covers_year && kx_graded {
            out.push(
                Finding::new(
                    ReasonCode::RuleDataNotCurrent,
                    "date_of_service",
                    format!(
                        "No KX threshold is loaded for {}; the {} amount ({}) was used.",
                        date.year(),
                        selection.threshold.year,
                        dollars(threshold)
                    ),
                )
                .expected(format!("the KX threshold of {}", date.year()))
                .actual(date.to_string())
                .remedy("Add the year's KX threshold to therapy.toml with its CMS source."),
            );
        }
        let basis = || {
            format!(
                "{} year to date plus {} on this claim = {} for {group}",
                dollars(year_to_date),
                dollars(claim_cents),
                dollars(total)
            )
        };
        for (index, line) in &lines {
            let field = || format!("service_lines[{index}].modifiers");
            if total > threshold && !line.has_modifier("KX") {
                out.push(
                    Finding::new(ReasonCode::KxModifierRequired, field(), format!("{}, above the {} KX threshold of {}.", basis(), selection.threshold.year, dollars(threshold)))
                        .expected("KX")
                        .actual(line.modifiers.join(","))
                        .remedy(format!("Append KX to {} if the record documents that therapy above the threshold is medically necessary; without KX Medicare denies the line.", line.procedure_code))
                        .source(selection.threshold.source.clone()),
                );
            } else if total <= threshold && line.has_modifier("KX") {
                out.push(
                    Finding::new(ReasonCode::KxModifierUnsupported, field(), format!("{}, not above the {} KX threshold of {}.", basis(), selection.threshold.year, dollars(threshold)))
                        .expected("no KX")
                        .actual("KX")
                        .remedy(format!("Remove KX from {} unless year-to-date amounts from other providers bring the total above the threshold.", line.procedure_code))
                        .source(selection.threshold.source.clone()),
                );
            }
        }
    }
    let (from, to) = therapy.medical_review_years;
    if date.year() >= from && total > therapy.medical_review_cents {
        out.push(
            Finding::new(
                ReasonCode::MedicalReviewThreshold,
                "documentation.year_to_date_allowed_cents",
                format!("{} for {group} this year passes the {} targeted medical review threshold.", dollars(total), dollars(therapy.medical_review_cents)),
            )
            .expected(format!("at most {}", dollars(therapy.medical_review_cents)))
            .actual(dollars(total))
            .remedy("Expect a targeted medical review: make sure the plan of care, progress reports and daily notes show why the therapy is necessary.")
            .source(therapy.medical_review_source.clone()),
        );
        if date.year() > to
            && visit.profile.setting(ReasonCode::MedicalReviewThreshold)
                != super::data::RuleSetting::Off
        {
            out.push(
                Finding::new(
                    ReasonCode::RuleDataNotCurrent,
                    "date_of_service",
                    format!("The medical review threshold is sourced through {to}; from then on it is indexed by the MEI and the {to} amount was used."),
                )
                .expected(format!("the medical review threshold of {}", date.year()))
                .actual(date.to_string())
                .remedy("Update therapy.toml [medical_review] with the CMS amount for the year."),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::reason::ReasonCode::*;
    use crate::core::reason::Severity::{Error, Warning};
    use crate::core::test_support::{Case, Expect::*, run_table};
    use crate::core::types::{DateField, Discipline, PayerKind};

    const MCPM_20_1: &str = "CMS Pub 100-04 Ch.5 §20.1 (billing-rules §5)";
    const CQ: &str = "CMS CQ/CO billing examples; 10% de minimis (billing-rules §5)";
    const KX: &str = "therapy.toml: 2025 KX threshold $2,410 (billing-rules §5)";

    fn discipline(e: &mut crate::core::types::Encounter, d: Discipline) {
        e.rendering_provider.as_mut().unwrap().discipline = Some(d);
    }

    #[test]
    fn therapy_modifiers() {
        run_table(&[
            Case {
                name: "GP on both lines",
                source: MCPM_20_1,
                change: |_| {},
                expect: Passes(TherapyModifierMissing),
            },
            Case {
                name: "no GP on 97124",
                source: MCPM_20_1,
                change: |e| e.service_lines[1].modifiers = vec!["59".into()],
                expect: Fails {
                    code: TherapyModifierMissing,
                    severity: Error,
                    field: "service_lines[1].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "commercial grades it as a warning",
                source: "rules/profiles.toml",
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                    e.service_lines[1].modifiers = vec!["59".into()];
                },
                expect: Fails {
                    code: TherapyModifierMissing,
                    severity: Warning,
                    field: "service_lines[1].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "GO from a physical therapist",
                source: MCPM_20_1,
                change: |e| e.service_lines[0].modifiers = vec!["GO".into()],
                expect: Fails {
                    code: TherapyModifierMismatch,
                    severity: Error,
                    field: "service_lines[0].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "GP and GO on one line",
                source: MCPM_20_1,
                change: |e| e.service_lines[0].modifiers = vec!["GP".into(), "GO".into()],
                expect: Fails {
                    code: TherapyModifierMismatch,
                    severity: Error,
                    field: "service_lines[0].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "a documented, unbilled 97140 line without GP",
                source: "contract §9: a timed line with minutes and 0 units is not on the claim",
                change: |e| {
                    e.service_lines[0].units = 0;
                    e.service_lines[0].modifiers.clear();
                },
                expect: Passes(TherapyModifierMissing),
            },
            Case {
                name: "a 97140 line with neither units nor minutes, without GP",
                source: "contract §9: UNITS_MISSING, and still a line to bill",
                change: |e| {
                    e.service_lines[0].units = 0;
                    e.service_lines[0].minutes = 0;
                    e.service_lines[0].modifiers.clear();
                },
                expect: Fails {
                    code: TherapyModifierMissing,
                    severity: Error,
                    field: "service_lines[0].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "GO from an occupational therapist",
                source: MCPM_20_1,
                change: |e| {
                    discipline(e, Discipline::OccupationalTherapist);
                    e.service_lines[0].modifiers = vec!["GO".into()];
                    e.service_lines[1].modifiers = vec!["GO".into(), "59".into()];
                },
                expect: Passes(TherapyModifierMismatch),
            },
        ]);
    }

    #[test]
    fn assistant_modifiers() {
        run_table(&[
            Case {
                name: "no assistant",
                source: CQ,
                change: |_| {},
                expect: Passes(AssistantModifierMissing),
            },
            Case {
                name: "assistant 2 of 25 minutes (8%)",
                source: CQ,
                change: |e| e.service_lines[1].assistant_minutes = 2,
                expect: Passes(AssistantModifierMissing),
            },
            Case {
                name: "assistant 10 of 25 minutes",
                source: CQ,
                change: |e| e.service_lines[1].assistant_minutes = 10,
                expect: Fails {
                    code: AssistantModifierMissing,
                    severity: Error,
                    field: "service_lines[1].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "assistant 10 of 25 minutes with CQ",
                source: CQ,
                change: |e| {
                    e.service_lines[1].assistant_minutes = 10;
                    e.service_lines[1].modifiers.push("CQ".into());
                },
                expect: Passes(AssistantModifierMissing),
            },
            Case {
                name: "a PTA renders without CQ",
                source: CQ,
                change: |e| discipline(e, Discipline::PhysicalTherapistAssistant),
                expect: Fails {
                    code: AssistantModifierMissing,
                    severity: Error,
                    field: "service_lines[0].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "before CQ/CO existed (2020-01-01)",
                source: CQ,
                change: |e| {
                    e.date_of_service = DateField::parse("2019-12-31");
                    e.service_lines[1].assistant_minutes = 20;
                },
                expect: Passes(AssistantModifierMissing),
            },
            Case {
                name: "CQ without assistant minutes",
                source: CQ,
                change: |e| e.service_lines[0].modifiers.push("CQ".into()),
                expect: Fails {
                    code: AssistantModifierMismatch,
                    severity: Error,
                    field: "service_lines[0].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "CO with GP",
                source: CQ,
                change: |e| {
                    e.service_lines[0].assistant_minutes = 10;
                    e.service_lines[0].modifiers.push("CO".into());
                },
                expect: Fails {
                    code: AssistantModifierMismatch,
                    severity: Error,
                    field: "service_lines[0].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "commercial: not a CQ payer",
                source: "rules/profiles.toml",
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                    e.service_lines[1].assistant_minutes = 20;
                },
                expect: Passes(AssistantModifierMissing),
            },
        ]);
    }

    #[test]
    fn kx_and_medical_review_thresholds() {
        run_table(&[
            Case {
                name: "$860 + $115 this year",
                source: KX,
                change: |_| {},
                expect: Passes(KxModifierRequired),
            },
            Case {
                name: "$2,300 + $115 passes $2,410",
                source: KX,
                change: |e| e.documentation.as_mut().unwrap().year_to_date_allowed_cents = 230_000,
                expect: Fails {
                    code: KxModifierRequired,
                    severity: Error,
                    field: "service_lines[0].modifiers",
                    carc: "CO-119",
                },
            },
            Case {
                name: "$2,295 + $115 = $2,410 exactly is not above",
                source: "contract §9: strictly greater",
                change: |e| e.documentation.as_mut().unwrap().year_to_date_allowed_cents = 229_500,
                expect: Passes(KxModifierRequired),
            },
            Case {
                name: "above with KX",
                source: KX,
                change: |e| {
                    e.documentation.as_mut().unwrap().year_to_date_allowed_cents = 230_000;
                    e.service_lines
                        .iter_mut()
                        .for_each(|l| l.modifiers.push("KX".into()));
                },
                expect: Passes(KxModifierRequired),
            },
            Case {
                name: "KX below the threshold",
                source: KX,
                change: |e| e.service_lines[0].modifiers.push("KX".into()),
                expect: Fails {
                    code: KxModifierUnsupported,
                    severity: Warning,
                    field: "service_lines[0].modifiers",
                    carc: "",
                },
            },
            Case {
                name: "2024 threshold $2,330",
                source: "therapy.toml 2024 (Noridian)",
                change: |e| {
                    e.date_of_service = DateField::parse("2024-12-02");
                    e.documentation.as_mut().unwrap().year_to_date_allowed_cents = 225_000;
                },
                expect: Fails {
                    code: KxModifierRequired,
                    severity: Error,
                    field: "service_lines[1].modifiers",
                    carc: "CO-119",
                },
            },
            Case {
                name: "2020 has no amount: 2019's is used",
                source: "contract §9 (data in force)",
                change: |e| e.date_of_service = DateField::parse("2020-06-01"),
                expect: Fails {
                    code: RuleDataNotCurrent,
                    severity: Warning,
                    field: "date_of_service",
                    carc: "",
                },
            },
            Case {
                name: "commercial: no KX",
                source: "rules/profiles.toml",
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                    e.documentation.as_mut().unwrap().year_to_date_allowed_cents = 900_000;
                },
                expect: Passes(KxModifierRequired),
            },
            Case {
                name: "$2,950 + $115 passes $3,000",
                source: "therapy.toml medical_review (MM11055)",
                change: |e| {
                    e.documentation.as_mut().unwrap().year_to_date_allowed_cents = 295_000;
                    e.service_lines
                        .iter_mut()
                        .for_each(|l| l.modifiers.push("KX".into()));
                },
                expect: Fails {
                    code: MedicalReviewThreshold,
                    severity: Warning,
                    field: "documentation.year_to_date_allowed_cents",
                    carc: "",
                },
            },
        ]);
    }

    /// After the medical review threshold's last sourced year its amount still applies, with a
    /// RULE_DATA_NOT_CURRENT warning of its own (therapy.toml [medical_review] to_year; contract
    /// §9: the newest data applies, with a warning).
    #[test]
    fn medical_review_after_its_last_sourced_year() {
        use crate::core::test_support::{rules, seed_visit};
        let to_year = rules().therapy().medical_review_years.1;
        for (year, expected) in [(to_year, 0), (to_year + 1, 1)] {
            let mut visit = seed_visit();
            let date = chrono::NaiveDate::from_ymd_opt(year, 3, 2).unwrap();
            visit.date_of_service = DateField::Valid(date);
            visit
                .documentation
                .as_mut()
                .unwrap()
                .year_to_date_allowed_cents = 295_000;
            visit
                .service_lines
                .iter_mut()
                .for_each(|l| l.modifiers.push("KX".into()));
            let outcome = crate::core::validate(&visit, rules(), date);
            let count = |code, about: &str| {
                outcome
                    .reasons
                    .iter()
                    .filter(|r| r.code == code && r.message.contains(about))
                    .count()
            };
            assert_eq!(count(MedicalReviewThreshold, ""), 1, "{year}");
            assert_eq!(
                count(RuleDataNotCurrent, "medical review threshold"),
                expected,
                "{year}"
            );
        }
    }

    #[test]
    fn provider_eligibility() {
        let fails = |field| Fails {
            code: ProviderNotEligible,
            severity: Error,
            field,
            carc: "CO-185",
        };
        run_table(&[
            Case {
                name: "physical therapist",
                source: "billing-rules §7",
                change: |_| {},
                expect: Passes(ProviderNotEligible),
            },
            Case {
                name: "massage therapist billing Medicare",
                source: "billing-rules §7",
                change: |e| discipline(e, Discipline::MassageTherapist),
                expect: fails("service_lines[0].procedure_code"),
            },
            Case {
                name: "chiropractor billing 97124",
                source: "billing-rules §5 (NGS)",
                change: |e| discipline(e, Discipline::Chiropractor),
                expect: fails("service_lines[1].procedure_code"),
            },
            Case {
                name: "chiropractor billing CMT only",
                source: "billing-rules §5 (NGS)",
                change: |e| {
                    discipline(e, Discipline::Chiropractor);
                    e.service_lines.truncate(1);
                    e.service_lines[0].procedure_code = "98940".into();
                    e.service_lines[0].modifiers.clear();
                },
                expect: Passes(ProviderNotEligible),
            },
            Case {
                name: "massage therapist billing a commercial plan",
                source: "billing-rules §7 (commercial payers vary)",
                change: |e| {
                    discipline(e, Discipline::MassageTherapist);
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                },
                expect: Passes(ProviderNotEligible),
            },
        ]);
    }
}
