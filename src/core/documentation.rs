//! Medical necessity and documentation: diagnosis support, necessity, goals, objective
//! measures, techniques, body regions, plan of care, progress reports and signature. Every
//! number and list comes from `documentation.toml` or the payer profile.

use chrono::Days;

use super::data::{DiagnosisPolicy, normalize_icd10};
use super::reason::{Finding, ReasonCode};
use super::types::{DateField, Documentation, ServiceLine};
use super::{Visit, VisitList};

pub fn check(visit: &Visit<'_>, out: &mut Vec<Finding>) {
    let lines = &visit.encounter.service_lines;
    for (index, line) in lines.iter().enumerate() {
        check_diagnosis_support(visit, index, line, out);
        check_techniques(visit, index, line, out);
        check_body_region(visit, index, line, out);
    }
    // The visit-level rules are about therapy under a plan of care.
    let procedures = visit.rules.procedures();
    let therapy = lines.iter().any(|line| {
        procedures
            .get(&line.procedure_code)
            .is_some_and(|info| info.always_therapy)
    });
    if !therapy {
        return;
    }
    let empty = Documentation::default();
    let documentation = visit.encounter.documentation.as_ref().unwrap_or(&empty);
    check_necessity_goals_measures(visit, documentation, out);
    check_plan_of_care(visit, documentation, out);
    if !documentation.therapist_signed {
        out.push(
            Finding::new(ReasonCode::SignatureMissing, "documentation.therapist_signed", "The treatment note is not signed.")
                .expected("signed with the clinician's credentials")
                .actual("unsigned")
                .remedy("Sign the daily note with your name and credentials (PT, OT, PTA, OTA) before the claim goes out."),
        );
    }
}

/// The diagnoses a line points to, without the dot; invalid pointers are skipped (they are
/// reported by the diagnosis rules).
fn pointed_diagnoses<'a>(visit: &'a Visit<'_>, line: &'a ServiceLine) -> VisitList<&'a str> {
    let codes = &visit.encounter.diagnosis_codes;
    line.diagnosis_pointers
        .iter()
        .filter_map(|&pointer| codes.get(usize::try_from(pointer).ok()?.checked_sub(1)?))
        .map(String::as_str)
        .filter(|code| normalize_icd10(code).is_some())
        .collect()
}

fn matches_prefix(code: &str, policy: &DiagnosisPolicy) -> bool {
    policy
        .diagnosis_prefixes
        .iter()
        .any(|prefix| starts_with_ignoring_dots(code, prefix))
}

/// `code` without its dots starts with `prefix` (no copy of the code is made).
fn starts_with_ignoring_dots(code: &str, prefix: &str) -> bool {
    let mut bare = code.bytes().filter(|&b| b != b'.');
    prefix.bytes().all(|p| bare.next() == Some(p))
}

fn check_diagnosis_support(
    visit: &Visit<'_>,
    index: usize,
    line: &ServiceLine,
    out: &mut Vec<Finding>,
) {
    let code = line.procedure_code.as_str();
    let pointed = pointed_diagnoses(visit, line);
    if pointed.is_empty() {
        return;
    }
    let field = || format!("service_lines[{index}].diagnosis_pointers");
    let listed = || pointed.join(", ");
    // A payer's own list of supporting diagnoses, where it has one, decides.
    if let Some(policy) = visit
        .profile
        .supporting_diagnoses
        .iter()
        .find(|p| p.procedure == code)
    {
        if !pointed
            .iter()
            .any(|diagnosis| matches_prefix(diagnosis, policy))
        {
            out.push(
                Finding::new(ReasonCode::DiagnosisNotSupporting, field(), format!("None of the diagnoses this {code} line points to ({}) is on the payer's list of diagnoses that support {code}.", listed()))
                    .expected(format!("a diagnosis starting with one of {}", policy.diagnosis_prefixes.join(", ")))
                    .actual(listed())
                    .remedy(format!("Point the {code} line to the documented condition it treats, if it is on the payer's list; otherwise the payer will not cover {code}."))
                    .source(policy.source.clone()),
            );
        }
        return;
    }
    let documentation = visit.rules.documentation();
    for policy in documentation
        .not_supporting
        .iter()
        .filter(|p| p.procedure == code)
    {
        if pointed
            .iter()
            .all(|diagnosis| matches_prefix(diagnosis, policy))
        {
            out.push(
                Finding::new(ReasonCode::DiagnosisNotSupporting, field(), format!("Every diagnosis this {code} line points to ({}) is a wellness, screening, counselling or stress code that cannot support {code} on its own.", listed()))
                    .expected(format!("a diagnosis of the condition {code} treats (e.g. muscle spasm, contracture, pain with loss of motion)"))
                    .actual(listed())
                    .remedy(format!("Point the {code} line to the diagnosed condition that makes skilled treatment necessary; massage for relaxation or wellness is not billable."))
                    .source(policy.source.clone()),
            );
        }
    }
}

fn check_techniques(visit: &Visit<'_>, index: usize, line: &ServiceLine, out: &mut Vec<Finding>) {
    let documentation = visit.rules.documentation();
    let code = line.procedure_code.as_str();
    if let Some(entry) = documentation.techniques_of(code)
        && entry.requires_technique
        && !line
            .techniques
            .iter()
            .flatten()
            .any(|t| entry.techniques.contains(t))
    {
        let names: Vec<&str> = entry.techniques.iter().map(|t| t.as_str()).collect();
        out.push(
            Finding::new(ReasonCode::MassageTechniqueMissing, format!("service_lines[{index}].techniques"), format!("The {code} line does not say which massage techniques were used."))
                .expected(format!("one of {}", names.join(", ")))
                .actual("none")
                .remedy(format!("Add the techniques to the note, e.g. \"effleurage and petrissage to the lumbar paraspinals\" (one of {}).", names.join(", ")))
                .source(entry.source.clone()),
        );
    }
    for (position, technique) in line.techniques.iter().enumerate() {
        let Some(technique) = technique else { continue };
        // A malformed code is reported as such; its techniques cannot be judged against it.
        // (The list is collected only for a finding.)
        if documentation.codes_of(*technique).next().is_none()
            || documentation.codes_of(*technique).any(|c| c == code)
            || !super::data::is_well_formed_procedure(code)
        {
            continue;
        }
        let belongs: Vec<&str> = documentation.codes_of(*technique).collect();
        out.push(
            Finding::new(
                ReasonCode::TechniqueCodeMismatch,
                format!("service_lines[{index}].techniques[{position}]"),
                format!(
                    "{} is documented on {code}, but it is reported with {}.",
                    capitalize(technique.as_str()),
                    belongs.join(" or ")
                ),
            )
            .expected(format!("techniques of {code}"))
            .actual(technique.as_str())
            .remedy(format!(
                "Bill the {} time under {}, or correct the technique documented for {code}.",
                technique.as_str(),
                belongs.join(" or ")
            )),
        );
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn check_body_region(visit: &Visit<'_>, index: usize, line: &ServiceLine, out: &mut Vec<Finding>) {
    let documentation = visit.rules.documentation();
    let code = line.procedure_code.as_str();
    if documentation.needs_body_region(code)
        && !line.body_regions.iter().any(|r| r.region.is_some())
    {
        out.push(
            Finding::new(ReasonCode::BodyRegionMissing, format!("service_lines[{index}].body_regions"), format!("The {code} line does not name the body region treated."))
                .expected("at least one region, with laterality for paired parts")
                .actual("none")
                .remedy(format!("Record the region treated by {code} (e.g. lumbar, right shoulder); payers use it to tell 97124 and 97140 apart.")),
        );
    }
}

fn check_necessity_goals_measures(
    visit: &Visit<'_>,
    documentation: &Documentation,
    out: &mut Vec<Finding>,
) {
    if !documentation.has_medical_necessity && documentation.functional_limitation_count == 0 {
        out.push(
            Finding::new(ReasonCode::MedicalNecessityMissing, "documentation.medical_necessity", "The note does not say why skilled treatment is needed.")
                .expected("a necessity statement or a functional limitation")
                .actual("none")
                .remedy("State the condition, the deficit it causes and why it needs a therapist's skill, e.g. \"muscle spasm limits sitting to 20 minutes; massage reduces spasm before exercise\"."),
        );
    }
    if documentation.goals.is_empty() {
        out.push(
            Finding::new(ReasonCode::TreatmentGoalsMissing, "documentation.goals", "The plan names no treatment goals.")
                .expected("at least one goal")
                .actual("none")
                .remedy("Add measurable goals with target dates, e.g. \"shoulder flexion 90 degrees within 4 weeks\"."),
        );
    }
    for (index, goal) in documentation.goals.iter().enumerate() {
        let missing = match (goal.has_target, &goal.target_date) {
            (false, DateField::Missing) => Some("a measurable target and a target date"),
            (false, _) => Some("a measurable target"),
            (true, DateField::Missing) => Some("a target date"),
            _ => None,
        };
        if let Some(missing) = missing {
            out.push(
                Finding::new(ReasonCode::TreatmentGoalNotMeasurable, format!("documentation.goals[{index}]"), format!("The goal lacks {missing}."))
                    .expected("a measurable target and a target date")
                    .actual(format!("no {missing}"))
                    .remedy("Write the goal with a number and a date, e.g. \"pain 3/10 or less by 2025-07-28\"."),
            );
        }
    }
    if documentation.objective_measures.is_empty() {
        out.push(
            Finding::new(ReasonCode::ObjectiveMeasuresMissing, "documentation.objective_measures", "The note records no objective measure.")
                .expected("range of motion, pain, strength or a functional score")
                .actual("none")
                .remedy("Record at least one measure with its baseline, e.g. shoulder range of motion 70 degrees (baseline), pain 8/10."),
        );
    }
    let rules = visit.rules.documentation();
    for (index, measure) in documentation.objective_measures.iter().enumerate() {
        let Some(kind) = measure.kind else {
            out.push(
                Finding::new(
                    ReasonCode::RequiredFieldMissing,
                    format!("documentation.objective_measures[{index}].kind"),
                    "The measure does not say what it measures.",
                )
                .expected("a measure kind, e.g. MEASURE_KIND_PAIN_SCALE_0_10")
                .remedy("Set the kind of the measure."),
            );
            continue;
        };
        let Some(scale) = rules.scale(kind) else {
            continue;
        };
        for (name, value) in [
            ("value", Some(measure.value)),
            ("baseline", measure.baseline),
        ] {
            let Some(value) = value else { continue };
            if !(scale.min..=scale.max).contains(&value) {
                out.push(
                    Finding::new(
                        ReasonCode::ObjectiveMeasureOutOfRange,
                        format!("documentation.objective_measures[{index}].{name}"),
                        format!("A {} of {value} is outside its scale.", kind.as_str()),
                    )
                    .expected(format!("{} to {}", scale.min, scale.max))
                    .actual(value.to_string())
                    .remedy("Correct the recorded value (check the unit and the scale used).")
                    .source(scale.source.clone()),
                );
            }
        }
    }
}

fn check_plan_of_care(visit: &Visit<'_>, documentation: &Documentation, out: &mut Vec<Finding>) {
    let rules = visit.rules.documentation();
    let Some(plan) = documentation
        .plan_of_care
        .as_ref()
        .filter(|p| p.start_date != DateField::Missing)
    else {
        out.push(
            Finding::new(ReasonCode::PlanOfCareMissing, "documentation.plan_of_care", "Therapy is billed without a plan of care.")
                .expected("a plan of care with its start date")
                .actual("none")
                .remedy("Attach the plan of care (diagnoses, long-term goals, type, amount, duration and frequency) with its start date and certification."),
        );
        return;
    };
    if let (Some(date), Some(start)) = (visit.date_of_service, plan.start_date.date()) {
        let period_end =
            start.checked_add_days(Days::new(u64::from(rules.certification_period_days)));
        let end = plan.end_date.date();
        let (expired, why) = if date < start {
            (
                true,
                format!("the date of service is before the plan starts ({start})"),
            )
        } else if let Some(end) = end.filter(|end| date > *end) {
            (true, format!("the plan ended on {end}"))
        } else if let Some(period_end) = period_end.filter(|period_end| date > *period_end) {
            (
                true,
                format!(
                    "the certification period ended {} days after the start of care, on {period_end}",
                    rules.certification_period_days
                ),
            )
        } else {
            (false, String::new())
        };
        if expired {
            out.push(
                Finding::new(ReasonCode::PlanOfCareExpired, "documentation.plan_of_care", format!("The visit is not covered by the plan of care: {why}."))
                    .expected(format!("a date of service within the plan and within {} days of its start", rules.certification_period_days))
                    .actual(date.to_string())
                    .remedy("Have the physician/NPP recertify an updated plan of care covering this date, then bill.")
                    .source(rules.certification_period_source.clone()),
            );
        }
        match plan.certified_date.date() {
            None => out.push(
                Finding::new(ReasonCode::PlanOfCareNotCertified, "documentation.plan_of_care.certified_date", "The plan of care has no certification date.")
                    .expected("the date the physician/NPP signed the plan")
                    .actual("none")
                    .remedy("Get the plan signed and dated by the physician/NPP and record the certification date.")
                    .source(rules.certification_due_source.clone()),
            ),
            Some(certified) => {
                let due = start.checked_add_days(Days::new(u64::from(rules.certification_due_days)));
                if due.is_some_and(|due| certified > due) && !plan.has_delayed_certification_reason {
                    out.push(
                        Finding::new(
                            ReasonCode::PlanOfCareNotCertified,
                            "documentation.plan_of_care.certified_date",
                            format!("The plan was certified more than {} days after the start of care, with no reason for the delay.", rules.certification_due_days),
                        )
                        .expected(format!("on or before {}", due.map(|d| d.to_string()).unwrap_or_default()))
                        .actual(certified.to_string())
                        .remedy("Document the reason for the delayed certification (MBPM §220.1.3 D) with the signed plan.")
                        .source(rules.certification_due_source.clone()),
                    );
                }
            }
        }
    }
    let days = documentation.treatment_days_since_progress_report;
    if days > rules.progress_report_max_days {
        out.push(
            Finding::new(
                ReasonCode::ProgressReportOverdue,
                "documentation.treatment_days_since_progress_report",
                format!("This is treatment day {days} since the last progress report; one is due at least every {} treatment days.", rules.progress_report_max_days),
            )
            .expected(format!("at most {}", rules.progress_report_max_days))
            .actual(days.to_string())
            .remedy("Have the therapist write a progress report (progress toward each goal, plan, goal changes) before billing this visit.")
            .source(rules.progress_report_source.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::core::reason::ReasonCode::*;
    use crate::core::reason::Severity::{Error, Warning};
    use crate::core::test_support::{Case, Expect::*, as_of, rules_with, run_table, seed_visit};
    use crate::core::types::{DateField, Documentation, PayerKind, Technique};

    const MBPM: &str = "billing-rules §6 (MBPM Pub 100-02 Ch.15 §220)";

    #[test]
    fn payer_prefixes_match_codes_without_their_dots() {
        for (code, prefix, matches) in [
            ("M62.838", "M62", true),
            ("M62.838", "M6283", true),
            ("M62.838", "M62838", true),
            ("M62.838", "M628381", false),
            ("M62.838", "M63", false),
            ("M6", "M62", false),
            ("Z00.00", "Z00", true),
        ] {
            assert_eq!(
                super::starts_with_ignoring_dots(code, prefix),
                matches,
                "{code} {prefix}"
            );
        }
    }

    fn docs(e: &mut crate::core::types::Encounter) -> &mut Documentation {
        e.documentation.as_mut().unwrap()
    }

    fn plan(e: &mut crate::core::types::Encounter) -> &mut crate::core::types::PlanOfCare {
        docs(e).plan_of_care.as_mut().unwrap()
    }

    #[test]
    fn diagnosis_support() {
        let fails = Fails {
            code: DiagnosisNotSupporting,
            severity: Error,
            field: "service_lines[1].diagnosis_pointers",
            carc: "CO-11",
        };
        run_table(&[
            Case {
                name: "97124 points to low back pain and spasm",
                source: "billing-rules §7",
                change: |_| {},
                expect: Passes(DiagnosisNotSupporting),
            },
            Case {
                name: "only diagnosis Z00.00",
                source: "billing-rules §7; issue 4",
                change: |e| {
                    e.diagnosis_codes = vec!["Z00.00".into()];
                    e.service_lines
                        .iter_mut()
                        .for_each(|l| l.diagnosis_pointers = vec![1]);
                },
                expect: Fails {
                    code: DiagnosisNotSupporting,
                    severity: Error,
                    field: "service_lines[1].diagnosis_pointers",
                    carc: "CO-11",
                },
            },
            Case {
                name: "stress (Z73.3) and counselling (Z71.89) only",
                source: "billing-rules §7 (relaxation, stress)",
                change: |e| {
                    e.diagnosis_codes[1] = "Z73.3".into();
                    e.diagnosis_codes[2] = "Z71.89".into();
                },
                expect: fails,
            },
            Case {
                name: "a wellness code beside a supporting one",
                source: "billing-rules §7",
                change: |e| e.diagnosis_codes[1] = "Z13.89".into(),
                expect: Passes(DiagnosisNotSupporting),
            },
            Case {
                name: "97140 has no such policy (pointing only to a wellness code)",
                source: "rules/documentation.toml",
                change: |e| {
                    e.diagnosis_codes[0] = "Z00.00".into();
                    e.service_lines[0].diagnosis_pointers = vec![1];
                },
                expect: Passes(DiagnosisNotSupporting),
            },
        ]);
    }

    #[test]
    fn a_payers_own_supporting_list_decides() {
        let profiles = "[meta]\nsource = \"t\"\neffective_from = \"2019-01-01\"\n[profile.medicare]\nunit_method = \"cms_total_time\"\nunit_method_source = \"t\"\n[profile.medicaid]\nunit_method = \"cms_total_time\"\nunit_method_source = \"t\"\n[profile.commercial]\nunit_method = \"ama_per_code\"\nunit_method_source = \"t\"\n[payer.\"PICKY\"]\nbase = \"medicare\"\nsupporting_diagnoses = [{ procedure = \"97124\", diagnosis_prefixes = [\"M62.83\"], source = \"PICKY policy 12\" }]\n";
        let rules = rules_with("profiles.toml", profiles);
        let mut encounter = seed_visit();
        encounter.payer.as_mut().unwrap().payer_id = "PICKY".into();
        let reasons = crate::core::validate(&encounter, &rules, as_of()).reasons;
        assert!(
            reasons.iter().all(|r| r.code != DiagnosisNotSupporting),
            "M62.838 is on the list: {reasons:#?}"
        );
        encounter.service_lines[1].diagnosis_pointers = vec![2];
        let reasons = crate::core::validate(&encounter, &rules, as_of()).reasons;
        let found = reasons
            .iter()
            .find(|r| r.code == DiagnosisNotSupporting)
            .expect("not on the payer's list");
        assert_eq!(
            (found.carc.as_str(), found.source.as_str()),
            ("CO-11", "PICKY policy 12")
        );
    }

    #[test]
    fn necessity_goals_and_measures() {
        run_table(&[
            Case {
                name: "necessity stated",
                source: MBPM,
                change: |_| {},
                expect: Passes(MedicalNecessityMissing),
            },
            Case {
                name: "only a functional limitation",
                source: "contract §3",
                change: |e| docs(e).has_medical_necessity = false,
                expect: Passes(MedicalNecessityMissing),
            },
            Case {
                name: "neither",
                source: "contract §3; MBPM §220.2",
                change: |e| {
                    docs(e).has_medical_necessity = false;
                    docs(e).functional_limitation_count = 0;
                },
                expect: Fails {
                    code: MedicalNecessityMissing,
                    severity: Error,
                    field: "documentation.medical_necessity",
                    carc: "CO-50",
                },
            },
            Case {
                name: "no documentation at all",
                source: "contract §3",
                change: |e| e.documentation = None,
                expect: Fails {
                    code: MedicalNecessityMissing,
                    severity: Error,
                    field: "documentation.medical_necessity",
                    carc: "CO-50",
                },
            },
            Case {
                name: "no goals",
                source: "MBPM §220.1.2",
                change: |e| docs(e).goals.clear(),
                expect: Fails {
                    code: TreatmentGoalsMissing,
                    severity: Error,
                    field: "documentation.goals",
                    carc: "CO-16",
                },
            },
            Case {
                name: "measurable goals",
                source: "MBPM §220.1.2",
                change: |_| {},
                expect: Passes(TreatmentGoalNotMeasurable),
            },
            Case {
                name: "a goal without a target",
                source: "MBPM §220.1.2",
                change: |e| docs(e).goals[1].has_target = false,
                expect: Fails {
                    code: TreatmentGoalNotMeasurable,
                    severity: Warning,
                    field: "documentation.goals[1]",
                    carc: "",
                },
            },
            Case {
                name: "a goal without a date",
                source: "seed article (timeline for reassessment)",
                change: |e| docs(e).goals[0].target_date = DateField::Missing,
                expect: Fails {
                    code: TreatmentGoalNotMeasurable,
                    severity: Warning,
                    field: "documentation.goals[0]",
                    carc: "",
                },
            },
            Case {
                name: "no measures",
                source: "MBPM §220.2",
                change: |e| docs(e).objective_measures.clear(),
                expect: Fails {
                    code: ObjectiveMeasuresMissing,
                    severity: Error,
                    field: "documentation.objective_measures",
                    carc: "CO-16",
                },
            },
            Case {
                name: "pain 10 is on the scale",
                source: "contract §3 (pain 0-10)",
                change: |e| docs(e).objective_measures[1].value = 10.0,
                expect: Passes(ObjectiveMeasureOutOfRange),
            },
            Case {
                name: "pain 11",
                source: "contract §3 (pain 0-10)",
                change: |e| docs(e).objective_measures[1].value = 11.0,
                expect: Fails {
                    code: ObjectiveMeasureOutOfRange,
                    severity: Error,
                    field: "documentation.objective_measures[1].value",
                    carc: "CO-16",
                },
            },
            Case {
                name: "range of motion baseline 400 degrees",
                source: "contract §3 (0-360)",
                change: |e| docs(e).objective_measures[0].baseline = Some(400.0),
                expect: Fails {
                    code: ObjectiveMeasureOutOfRange,
                    severity: Error,
                    field: "documentation.objective_measures[0].baseline",
                    carc: "CO-16",
                },
            },
            Case {
                name: "manual muscle test 6/5",
                source: "contract §3 (0-5)",
                change: |e| {
                    docs(e).objective_measures[1].kind =
                        Some(crate::core::types::MeasureKind::ManualMuscleTest0To5);
                    docs(e).objective_measures[1].value = 6.0;
                },
                expect: Fails {
                    code: ObjectiveMeasureOutOfRange,
                    severity: Error,
                    field: "documentation.objective_measures[1].value",
                    carc: "CO-16",
                },
            },
            Case {
                name: "a negative range of motion",
                source: "contract §3 (0-360)",
                change: |e| docs(e).objective_measures[0].value = -5.0,
                expect: Fails {
                    code: ObjectiveMeasureOutOfRange,
                    severity: Error,
                    field: "documentation.objective_measures[0].value",
                    carc: "CO-16",
                },
            },
        ]);
    }

    #[test]
    fn techniques_and_regions() {
        run_table(&[
            Case {
                name: "effleurage and petrissage on 97124",
                source: "billing-rules §0 (97124 descriptor)",
                change: |_| {},
                expect: Passes(MassageTechniqueMissing),
            },
            Case {
                name: "97124 without techniques",
                source: "billing-rules §0; seed article",
                change: |e| e.service_lines[1].techniques.clear(),
                expect: Fails {
                    code: MassageTechniqueMissing,
                    severity: Error,
                    field: "service_lines[1].techniques",
                    carc: "CO-16",
                },
            },
            Case {
                name: "97124 with only OTHER",
                source: "contract §9",
                change: |e| e.service_lines[1].techniques = vec![Some(Technique::Other)],
                expect: Fails {
                    code: MassageTechniqueMissing,
                    severity: Error,
                    field: "service_lines[1].techniques",
                    carc: "CO-16",
                },
            },
            Case {
                name: "myofascial release on 97124",
                source: "billing-rules §0: reported with 97140",
                change: |e| {
                    e.service_lines[1]
                        .techniques
                        .push(Some(Technique::MyofascialRelease))
                },
                expect: Fails {
                    code: TechniqueCodeMismatch,
                    severity: Warning,
                    field: "service_lines[1].techniques[2]",
                    carc: "",
                },
            },
            Case {
                name: "OTHER fits any code",
                source: "contract §9",
                change: |e| e.service_lines[0].techniques.push(Some(Technique::Other)),
                expect: Passes(TechniqueCodeMismatch),
            },
            Case {
                name: "therapeutic exercise on 97140",
                source: "contract §9",
                change: |e| {
                    e.service_lines[0].techniques = vec![Some(Technique::TherapeuticExercise)]
                },
                expect: Fails {
                    code: TechniqueCodeMismatch,
                    severity: Warning,
                    field: "service_lines[0].techniques[0]",
                    carc: "",
                },
            },
            Case {
                name: "regions on 97124 and 97140",
                source: "seed article",
                change: |_| {},
                expect: Passes(BodyRegionMissing),
            },
            Case {
                name: "97140 without a region",
                source: "seed article",
                change: |e| e.service_lines[0].body_regions.clear(),
                expect: Fails {
                    code: BodyRegionMissing,
                    severity: Error,
                    field: "service_lines[0].body_regions",
                    carc: "CO-16",
                },
            },
        ]);
    }

    #[test]
    fn plan_of_care_progress_and_signature() {
        // Seed plan: start 2025-06-02, end 2025-08-11, certified 2025-06-05; DOS 2025-06-16.
        let expired = Fails {
            code: PlanOfCareExpired,
            severity: Error,
            field: "documentation.plan_of_care",
            carc: "CO-16",
        };
        let not_certified = Fails {
            code: PlanOfCareNotCertified,
            severity: Error,
            field: "documentation.plan_of_care.certified_date",
            carc: "CO-16",
        };
        run_table(&[
            Case {
                name: "within a certified plan",
                source: MBPM,
                change: |_| {},
                expect: Passes(PlanOfCareMissing),
            },
            Case {
                name: "no plan",
                source: "MBPM §220.1.2",
                change: |e| docs(e).plan_of_care = None,
                expect: Fails {
                    code: PlanOfCareMissing,
                    severity: Error,
                    field: "documentation.plan_of_care",
                    carc: "CO-16",
                },
            },
            Case {
                name: "before the plan starts",
                source: "MBPM §220.1.3",
                change: |e| plan(e).start_date = DateField::parse("2025-06-17"),
                expect: expired,
            },
            Case {
                name: "after the plan ends",
                source: "MBPM §220.1.3",
                change: |e| plan(e).end_date = DateField::parse("2025-06-15"),
                expect: Fails {
                    code: PlanOfCareExpired,
                    severity: Error,
                    field: "documentation.plan_of_care",
                    carc: "CO-16",
                },
            },
            Case {
                name: "91 days after the start of care",
                source: "MBPM §220.1.3: 90 calendar days",
                change: |e| {
                    plan(e).start_date = DateField::parse("2025-03-17");
                    plan(e).end_date = DateField::Missing;
                    plan(e).certified_date = DateField::parse("2025-03-20");
                },
                expect: Fails {
                    code: PlanOfCareExpired,
                    severity: Error,
                    field: "documentation.plan_of_care",
                    carc: "CO-16",
                },
            },
            Case {
                name: "90 days after the start of care",
                source: "MBPM §220.1.3: 90 calendar days",
                change: |e| {
                    plan(e).start_date = DateField::parse("2025-03-18");
                    plan(e).end_date = DateField::Missing;
                    plan(e).certified_date = DateField::parse("2025-03-20");
                },
                expect: Passes(PlanOfCareExpired),
            },
            Case {
                name: "no certification date",
                source: "MBPM §220.1.3",
                change: |e| plan(e).certified_date = DateField::Missing,
                expect: not_certified,
            },
            Case {
                name: "certified on day 30",
                source: "MBPM §220.1.3: within 30 days",
                change: |e| plan(e).certified_date = DateField::parse("2025-07-02"),
                expect: Passes(PlanOfCareNotCertified),
            },
            Case {
                name: "certified on day 31",
                source: "MBPM §220.1.3",
                change: |e| plan(e).certified_date = DateField::parse("2025-07-03"),
                expect: Fails {
                    code: PlanOfCareNotCertified,
                    severity: Error,
                    field: "documentation.plan_of_care.certified_date",
                    carc: "CO-16",
                },
            },
            Case {
                name: "late, with a delayed-certification reason",
                source: "MBPM §220.1.3 D",
                change: |e| {
                    plan(e).certified_date = DateField::parse("2025-07-03");
                    plan(e).has_delayed_certification_reason = true;
                },
                expect: Passes(PlanOfCareNotCertified),
            },
            Case {
                name: "treatment day 10",
                source: "MBPM §220.3: every 10 treatment days",
                change: |e| docs(e).treatment_days_since_progress_report = 10,
                expect: Passes(ProgressReportOverdue),
            },
            Case {
                name: "treatment day 11",
                source: "MBPM §220.3",
                change: |e| docs(e).treatment_days_since_progress_report = 11,
                expect: Fails {
                    code: ProgressReportOverdue,
                    severity: Error,
                    field: "documentation.treatment_days_since_progress_report",
                    carc: "CO-16",
                },
            },
            Case {
                name: "signed",
                source: "MBPM §220.3",
                change: |_| {},
                expect: Passes(SignatureMissing),
            },
            Case {
                name: "unsigned",
                source: "MBPM §220.3",
                change: |e| docs(e).therapist_signed = false,
                expect: Fails {
                    code: SignatureMissing,
                    severity: Error,
                    field: "documentation.therapist_signed",
                    carc: "CO-B12",
                },
            },
        ]);
    }

    #[test]
    fn commercial_payers_get_the_clinical_rules_only() {
        run_table(&[
            Case {
                name: "commercial, no plan of care",
                source: "issue 4: plan-of-care rules per payer",
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                    docs(e).plan_of_care = None;
                    docs(e).treatment_days_since_progress_report = 30;
                },
                expect: Passes(PlanOfCareMissing),
            },
            Case {
                name: "commercial, overdue progress report",
                source: "issue 4",
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                    docs(e).treatment_days_since_progress_report = 30;
                },
                expect: Passes(ProgressReportOverdue),
            },
            Case {
                name: "commercial, unsigned",
                source: "issue 4: clinical rules apply",
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                    docs(e).therapist_signed = false;
                },
                expect: Fails {
                    code: SignatureMissing,
                    severity: Error,
                    field: "documentation.therapist_signed",
                    carc: "CO-B12",
                },
            },
            Case {
                name: "commercial, no goals",
                source: "issue 4: clinical rules apply",
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                    docs(e).goals.clear();
                },
                expect: Fails {
                    code: TreatmentGoalsMissing,
                    severity: Error,
                    field: "documentation.goals",
                    carc: "CO-16",
                },
            },
            Case {
                name: "a CMT-only chiropractic visit is not held to therapy documentation",
                source: "billing-rules §5",
                change: |e| {
                    e.rendering_provider.as_mut().unwrap().discipline =
                        Some(crate::core::types::Discipline::Chiropractor);
                    e.service_lines.truncate(1);
                    e.service_lines[0].procedure_code = "98940".into();
                    e.service_lines[0].modifiers.clear();
                    e.service_lines[0].techniques = vec![Some(Technique::Manipulation)];
                    e.documentation = None;
                },
                expect: Passes(PlanOfCareMissing),
            },
        ]);
    }
}
