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
        let field = format!("diagnosis_codes[{index}]");
        if index >= MAX_DIAGNOSES {
            out.push(
                Finding::new(
                    ReasonCode::DiagnosisCodeInvalid,
                    field,
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
                Finding::new(ReasonCode::RequiredFieldMissing, field, "A diagnosis code is empty.")
                    .expected("an ICD-10-CM code")
                    .remedy("Remove the empty entry or fill in the code; pointers count positions, so check them after."),
            );
            continue;
        }
        let Some(packed) = normalize_icd10(raw) else {
            out.push(
                Finding::new(
                    ReasonCode::DiagnosisCodeInvalid,
                    field,
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
                    field,
                    format!("{raw} is a category code; ICD-10-CM requires the full number of characters."),
                )
                .expected("a billable (leaf) code under this category")
                .actual(raw.as_str())
                .remedy(format!("Code to the highest specificity: pick the billable code under {raw} that the record supports.")),
            ),
            Icd10Lookup::NotInSet => out.push(
                Finding::new(
                    ReasonCode::DiagnosisCodeInvalid,
                    field,
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
        let field = format!("service_lines[{index}].diagnosis_pointers");
        if line.diagnosis_pointers.is_empty() {
            out.push(
                Finding::new(
                    ReasonCode::DiagnosisPointerInvalid,
                    field,
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
                    field.clone(),
                    "A claim line carries at most four diagnosis pointers.",
                )
                .expected(format!("at most {MAX_POINTERS}"))
                .actual(line.diagnosis_pointers.len().to_string())
                .remedy("Keep the four diagnoses most relevant to this line, primary first."),
            );
        }
        for (position, &pointer) in line.diagnosis_pointers.iter().enumerate() {
            let pointer_field = format!("{field}[{position}]");
            let out_of_range = pointer == 0 || pointer as usize > diagnosis_count;
            if out_of_range {
                out.push(
                    Finding::new(
                        ReasonCode::DiagnosisPointerInvalid,
                        pointer_field,
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
                        pointer_field,
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
