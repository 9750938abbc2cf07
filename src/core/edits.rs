//! Code-pair and unit edits: NCCI procedure-to-procedure pairs (with the payer's extra and
//! switched-off pairs), modifier 59 and its X{EPSU} subsets, distinct body regions, and MUEs.

use super::data::{Adjudication, ModifierIndicator};
use super::reason::{Finding, ReasonCode};
use super::types::ServiceLine;
use super::{Visit, VisitList};

/// NCCI-associated modifiers that bypass a modifier-indicator-1 edit (contract §3).
const BYPASS_MODIFIERS: [&str; 5] = ["59", "XE", "XS", "XP", "XU"];
const X_MODIFIERS: [&str; 4] = ["XE", "XS", "XP", "XU"];
/// The bypass modifiers that claim a different anatomic site, so the regions must differ.
const SITE_MODIFIERS: [&str; 2] = ["59", "XS"];

fn bypass_modifier(line: &ServiceLine) -> Option<&str> {
    line.modifiers
        .iter()
        .map(String::as_str)
        .find(|m| BYPASS_MODIFIERS.contains(m))
}

pub fn check(visit: &Visit<'_>, out: &mut Vec<Finding>) {
    let lines = &visit.encounter.service_lines;
    for (index, line) in lines.iter().enumerate() {
        if line.has_modifier("59")
            && let Some(x) = line
                .modifiers
                .iter()
                .find(|m| X_MODIFIERS.contains(&m.as_str()))
        {
            out.push(
                Finding::new(
                    ReasonCode::Modifier59WithXModifier,
                    format!("service_lines[{index}].modifiers"),
                    format!("Modifier 59 and {x} are on the same line; an X modifier replaces 59, it is not added to it."),
                )
                .expected("59 or one of XE/XS/XP/XU")
                .actual(line.modifiers.join(","))
                .remedy(format!("Keep {x} (the more specific) and remove 59.")),
            );
        }
    }
    let Some(date) = visit.date_of_service else {
        return;
    };

    let ptp = visit.rules.ptp();
    let mut in_pair = vec![false; lines.len()];
    for (first, line1) in lines.iter().enumerate() {
        for (second, line2) in lines.iter().enumerate() {
            // A line with no units is documented, not billed: no edit applies to it.
            if first == second
                || line1.units == 0
                || line2.units == 0
                || line1.procedure_code == line2.procedure_code
            {
                continue;
            }
            let Some(edit) =
                visit
                    .profile
                    .pair_edit(ptp, &line1.procedure_code, &line2.procedure_code, date)
            else {
                continue;
            };
            let (column1, column2) = (&line1.procedure_code, &line2.procedure_code);
            match edit.indicator {
                ModifierIndicator::NotApplicable => continue,
                ModifierIndicator::NotAllowed => out.push(
                    Finding::new(
                        ReasonCode::NcciPtpNotAllowed,
                        format!("service_lines[{second}].procedure_code"),
                        format!("{column2} is not payable with {column1} on the same day: the edit allows no modifier."),
                    )
                    .expected(format!("{column2} not billed with {column1}"))
                    .actual(format!("{column1} on line {first}, {column2} on line {second}"))
                    .remedy(format!("Remove {column2}; a modifier cannot bypass this edit."))
                    .source(edit.source),
                ),
                ModifierIndicator::Allowed => {
                    // The column-2 line carries the bypass modifier; a payer may also accept it on
                    // the column-1 line (Medicare Part B since 2019-07-01, rules/profiles.toml).
                    let either_line = visit
                        .profile
                        .bypass_on_either_line
                        .as_ref()
                        .is_some_and(|either| date >= either.from);
                    let carrier = [(second, line2), (first, line1)]
                        .into_iter()
                        .take(if either_line { 2 } else { 1 })
                        .find_map(|(index, line)| bypass_modifier(line).map(|m| (index, m)));
                    match carrier {
                        None => out.push(
                            Finding::new(
                                ReasonCode::NcciPtpModifierRequired,
                                format!("service_lines[{second}].modifiers"),
                                format!("{column2} billed with {column1} is denied unless a modifier shows the services were distinct."),
                            )
                            .expected(if either_line { "59, XE, XS, XP or XU on one of the two lines".to_owned() } else { format!("59, XE, XS, XP or XU on the {column2} line") })
                            .actual(if line2.modifiers.is_empty() { "none".to_owned() } else { line2.modifiers.join(",") })
                            .remedy(format!("If {column2} treated a different body region than {column1}, append 59 or XS to {column2} and document both regions; otherwise do not bill {column2}."))
                            .source(edit.source),
                        ),
                        Some((carrier_index, modifier)) if SITE_MODIFIERS.contains(&modifier) => {
                            let overlap = line1.body_regions.iter().any(|a| line2.body_regions.iter().any(|b| a.overlaps(b)));
                            if overlap {
                                out.push(
                                    Finding::new(
                                        ReasonCode::DistinctServiceSameRegion,
                                        format!("service_lines[{carrier_index}].body_regions"),
                                        format!("Modifier {modifier} claims {column1} and {column2} treated separate sites, but both lines document the same body region."),
                                    )
                                    .expected("no body region shared by the two lines")
                                    .actual("an overlapping region")
                                    .remedy(format!("Document the distinct regions treated by {column1} and {column2}; if they were the same region, bill only {column1}."))
                                    .source(edit.source),
                                );
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
            in_pair[first] = true;
            in_pair[second] = true;
        }
    }
    // A malformed code cannot be looked up, so its pairs are unknown: say nothing about 59.
    let all_codes_known = lines
        .iter()
        .all(|line| super::data::is_well_formed_procedure(&line.procedure_code));
    for (index, line) in lines.iter().enumerate() {
        if in_pair[index] || !all_codes_known {
            continue;
        }
        if let Some(position) = line
            .modifiers
            .iter()
            .position(|m| BYPASS_MODIFIERS.contains(&m.as_str()))
        {
            let modifier = &line.modifiers[position];
            out.push(
                Finding::new(
                    ReasonCode::Modifier59Unsupported,
                    format!("service_lines[{index}].modifiers[{position}]"),
                    format!("Modifier {modifier} is on {} but no edit pair of this visit calls for it.", line.procedure_code),
                )
                .expected("59/X only on a line of an edit pair")
                .actual(modifier.as_str())
                .remedy(format!("Remove {modifier} unless a payer edit you know of requires it; unneeded 59 draws audits.")),
            );
        }
    }
    if lines.len() > 1 && !ptp.covers(date) {
        out.push(not_current("NCCI procedure-to-procedure", date));
    }

    check_mue(visit, date, out);
}

fn not_current(table: &str, date: chrono::NaiveDate) -> Finding {
    Finding::new(
        ReasonCode::RuleDataNotCurrent,
        "date_of_service",
        format!("No loaded {table} data covers {date}; the newest loaded data was used."),
    )
    .expected(format!("{table} data in force on the date of service"))
    .actual(date.to_string())
    .remedy("Load the current quarter's CMS file into the rules directory (see README, Rule data).")
}

fn check_mue(visit: &Visit<'_>, date: chrono::NaiveDate, out: &mut Vec<Finding>) {
    let Some(selection) = visit.rules.mue().select(date) else {
        return;
    };
    if !selection.covers_date_of_service {
        out.push(not_current("MUE", date));
    }
    let lines = &visit.encounter.service_lines;
    let mut seen: VisitList<&str> = VisitList::new();
    for line in lines {
        let code = line.procedure_code.as_str();
        if seen.contains(&code) {
            continue;
        }
        seen.push(code);
        let Some(value) = selection.value(code) else {
            continue;
        };
        let of_code: VisitList<(usize, &ServiceLine)> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.procedure_code == code)
            .collect();
        let mut exceeded = |index: usize, units: u64, scope: &str| {
            out.push(
                Finding::new(
                    ReasonCode::MueExceeded,
                    format!("service_lines[{index}].units"),
                    format!("{code} bills {units} unit(s) {scope}; its Medically Unlikely Edit allows {} (MAI {}).", value.units, value.indicator),
                )
                .expected(format!("at most {}", value.units))
                .actual(units.to_string())
                .remedy(format!("Bill at most {} unit(s) of {code}; units above an MUE are denied and, for a date-of-service edit, only an appeal with records can recover them.", value.units))
                .source(selection.source()),
            );
        };
        match value.adjudication {
            Adjudication::Line => {
                for (index, line) in &of_code {
                    if line.units > value.units {
                        exceeded(*index, u64::from(line.units), "on this line");
                    }
                }
            }
            Adjudication::DateOfService => {
                let total: u64 = of_code.iter().map(|(_, l)| u64::from(l.units)).sum();
                if total > u64::from(value.units) {
                    let last = of_code.last().map_or(0, |(index, _)| *index);
                    exceeded(last, total, "on the date of service");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::reason::ReasonCode::*;
    use crate::core::reason::Severity::{Error, Warning};
    use crate::core::test_support::{
        Case, Expect, Expect::*, as_of, rules_with, run_table, seed_visit,
    };
    use crate::core::types::{BodyRegion, DateField, Encounter, Laterality, PayerKind, Region};

    const SEED: &str =
        "seed article: 97124 with 97140 needs 59 and distinct regions (rules/ncci/pairs.toml)";
    const EITHER_LINE: &str = "contract §9: for Medicare Part B the bypass modifier may stand on either line (since 2019-07-01)";
    const COLUMN_2_ONLY: &str = "NCCI: the modifier goes on the column-2 code; either line is a Part B policy (contract §9)";

    /// The seed visit's 59 moved from the column-2 line (97124) to the column-1 line (97140).
    fn bypass_on_column_1(e: &mut Encounter) {
        e.service_lines[1].modifiers = vec!["GP".into()];
        e.service_lines[0].modifiers.push("59".into());
    }

    /// The pair's edit fires on the column-2 line.
    const MODIFIER_REQUIRED_ON_COLUMN_2: Expect = Fails {
        code: NcciPtpModifierRequired,
        severity: Error,
        field: "service_lines[1].modifiers",
        carc: "CO-236",
    };

    fn region(region: Region, laterality: Laterality) -> BodyRegion {
        BodyRegion {
            region: Some(region),
            laterality,
        }
    }

    #[test]
    fn ncci_pairs_and_modifier_59() {
        run_table(&[
            Case {
                name: "seed visit: 59 on 97124, cervical vs lumbar",
                source: SEED,
                change: |_| {},
                expect: Passes(NcciPtpModifierRequired),
            },
            Case {
                name: "no 59",
                source: SEED,
                change: |e| e.service_lines[1].modifiers = vec!["GP".into()],
                expect: MODIFIER_REQUIRED_ON_COLUMN_2,
            },
            Case {
                name: "59 on the column-1 line",
                source: EITHER_LINE,
                change: bypass_on_column_1,
                expect: Passes(NcciPtpModifierRequired),
            },
            Case {
                name: "59 on the column-1 line, before Part B accepted it there",
                source: "formats.md §3.2: either line from 2019-07-01 (rules/profiles.toml)",
                change: |e| {
                    e.date_of_service = DateField::parse("2019-06-28");
                    bypass_on_column_1(e);
                },
                expect: MODIFIER_REQUIRED_ON_COLUMN_2,
            },
            Case {
                name: "59 on the column-1 line, commercial payer",
                source: COLUMN_2_ONLY,
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
                    bypass_on_column_1(e);
                },
                expect: MODIFIER_REQUIRED_ON_COLUMN_2,
            },
            Case {
                name: "59 on the column-1 line, Medicaid",
                source: COLUMN_2_ONLY,
                change: |e| {
                    e.payer.as_mut().unwrap().kind = Some(PayerKind::Medicaid);
                    bypass_on_column_1(e);
                },
                expect: MODIFIER_REQUIRED_ON_COLUMN_2,
            },
            Case {
                name: "XS instead of 59",
                source: "billing-rules §3.2",
                change: |e| e.service_lines[1].modifiers = vec!["GP".into(), "XS".into()],
                expect: Passes(NcciPtpModifierRequired),
            },
            Case {
                name: "a documented, unbilled 97140 line",
                source: "contract §9 (not on the claim)",
                change: |e| {
                    e.service_lines[0].units = 0;
                    e.service_lines[1].modifiers = vec!["GP".into()];
                },
                expect: Passes(NcciPtpModifierRequired),
            },
            Case {
                name: "pair before its effective date",
                source: "rules/ncci/pairs.toml: 97161/97140 from 2020-10-01",
                change: |e| {
                    e.date_of_service = DateField::parse("2020-09-30");
                    e.service_lines[1].procedure_code = "97161".into();
                    e.service_lines[1].modifiers = vec!["GP".into()];
                    e.service_lines.swap(0, 1);
                },
                expect: Passes(NcciPtpModifierRequired),
            },
            Case {
                name: "PT evaluation with 97140 after 2020-10-01, no modifier",
                source: "APTA 2020-09-02",
                change: |e| {
                    e.service_lines[1].procedure_code = "97161".into();
                    e.service_lines[1].units = 1;
                    e.service_lines[1].modifiers = vec!["GP".into()];
                    e.service_lines.swap(0, 1);
                },
                expect: Fails {
                    code: NcciPtpModifierRequired,
                    severity: Error,
                    field: "service_lines[1].modifiers",
                    carc: "CO-236",
                },
            },
        ]);
    }

    #[test]
    fn distinct_regions_for_59_and_xs() {
        let fails = Fails {
            code: DistinctServiceSameRegion,
            severity: Error,
            field: "service_lines[1].body_regions",
            carc: "CO-236",
        };
        run_table(&[
            Case {
                name: "cervical vs lumbar",
                source: SEED,
                change: |_| {},
                expect: Passes(DistinctServiceSameRegion),
            },
            Case {
                name: "both lumbar",
                source: SEED,
                change: |e| {
                    e.service_lines[0].body_regions = vec![region(Region::Lumbar, Laterality::None)]
                },
                expect: fails,
            },
            Case {
                name: "left vs right shoulder",
                source: "contract §9 (overlap)",
                change: |e| {
                    e.service_lines[0].body_regions =
                        vec![region(Region::Shoulder, Laterality::Left)];
                    e.service_lines[1].body_regions =
                        vec![region(Region::Shoulder, Laterality::Right)];
                },
                expect: Passes(DistinctServiceSameRegion),
            },
            Case {
                name: "left vs bilateral shoulder",
                source: "contract §9 (overlap)",
                change: |e| {
                    e.service_lines[0].body_regions =
                        vec![region(Region::Shoulder, Laterality::Left)];
                    e.service_lines[1].body_regions =
                        vec![region(Region::Shoulder, Laterality::Bilateral)];
                },
                expect: Fails {
                    code: DistinctServiceSameRegion,
                    severity: Error,
                    field: "service_lines[1].body_regions",
                    carc: "CO-236",
                },
            },
            Case {
                name: "XE (separate encounter) needs no distinct region",
                source: "billing-rules §3.2",
                change: |e| {
                    e.service_lines[0].body_regions =
                        vec![region(Region::Lumbar, Laterality::None)];
                    e.service_lines[1].modifiers = vec!["GP".into(), "XE".into()];
                },
                expect: Passes(DistinctServiceSameRegion),
            },
        ]);
    }

    #[test]
    fn x_modifiers_and_unsupported_59() {
        run_table(&[
            Case {
                name: "59 with XS",
                source: "billing-rules §3.2",
                change: |e| {
                    e.service_lines[1].modifiers = vec!["GP".into(), "59".into(), "XS".into()]
                },
                expect: Fails {
                    code: Modifier59WithXModifier,
                    severity: Error,
                    field: "service_lines[1].modifiers",
                    carc: "CO-4",
                },
            },
            Case {
                name: "59 alone",
                source: "billing-rules §3.2",
                change: |_| {},
                expect: Passes(Modifier59WithXModifier),
            },
            Case {
                name: "59 on a line in an edit pair",
                source: "billing-rules §3.2",
                change: |_| {},
                expect: Passes(Modifier59Unsupported),
            },
            Case {
                name: "59 with no pair in the visit",
                source: "billing-rules §3.2 (Palmetto)",
                change: |e| e.service_lines[0].procedure_code = "97110".into(),
                expect: Fails {
                    code: Modifier59Unsupported,
                    severity: Warning,
                    field: "service_lines[1].modifiers[1]",
                    carc: "",
                },
            },
        ]);
    }

    const PROFILES_HEAD: &str = "[meta]\nsource = \"test\"\neffective_from = \"2019-01-01\"\n[profile.medicare]\nunit_method = \"cms_total_time\"\nunit_method_source = \"test\"\n[profile.medicaid]\nunit_method = \"cms_total_time\"\nunit_method_source = \"test\"\n[profile.commercial]\nunit_method = \"ama_per_code\"\nunit_method_source = \"test\"\n";

    #[test]
    fn payers_switch_pairs_off_and_add_their_own() {
        let profiles = format!(
            "{PROFILES_HEAD}[payer.\"NOSEED\"]\nbase = \"medicare\"\npairs_off = [\"seed-97140-97124\"]\n\
             [payer.\"STRICT\"]\nbase = \"medicare\"\nextra_pairs = [{{ column1 = \"97140\", column2 = \"97124\", modifier_indicator = 0, source = \"STRICT policy MP-7\" }}]\n"
        );
        let rules = rules_with("profiles.toml", &profiles);
        let mut encounter = seed_visit();
        encounter.service_lines[1].modifiers = vec!["GP".into()];
        encounter.payer.as_mut().unwrap().payer_id = "NOSEED".into();
        let reasons = crate::core::validate(&encounter, &rules, as_of()).reasons;
        assert!(
            reasons.iter().all(|r| r.code != NcciPtpModifierRequired),
            "{reasons:#?}"
        );

        encounter.payer.as_mut().unwrap().payer_id = "STRICT".into();
        let reasons = crate::core::validate(&encounter, &rules, as_of()).reasons;
        let denied = reasons
            .iter()
            .find(|r| r.code == NcciPtpNotAllowed)
            .expect("NCCI_PTP_NOT_ALLOWED");
        assert_eq!(
            (
                denied.field.as_str(),
                denied.carc.as_str(),
                denied.source.as_str()
            ),
            (
                "service_lines[1].procedure_code",
                "CO-236",
                "STRICT policy MP-7"
            )
        );

        // The shipped pair names its source in the reason.
        encounter.payer.as_mut().unwrap().payer_id = "OTHER".into();
        let reasons = crate::core::validate(&encounter, &rules, as_of()).reasons;
        let required = reasons
            .iter()
            .find(|r| r.code == NcciPtpModifierRequired)
            .unwrap();
        assert!(
            required.source.contains("seed article"),
            "{}",
            required.source
        );
    }

    /// A CMS MUE file in its published layout; values are test data, not CMS values.
    const MUE: &str = "\"CPT codes ... American Medical Association\",,,\nHCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n97124,1,2 Date of Service Edit: Policy,x\n97140,1,1 Line Edit,x\n";

    #[test]
    fn mue_by_line_and_by_date_of_service() {
        let rules = rules_with("mue/MCR_MUE_PractitionerServices_Eff_04-01-2025.csv", MUE);
        let reasons = crate::core::validate(&seed_visit(), &rules, as_of()).reasons;
        let mue: Vec<_> = reasons.iter().filter(|r| r.code == MueExceeded).collect();
        assert_eq!(mue.len(), 1, "{reasons:#?}");
        assert_eq!(
            (
                mue[0].field.as_str(),
                mue[0].carc.as_str(),
                mue[0].actual.as_str()
            ),
            ("service_lines[1].units", "CO-151", "2")
        );
        assert!(
            mue[0]
                .source
                .contains("MCR_MUE_PractitionerServices_Eff_04-01-2025.csv")
        );
        assert!(reasons.iter().all(|r| r.code != RuleDataNotCurrent));

        // MAI 1 judges each line: two 97140 lines of 1 unit pass; MAI 2 sums the day.
        let mut split = seed_visit();
        split.service_lines[1] = split.service_lines[0].clone();
        let reasons = crate::core::validate(&split, &rules, as_of()).reasons;
        assert!(
            reasons.iter().all(|r| r.code != MueExceeded),
            "{reasons:#?}"
        );
        let mut massage = seed_visit();
        massage.service_lines[0] = massage.service_lines[1].clone();
        massage.service_lines[0].units = 1;
        massage.service_lines[1].units = 1;
        let reasons = crate::core::validate(&massage, &rules, as_of()).reasons;
        let summed = reasons
            .iter()
            .find(|r| r.code == MueExceeded)
            .expect("MAI 2 sums the date of service");
        assert_eq!(
            (summed.field.as_str(), summed.actual.as_str()),
            ("service_lines[1].units", "2")
        );

        // A date of service after the newest file's quarter: judged by it, with a warning.
        let mut later = seed_visit();
        later.date_of_service = DateField::parse("2025-07-01");
        let reasons = crate::core::validate(
            &later,
            &rules,
            chrono::NaiveDate::from_ymd_opt(2025, 7, 2).unwrap(),
        )
        .reasons;
        assert!(
            reasons.iter().any(|r| r.code == RuleDataNotCurrent
                && r.severity == Warning
                && r.carc.is_empty()),
            "{reasons:#?}"
        );
        assert!(reasons.iter().any(|r| r.code == MueExceeded));
    }
}
