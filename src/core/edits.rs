//! Code-pair and unit edits: NCCI procedure-to-procedure pairs (with the payer's extra and
//! switched-off pairs), modifier 59 and its X{EPSU} subsets, distinct body regions, and MUEs.

use super::Visit;
use super::data::{Adjudication, ModifierIndicator};
use super::reason::{Finding, ReasonCode};
use super::types::ServiceLine;

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
                    // Medicare Part B accepts the bypass modifier on either line (since 2019-07-01).
                    let carrier = [(second, line2), (first, line1)]
                        .into_iter()
                        .find_map(|(index, line)| bypass_modifier(line).map(|m| (index, m)));
                    match carrier {
                        None => out.push(
                            Finding::new(
                                ReasonCode::NcciPtpModifierRequired,
                                format!("service_lines[{second}].modifiers"),
                                format!("{column2} billed with {column1} is denied unless a modifier shows the services were distinct."),
                            )
                            .expected("59, XE, XS, XP or XU on one of the two lines")
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
    let mut seen: Vec<&str> = Vec::new();
    for line in lines {
        let code = line.procedure_code.as_str();
        if seen.contains(&code) {
            continue;
        }
        seen.push(code);
        let Some(value) = selection.value(code) else {
            continue;
        };
        let of_code: Vec<(usize, &ServiceLine)> = lines
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
