//! Diagnosis rules: ICD-10-CM validity on the date of service, billable (leaf) codes,
//! the code set in force, and the lines' diagnosis pointers.

use super::Visit;
use super::data::{Icd10Lookup, normalize_icd10};
use super::reason::{Finding, ReasonCode};

/// An 837P claim carries at most 12 diagnosis codes (HI segment), a line at most 4 pointers
/// (SV107).
const MAX_DIAGNOSES: usize = 12;
const MAX_POINTERS: usize = 4;

pub fn check(visit: &Visit<'_>, out: &mut Vec<Finding>) {
    let encounter = visit.encounter;
    let set = visit.icd10.set;
    if encounter.diagnosis_codes.is_empty() {
        out.push(
            Finding::new(
                ReasonCode::RequiredFieldMissing,
                "diagnosis_codes",
                "The claim has no diagnosis code.",
            )
            .expected("at least one ICD-10-CM code")
            .remedy("Add the ICD-10-CM code of the condition treated and point each line to it."),
        );
    } else if !visit.icd10.covers_date_of_service
        && let Some(date) = visit.date_of_service
    {
        out.push(
            Finding::new(
                ReasonCode::DiagnosisCodeSetUnavailable,
                "date_of_service",
                format!(
                    "No loaded ICD-10-CM code set covers {date}; the diagnosis codes were judged by FY{} ({} to {}).",
                    set.fiscal_year(),
                    set.effective_from(),
                    set.effective_to()
                ),
            )
            .expected("an ICD-10-CM code set covering the date of service")
            .actual(date.to_string())
            .remedy("Check the diagnosis codes against the code set in force on the date of service, and load that year's CMS order file into the rules directory."),
        );
    }

    for (index, raw) in encounter.diagnosis_codes.iter().enumerate() {
        let field = || format!("diagnosis_codes[{index}]");
        if index >= MAX_DIAGNOSES {
            out.push(
                Finding::new(
                    ReasonCode::DiagnosisCodeInvalid,
                    field(),
                    "A claim carries at most 12 diagnosis codes.",
                )
                .expected(format!("at most {MAX_DIAGNOSES} codes"))
                .actual(raw.as_str())
                .remedy("Keep the 12 diagnoses the lines point to, most specific first."),
            );
            continue;
        }
        if raw.is_empty() {
            out.push(
                Finding::new(ReasonCode::RequiredFieldMissing, field(), "A diagnosis code is empty.")
                    .expected("an ICD-10-CM code")
                    .remedy("Remove the empty entry or fill in the code; pointers count positions, so check them after."),
            );
            continue;
        }
        let Some(packed) = normalize_icd10(raw) else {
            out.push(
                Finding::new(
                    ReasonCode::DiagnosisCodeInvalid,
                    field(),
                    "The diagnosis code is not a well-formed ICD-10-CM code.",
                )
                .expected("a letter, a digit, a letter or digit, then up to 4 more (dot after the third), e.g. M54.50")
                .actual(raw.as_str())
                .remedy("Correct the diagnosis code from the ICD-10-CM code set."),
            );
            continue;
        };
        match set.lookup(packed) {
            Icd10Lookup::Billable => {}
            Icd10Lookup::Header => out.push(
                Finding::new(
                    ReasonCode::DiagnosisCodeNotBillable,
                    field(),
                    format!("{raw} is a category code; ICD-10-CM requires the full number of characters."),
                )
                .expected("a billable (leaf) code under this category")
                .actual(raw.as_str())
                .remedy(format!("Code to the highest specificity: pick the billable code under {raw} that the record supports.")),
            ),
            Icd10Lookup::NotInSet => out.push(
                Finding::new(
                    ReasonCode::DiagnosisCodeInvalid,
                    field(),
                    format!("{raw} is not in the ICD-10-CM code set for FY{}.", set.fiscal_year()),
                )
                .expected(format!("a code of ICD-10-CM FY{}", set.fiscal_year()))
                .actual(raw.as_str())
                .remedy("Correct the code, or use the code that replaced it in the code set in force on the date of service."),
            ),
        }
    }

    let diagnosis_count = encounter.diagnosis_codes.len().min(MAX_DIAGNOSES);
    for (index, line) in encounter.service_lines.iter().enumerate() {
        let field = || format!("service_lines[{index}].diagnosis_pointers");
        if line.diagnosis_pointers.is_empty() {
            out.push(
                Finding::new(
                    ReasonCode::DiagnosisPointerInvalid,
                    field(),
                    format!("The {} line points to no diagnosis.", display_code(&line.procedure_code)),
                )
                .expected("1 to 4 pointers into diagnosis_codes")
                .actual("none")
                .remedy("Point the line to the diagnosis that supports it (1 = the first diagnosis code)."),
            );
            continue;
        }
        if line.diagnosis_pointers.len() > MAX_POINTERS {
            out.push(
                Finding::new(
                    ReasonCode::DiagnosisPointerInvalid,
                    field(),
                    "A claim line carries at most four diagnosis pointers.",
                )
                .expected(format!("at most {MAX_POINTERS}"))
                .actual(line.diagnosis_pointers.len().to_string())
                .remedy("Keep the four diagnoses most relevant to this line, primary first."),
            );
        }
        for (position, &pointer) in line.diagnosis_pointers.iter().enumerate() {
            let pointer_field = || format!("{}[{position}]", field());
            let out_of_range = pointer == 0 || pointer as usize > diagnosis_count;
            if out_of_range {
                out.push(
                    Finding::new(
                        ReasonCode::DiagnosisPointerInvalid,
                        pointer_field(),
                        "The diagnosis pointer does not point to a diagnosis code of the claim.",
                    )
                    .expected(format!("1 to {diagnosis_count}"))
                    .actual(pointer.to_string())
                    .remedy("Pointers are 1-based positions in diagnosis_codes: correct the pointer or add the diagnosis."),
                );
            } else if line.diagnosis_pointers[..position].contains(&pointer) {
                out.push(
                    Finding::new(
                        ReasonCode::DiagnosisPointerInvalid,
                        pointer_field(),
                        format!("Pointer {pointer} appears twice on the line."),
                    )
                    .expected("each pointer once")
                    .actual(pointer.to_string())
                    .remedy("Remove the repeated pointer."),
                );
            }
        }
    }
}

fn display_code(code: &str) -> &str {
    if code.is_empty() { "service" } else { code }
}

#[cfg(test)]
mod tests {
    use crate::core::reason::ReasonCode;
    use crate::core::reason::Severity::{Error, Warning};
    use crate::core::test_support::{Case, Expect::*, run_table};
    use crate::core::types::DateField;

    const ICD: &str = "ICD-10-CM FY2025 (shared/data/icd10cm-fy2025.tsv); billing-rules §9";

    #[test]
    fn diagnosis_codes() {
        use ReasonCode::{DiagnosisCodeInvalid as Invalid, DiagnosisCodeNotBillable as Header};
        let invalid = |field| Fails {
            code: Invalid,
            severity: Error,
            field,
            carc: "CO-146",
        };
        run_table(&[
            Case {
                name: "billable codes with dots",
                source: ICD,
                change: |_| {},
                expect: Passes(Invalid),
            },
            Case {
                name: "billable code without the dot",
                source: ICD,
                change: |e| e.diagnosis_codes[1] = "M5450".into(),
                expect: Passes(Invalid),
            },
            Case {
                name: "M62.838 billable (in the first position, where the seed has M54.2)",
                source: "shared/data/README.md checks",
                change: |e| e.diagnosis_codes[0] = "M62.838".into(),
                expect: Passes(Header),
            },
            Case {
                name: "M54.5 is a header since FY2022",
                source: "shared/data/README.md checks",
                change: |e| e.diagnosis_codes[1] = "M54.5".into(),
                expect: Fails {
                    code: Header,
                    severity: Error,
                    field: "diagnosis_codes[1]",
                    carc: "CO-146",
                },
            },
            Case {
                name: "M62.83 is a header",
                source: "shared/data/README.md checks",
                change: |e| e.diagnosis_codes[2] = "M62.83".into(),
                expect: Fails {
                    code: Header,
                    severity: Error,
                    field: "diagnosis_codes[2]",
                    carc: "CO-146",
                },
            },
            Case {
                name: "well formed, not in the set",
                source: ICD,
                change: |e| e.diagnosis_codes[1] = "M54.55".into(),
                expect: invalid("diagnosis_codes[1]"),
            },
            Case {
                name: "malformed",
                source: ICD,
                change: |e| e.diagnosis_codes[0] = "54.2M".into(),
                expect: invalid("diagnosis_codes[0]"),
            },
            Case {
                name: "dot in the wrong place",
                source: ICD,
                change: |e| e.diagnosis_codes[0] = "M5.42".into(),
                expect: invalid("diagnosis_codes[0]"),
            },
            Case {
                name: "a 13th code",
                source: "X12 837P HI: 12 codes",
                change: |e| {
                    e.diagnosis_codes.resize(13, "M54.2".into());
                },
                expect: invalid("diagnosis_codes[12]"),
            },
            Case {
                name: "empty entry",
                source: ICD,
                change: |e| e.diagnosis_codes[2] = String::new(),
                expect: Fails {
                    code: ReasonCode::RequiredFieldMissing,
                    severity: Error,
                    field: "diagnosis_codes[2]",
                    carc: "CO-16",
                },
            },
        ]);
    }

    #[test]
    fn code_set_in_force() {
        use ReasonCode::DiagnosisCodeSetUnavailable as R;
        let source = "contract §9 (data in force)";
        run_table(&[
            Case {
                name: "date inside FY2025",
                source,
                change: |_| {},
                expect: Passes(R),
            },
            Case {
                name: "last day of FY2025",
                source,
                change: |e| e.date_of_service = DateField::parse("2025-09-30"),
                expect: Passes(R),
            },
            Case {
                name: "before FY2025",
                source,
                change: |e| e.date_of_service = DateField::parse("2024-09-30"),
                expect: Fails {
                    code: R,
                    severity: Warning,
                    field: "date_of_service",
                    carc: "",
                },
            },
        ]);
    }

    #[test]
    fn a_newer_set_is_chosen_by_date_of_service() {
        // A deployment drops in the CMS order file of FY2026: a code added that year passes
        // on a FY2026 date and is invalid on a FY2025 date.
        let order_file = "\
00001 M5450   1 Low back pain, unspecified                                   Low back pain, unspecified
00002 M542    1 Cervicalgia                                                  Cervicalgia
00003 M62838  1 Other muscle spasm                                           Other muscle spasm
00004 M5499   1 Invented for this test                                       Invented for this test
";
        let rules =
            crate::core::test_support::rules_with("icd10cm/icd10cm_order_2026.txt", order_file);
        let mut encounter = crate::core::test_support::seed_visit();
        encounter.diagnosis_codes[1] = "M54.99".into();
        encounter.date_of_service = DateField::parse("2025-10-01");
        let as_of = chrono::NaiveDate::from_ymd_opt(2025, 10, 2).unwrap();
        let diagnosis_findings = |outcome: &crate::core::outcome::Outcome| -> Vec<ReasonCode> {
            outcome
                .reasons
                .iter()
                .map(|r| r.code)
                .filter(|code| code.as_str().starts_with("DIAGNOSIS_"))
                .collect()
        };
        let outcome = crate::core::validate(&encounter, &rules, as_of);
        assert!(
            diagnosis_findings(&outcome).is_empty(),
            "{:#?}",
            outcome.reasons
        );
        assert!(
            outcome.ruleset_version.contains("+icd10cm-fy2026+"),
            "{}",
            outcome.ruleset_version
        );
        encounter.date_of_service = DateField::parse("2025-09-30");
        let outcome = crate::core::validate(&encounter, &rules, as_of);
        assert_eq!(
            diagnosis_findings(&outcome),
            [ReasonCode::DiagnosisCodeInvalid],
            "{:#?}",
            outcome.reasons
        );
        assert!(outcome.ruleset_version.contains("+icd10cm-fy2025+"));
    }

    #[test]
    fn diagnosis_pointers() {
        use ReasonCode::DiagnosisPointerInvalid as R;
        let source = "X12 837P SV107; contract §3";
        let fails = |field| Fails {
            code: R,
            severity: Error,
            field,
            carc: "CO-16",
        };
        run_table(&[
            Case {
                name: "pointers in range",
                source,
                change: |_| {},
                expect: Passes(R),
            },
            Case {
                name: "missing",
                source,
                change: |e| e.service_lines[0].diagnosis_pointers.clear(),
                expect: fails("service_lines[0].diagnosis_pointers"),
            },
            Case {
                name: "zero",
                source,
                change: |e| e.service_lines[0].diagnosis_pointers = vec![0],
                expect: fails("service_lines[0].diagnosis_pointers[0]"),
            },
            Case {
                name: "past the end",
                source,
                change: |e| e.service_lines[1].diagnosis_pointers = vec![2, 4],
                expect: fails("service_lines[1].diagnosis_pointers[1]"),
            },
            Case {
                name: "repeated",
                source,
                change: |e| e.service_lines[1].diagnosis_pointers = vec![2, 2],
                expect: fails("service_lines[1].diagnosis_pointers[1]"),
            },
            Case {
                name: "five pointers",
                source,
                change: |e| {
                    e.diagnosis_codes = vec![
                        "M54.2".into(),
                        "M54.50".into(),
                        "M62.838".into(),
                        "M54.6".into(),
                        "M54.9".into(),
                    ];
                    e.service_lines[1].diagnosis_pointers = vec![1, 2, 3, 4, 5];
                },
                expect: fails("service_lines[1].diagnosis_pointers"),
            },
        ]);
    }
}
