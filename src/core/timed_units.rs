//! Timed units: the 8-minute rule under the payer's method (contract §4), untimed units,
//! duplicate lines and the visit's time fields.
//!
//! CMS_TOTAL_TIME: `T` = the timed minutes of the visit, `U = T >= 8 ? (T + 7) / 15 : 0`;
//! each code keeps its full 15-minute units, the leftover units go one each to the codes with
//! the largest remainders, and any tie-break is accepted. AMA_PER_CODE rounds each code on its
//! own. Lines of one code (e.g. with and without CQ) are allocated together, then each line is
//! checked against its own minutes.

use std::collections::BTreeSet;

use super::data::{ProcedureKind, UnitTable};
use super::outcome::{UnitLine, UnitSummary};
use super::reason::{Finding, ReasonCode};
use super::types::{ServiceLine, UnitMethod};
use super::{Visit, VisitList};

/// Units the table gives `minutes` (billing-rules §1.1 with 15 and 8: `T >= 8 ? (T + 7) / 15 : 0`).
pub fn units_for_minutes(table: UnitTable, minutes: u64) -> u64 {
    if minutes >= table.minimum_minutes {
        (minutes + table.unit_minutes - table.minimum_minutes) / table.unit_minutes
    } else {
        0
    }
}

/// One timed code of the visit: its lines pooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeAllocation<'a> {
    pub code: &'a str,
    pub minutes: u64,
    pub billed: u64,
    /// The units this code may carry: `min..=max` (a range only where remainders tie).
    pub min: u64,
    pub max: u64,
}

/// The allowed total and each code's accepted range under `method`.
pub fn allocate(method: UnitMethod, table: UnitTable, codes: &mut [CodeAllocation]) -> u64 {
    match method {
        UnitMethod::AmaPerCode => codes.iter_mut().fold(0, |total, code| {
            let units = units_for_minutes(table, code.minutes);
            code.min = units;
            code.max = units;
            total + units
        }),
        UnitMethod::CmsTotalTime => {
            let total_minutes: u64 = codes.iter().map(|c| c.minutes).sum();
            let allowed = units_for_minutes(table, total_minutes);
            let full_units: u64 = codes.iter().map(|c| c.minutes / table.unit_minutes).sum();
            let leftover = allowed.saturating_sub(full_units);
            let mut remainders: VisitList<u64> = codes
                .iter()
                .map(|c| c.minutes % table.unit_minutes)
                .filter(|&r| r > 0)
                .collect();
            remainders.sort_unstable_by(|a, b| b.cmp(a));
            // The remainder of the last code that takes a leftover unit; codes above it must
            // take one, codes equal to it may (ties) unless every tied code is needed.
            let cutoff = usize::try_from(leftover)
                .ok()
                .filter(|&n| n > 0)
                .and_then(|n| remainders.get(n - 1).copied());
            let above = cutoff.map_or(0, |c| remainders.iter().filter(|&&r| r > c).count());
            let tied = cutoff.map_or(0, |c| remainders.iter().filter(|&&r| r == c).count());
            let tied_must = u64::try_from(tied).unwrap_or(u64::MAX)
                == leftover.saturating_sub(u64::try_from(above).unwrap_or(0));
            for code in codes.iter_mut() {
                let full = code.minutes / table.unit_minutes;
                let remainder = code.minutes % table.unit_minutes;
                let (must, may) = match cutoff {
                    Some(cutoff) if remainder > cutoff => (1, 1),
                    Some(cutoff) if remainder == cutoff && tied_must => (1, 1),
                    Some(cutoff) if remainder == cutoff => (0, 1),
                    _ => (0, 0),
                };
                code.min = full + must;
                code.max = full + may;
            }
            allowed
        }
    }
}

pub fn check<'a>(visit: &Visit<'a>, out: &mut Vec<Finding>) -> Option<UnitSummary<'a>> {
    let lines = &visit.encounter.service_lines;
    let procedures = visit.rules.procedures();
    let untimed_again = untimed_billed_again(visit);
    check_duplicates(lines, &untimed_again, out);

    let mut timed: VisitList<(usize, &ServiceLine)> = VisitList::new();
    let mut therapy_visit = false;
    for (index, line) in lines.iter().enumerate() {
        let Some(info) = procedures.get(&line.procedure_code) else {
            continue;
        };
        therapy_visit |= info.always_therapy || info.kind == ProcedureKind::Timed;
        match info.kind {
            ProcedureKind::Timed => timed.push((index, line)),
            ProcedureKind::Untimed if line.units > 1 => out.push(
                Finding::new(
                    ReasonCode::UntimedCodeUnits,
                    format!("service_lines[{index}].units"),
                    format!("{} is a service-based code: one unit per date of service, whatever the time.", line.procedure_code),
                )
                .expected("1")
                .actual(line.units.to_string())
                .remedy(format!("Bill {} as 1 unit.", line.procedure_code)),
            ),
            ProcedureKind::Untimed => {}
        }
        if let Some((_, first)) = untimed_again.iter().find(|(again, _)| *again == index) {
            let code = &line.procedure_code;
            out.push(
                Finding::new(
                    ReasonCode::UntimedCodeUnits,
                    format!("service_lines[{index}].units"),
                    format!("{code} is a service-based code: one unit per date of service, and line {first} already bills it."),
                )
                .expected(format!("0 (billed on line {first})"))
                .actual(line.units.to_string())
                .remedy(format!("Bill {code} once for the date of service, on one line.")),
            );
        }
    }

    let timed_minutes: u64 = timed.iter().map(|(_, line)| u64::from(line.minutes)).sum();
    check_total_time(visit, therapy_visit, timed_minutes, out);

    let mut minutes_missing = false;
    for (index, line) in &timed {
        if line.units > 0 && line.minutes == 0 {
            minutes_missing = true;
            out.push(
                Finding::new(
                    ReasonCode::TimedMinutesMissing,
                    format!("service_lines[{index}].minutes"),
                    format!("{} is a timed code: its units must be backed by the minutes of direct treatment.", line.procedure_code),
                )
                .expected("the direct one-on-one minutes of this service")
                .actual("0")
                .remedy("Enter the minutes from the treatment note; the units are then checked against the 8-minute rule."),
            );
        }
    }
    if timed.is_empty() || minutes_missing {
        return None;
    }

    // Pool lines by code, in order of first appearance.
    let mut codes: VisitList<CodeAllocation<'_>> = VisitList::new();
    let mut line_code: VisitList<usize> = VisitList::new();
    for (_, line) in &timed {
        let position = match codes.iter().position(|c| c.code == line.procedure_code) {
            Some(position) => position,
            None => {
                codes.push(CodeAllocation {
                    code: &line.procedure_code,
                    minutes: 0,
                    billed: 0,
                    min: 0,
                    max: 0,
                });
                codes.len() - 1
            }
        };
        codes[position].minutes += u64::from(line.minutes);
        codes[position].billed += u64::from(line.units);
        line_code.push(position);
    }
    let method = visit.profile.unit_method;
    let table = visit.rules.therapy().unit_table;
    let allowed = allocate(method, table, &mut codes);
    let billed: u64 = codes.iter().map(|c| c.billed).sum();

    judge(
        visit,
        &timed,
        &line_code,
        &codes,
        allowed,
        billed,
        timed_minutes,
        out,
    );

    Some(UnitSummary {
        method,
        total_timed_minutes: clamp(timed_minutes),
        allowed_timed_units: clamp(allowed),
        billed_timed_units: clamp(billed),
        lines: line_ranges(table, &timed, &line_code, &codes),
    })
}

fn clamp(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The field of a code's finding: its billing line (the first, if several).
fn code_field(timed: &[(usize, &ServiceLine)], line_code: &[usize], position: usize) -> String {
    let lines: Vec<usize> = line_code
        .iter()
        .zip(timed)
        .filter(|(code, _)| **code == position)
        .map(|(_, (index, _))| *index)
        .collect();
    let billing = line_code
        .iter()
        .zip(timed)
        .find(|(code, (_, line))| **code == position && line.units > 0)
        .map(|(_, (index, _))| *index);
    format!(
        "service_lines[{}].units",
        billing.or(lines.first().copied()).unwrap_or(0)
    )
}

/// The accepted billing, for a remedy: "97110 × 2, 97140 × 1".
fn accepted_billing(codes: &[CodeAllocation]) -> String {
    let parts: Vec<String> = codes
        .iter()
        .map(|c| {
            if c.min == c.max {
                format!("{} × {}", c.code, c.min)
            } else {
                format!("{} × {} or {}", c.code, c.min, c.max)
            }
        })
        .collect();
    let tied = codes.iter().any(|c| c.min != c.max);
    format!(
        "{}{}",
        parts.join(", "),
        if tied {
            " (tied remainders: the extra unit may go to any tied code)"
        } else {
            ""
        }
    )
}

#[allow(clippy::too_many_arguments)]
fn judge(
    visit: &Visit<'_>,
    timed: &[(usize, &ServiceLine)],
    line_code: &[usize],
    codes: &[CodeAllocation],
    allowed: u64,
    billed: u64,
    timed_minutes: u64,
    out: &mut Vec<Finding>,
) {
    let method = visit.profile.unit_method;
    let table = visit.rules.therapy().unit_table;
    let method_name = match method {
        UnitMethod::CmsTotalTime => "CMS total-time",
        UnitMethod::AmaPerCode => "AMA per-code",
    };
    // Codes judged under 8 minutes are not judged again (one finding per problem).
    let mut under_eight = BTreeSet::new();
    for (position, code) in codes.iter().enumerate() {
        let nothing_allowed = match method {
            UnitMethod::CmsTotalTime => allowed == 0,
            UnitMethod::AmaPerCode => code.minutes < table.minimum_minutes,
        };
        if nothing_allowed && code.billed > 0 {
            under_eight.insert(position);
            for ((index, line), _) in timed.iter().zip(line_code).filter(|(_, c)| **c == position) {
                if line.units == 0 {
                    continue;
                }
                let minutes = match method {
                    UnitMethod::CmsTotalTime => {
                        format!("{timed_minutes} timed minutes in the visit")
                    }
                    UnitMethod::AmaPerCode => format!("{} minutes of {}", code.minutes, code.code),
                };
                out.push(
                    Finding::new(
                        ReasonCode::TimedServiceUnder8Minutes,
                        format!("service_lines[{index}].units"),
                        format!(
                            "{minutes}: under 8 minutes no unit may be billed ({method_name} rule)."
                        ),
                    )
                    .expected("0")
                    .actual(line.units.to_string())
                    .remedy(format!(
                        "Do not bill units for {}; keep the minutes documented in the note.",
                        line.procedure_code
                    )),
                );
            }
        }
    }
    let judged: VisitList<(usize, &CodeAllocation<'_>)> = codes
        .iter()
        .enumerate()
        .filter(|(p, _)| !under_eight.contains(p))
        .collect();
    let billed_judged = billed - under_eight.iter().map(|&p| codes[p].billed).sum::<u64>();
    // Built only when there is a finding: a clean visit formats nothing.
    let basis = || match method {
        UnitMethod::CmsTotalTime => {
            format!("{timed_minutes} timed minutes allow {allowed} unit(s) in all")
        }
        UnitMethod::AmaPerCode => {
            format!("rounding each code on its own allows {allowed} unit(s) in all")
        }
    };
    let remedy = || format!("Bill {}.", accepted_billing(codes));
    let over: VisitList<&(usize, &CodeAllocation<'_>)> =
        judged.iter().filter(|(_, c)| c.billed > c.max).collect();
    let exceed = |position: usize, code: &CodeAllocation| {
        Finding::new(
            ReasonCode::UnitsExceedTime,
            code_field(timed, line_code, position),
            format!(
                "{} bills {} unit(s) for {} minutes; {} ({method_name} rule).",
                code.code,
                code.billed,
                code.minutes,
                basis()
            ),
        )
        .expected(format!("at most {}", code.max))
        .actual(code.billed.to_string())
        .remedy(remedy())
    };
    if billed_judged > allowed {
        if over.is_empty() {
            out.push(
                Finding::new(
                    ReasonCode::UnitsExceedTime,
                    "service_lines",
                    format!(
                        "The visit bills {billed_judged} timed units; {} ({method_name} rule).",
                        basis()
                    ),
                )
                .expected(allowed.to_string())
                .actual(billed_judged.to_string())
                .remedy(remedy()),
            );
        }
        for (position, code) in &over {
            out.push(exceed(*position, code));
        }
    } else if billed_judged == allowed && method == UnitMethod::AmaPerCode {
        // Each code is rounded on its own: a right total is a coincidence, not an allocation
        // to redistribute. A code over its units exceeds its time; one under loses revenue.
        for (position, code) in &judged {
            if code.billed > code.max {
                out.push(exceed(*position, code));
            } else if code.billed < code.min {
                out.push(
                    Finding::new(
                        ReasonCode::UnitsBelowTime,
                        code_field(timed, line_code, *position),
                        format!(
                            "{} bills {} unit(s) for {} minutes; {} ({method_name} rule): revenue is lost.",
                            code.code,
                            code.billed,
                            code.minutes,
                            basis()
                        ),
                    )
                    .expected(code.min.to_string())
                    .actual(code.billed.to_string())
                    .remedy(remedy()),
                );
            }
        }
    } else if billed_judged == allowed {
        for (position, code) in &judged {
            if code.billed < code.min || code.billed > code.max {
                let range = if code.min == code.max {
                    code.min.to_string()
                } else {
                    format!("{} to {}", code.min, code.max)
                };
                out.push(
                    Finding::new(
                        ReasonCode::UnitsDistributionInvalid,
                        code_field(timed, line_code, *position),
                        format!("The visit's {allowed} unit(s) are right in total, but {} carries {} and its {} minutes give it {range} ({method_name} allocation).", code.code, code.billed, code.minutes),
                    )
                    .expected(range)
                    .actual(code.billed.to_string())
                    .remedy(remedy()),
                );
            }
        }
    } else {
        for (position, code) in &over {
            out.push(exceed(*position, code));
        }
        out.push(
            Finding::new(
                ReasonCode::UnitsBelowTime,
                "service_lines",
                format!("The visit bills {billed_judged} timed unit(s); {} ({method_name} rule): revenue is lost.", basis()),
            )
            .expected(allowed.to_string())
            .actual(billed_judged.to_string())
            .remedy(remedy()),
        );
    }
    // Lines of one code share its units, but no line bills more 15-minute blocks than its own
    // minutes started.
    for (position, code) in &judged {
        let lines: VisitList<&(usize, &ServiceLine)> = timed
            .iter()
            .zip(line_code)
            .filter(|(_, c)| **c == *position)
            .map(|(l, _)| l)
            .collect();
        if lines.len() < 2 || code.billed > code.max {
            continue;
        }
        for (index, line) in lines {
            let ceiling = u64::from(line.minutes).div_ceil(table.unit_minutes);
            if u64::from(line.units) > ceiling {
                out.push(
                    Finding::new(
                        ReasonCode::UnitsExceedTime,
                        format!("service_lines[{index}].units"),
                        format!(
                            "This {} line bills {} unit(s) for its own {} minutes.",
                            code.code, line.units, line.minutes
                        ),
                    )
                    .expected(format!("at most {ceiling}"))
                    .actual(line.units.to_string())
                    .remedy(format!(
                        "Move the unit to the {} line whose minutes furnished it.",
                        code.code
                    )),
                );
            }
        }
    }
}

/// Each timed line's accepted range: its share of its code's range.
fn line_ranges<'a>(
    table: UnitTable,
    timed: &[(usize, &'a ServiceLine)],
    line_code: &[usize],
    codes: &[CodeAllocation],
) -> Vec<UnitLine<'a>> {
    timed
        .iter()
        .zip(line_code)
        .map(|((index, line), &position)| {
            let code = &codes[position];
            let ceiling = |l: &ServiceLine| {
                u64::from(l.minutes)
                    .div_ceil(table.unit_minutes)
                    .min(code.max)
            };
            let others: u64 = timed
                .iter()
                .zip(line_code)
                .filter(|((other, _), p)| **p == position && other != index)
                .map(|((_, other), _)| ceiling(other))
                .sum();
            UnitLine {
                line_index: clamp(*index as u64),
                procedure_code: &line.procedure_code,
                expected_units_min: clamp(code.min.saturating_sub(others)),
                expected_units_max: clamp(ceiling(line)),
                minutes: line.minutes,
                billed_units: line.units,
            }
        })
        .collect()
}

fn check_total_time(
    visit: &Visit<'_>,
    therapy_visit: bool,
    timed_minutes: u64,
    out: &mut Vec<Finding>,
) {
    let total = u64::from(visit.encounter.total_treatment_minutes);
    if !therapy_visit {
        return;
    }
    if total == 0 {
        out.push(
            Finding::new(
                ReasonCode::TotalTreatmentTimeMissing,
                "total_treatment_minutes",
                "The daily note must record the total treatment time (timed plus untimed minutes).",
            )
            .expected("the total minutes of the visit")
            .actual("0")
            .remedy("Enter the total treatment minutes from the daily note."),
        );
    } else if timed_minutes > total {
        out.push(
            Finding::new(
                ReasonCode::TimedMinutesExceedTotalTime,
                "total_treatment_minutes",
                format!("The timed lines add up to {timed_minutes} minutes, more than the {total} minutes of total treatment time."),
            )
            .expected(format!("at least {timed_minutes}"))
            .actual(total.to_string())
            .remedy("Correct the minutes per line or the total treatment time to match the daily note."),
        );
    }
}

/// The same set of modifiers, whatever their order or repetition (a handful per line: no set
/// is built).
fn same_modifier_set(a: &[String], b: &[String]) -> bool {
    a.iter().all(|m| b.contains(m)) && b.iter().all(|m| a.contains(m))
}

/// `(line, first line)` of each line that bills a service-based code an earlier line already
/// bills: one unit per date of service holds across lines too (a second line of 97161 with
/// another modifier is a second evaluation billed).
fn untimed_billed_again(visit: &Visit<'_>) -> VisitList<(usize, usize)> {
    let procedures = visit.rules.procedures();
    let mut first_billed: VisitList<(&str, usize)> = VisitList::new();
    let mut again = VisitList::new();
    for (index, line) in visit.encounter.service_lines.iter().enumerate() {
        let untimed = procedures
            .get(&line.procedure_code)
            .is_some_and(|info| info.kind == ProcedureKind::Untimed);
        if !untimed || line.units == 0 {
            continue;
        }
        let code = line.procedure_code.as_str();
        match first_billed.iter().find(|(billed, _)| *billed == code) {
            Some((_, first)) => again.push((index, *first)),
            None => first_billed.push((code, index)),
        }
    }
    again
}

/// DUPLICATE_CODE_LINES, except on the lines UNTIMED_CODE_UNITS names (one finding per
/// problem).
fn check_duplicates(
    lines: &[ServiceLine],
    untimed_again: &[(usize, usize)],
    out: &mut Vec<Finding>,
) {
    for (index, line) in lines.iter().enumerate() {
        if line.procedure_code.is_empty() || untimed_again.iter().any(|(again, _)| *again == index)
        {
            continue;
        }
        let earlier = lines[..index].iter().position(|other| {
            other.procedure_code == line.procedure_code
                && same_modifier_set(&other.modifiers, &line.modifiers)
        });
        if let Some(first) = earlier {
            out.push(
                Finding::new(
                    ReasonCode::DuplicateCodeLines,
                    format!("service_lines[{index}]"),
                    format!(
                        "{} with the same modifiers is already on line {first}.",
                        line.procedure_code
                    ),
                )
                .expected("one line per code and modifier set")
                .actual(format!("lines {first} and {index}"))
                .remedy(format!(
                    "Report {} on one line with the units summed (some MACs reject split lines).",
                    line.procedure_code
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::outcome::Outcome;
    use crate::core::reason::Reason;
    use crate::core::test_support::{as_of, rules, seed_visit};
    use crate::core::types::{BodyRegion, Encounter, Laterality, PayerKind, Region};
    use proptest::prelude::*;

    const REGIONS: [Region; 6] = [
        Region::Cervical,
        Region::Lumbar,
        Region::Shoulder,
        Region::Knee,
        Region::Hip,
        Region::Thoracic,
    ];

    /// The seed visit with its lines replaced: (code, minutes, units) per line.
    fn visit(kind: PayerKind, lines: &[(&str, u32, u32)]) -> Encounter {
        let mut encounter = seed_visit();
        encounter.payer.as_mut().unwrap().kind = Some(kind);
        encounter.service_lines = lines
            .iter()
            .enumerate()
            .map(|(index, (code, minutes, units))| {
                let mut line = encounter.service_lines[0].clone();
                line.procedure_code = (*code).to_owned();
                line.minutes = *minutes;
                line.units = *units;
                line.modifiers = vec!["GP".into()];
                line.body_regions = vec![BodyRegion {
                    region: Some(REGIONS[index % REGIONS.len()]),
                    laterality: Laterality::None,
                }];
                line.techniques.clear();
                line
            })
            .collect();
        encounter.total_treatment_minutes = lines.iter().map(|l| l.1).sum::<u32>().max(1);
        encounter
    }

    /// The outcome borrows the visit, so the (small) test visit is leaked to return it.
    fn run(kind: PayerKind, lines: &[(&str, u32, u32)]) -> Outcome<'static> {
        let visit = Box::leak(Box::new(visit(kind, lines)));
        crate::core::validate(visit, rules(), as_of())
    }

    const UNIT_CODES: [ReasonCode; 6] = [
        ReasonCode::UntimedCodeUnits,
        ReasonCode::UnitsExceedTime,
        ReasonCode::UnitsDistributionInvalid,
        ReasonCode::UnitsBelowTime,
        ReasonCode::TimedServiceUnder8Minutes,
        ReasonCode::TimedMinutesMissing,
    ];

    fn unit_reasons<'a>(outcome: &'a Outcome<'_>) -> Vec<&'a Reason> {
        outcome
            .reasons
            .iter()
            .filter(|r| UNIT_CODES.contains(&r.code))
            .collect()
    }

    /// A worked example: minutes per code, the CMS allowed total with each code's accepted
    /// range, and the AMA total.
    struct Worked {
        id: &'static str,
        source: &'static str,
        minutes: &'static [(&'static str, u32)],
        cms_allowed: u64,
        cms_ranges: &'static [(u64, u64)],
        ama_allowed: u64,
    }

    const WORKED: &[Worked] = &[
        Worked {
            id: "CMS-1",
            source: "MCPM Ch.5 §20.2 Ex.1 (findacode)",
            minutes: &[("97112", 24), ("97110", 23)],
            cms_allowed: 3,
            cms_ranges: &[(2, 2), (1, 1)],
            ama_allowed: 4,
        },
        Worked {
            id: "CMS-2",
            source: "MCPM Ch.5 §20.2 Ex.2: either code 2 units, never 3",
            minutes: &[("97112", 20), ("97110", 20)],
            cms_allowed: 3,
            cms_ranges: &[(1, 2), (1, 2)],
            ama_allowed: 2,
        },
        Worked {
            id: "CMS-3",
            source: "MCPM Ch.5 §20.2 Ex.3: 3 left of 97110 vs 7 of 97140",
            minutes: &[("97110", 33), ("97140", 7)],
            cms_allowed: 3,
            cms_ranges: &[(2, 2), (1, 1)],
            ama_allowed: 2,
        },
        Worked {
            id: "CMS-4",
            source: "MCPM Ch.5 §20.2 Ex.4 (tahoexc)",
            minutes: &[("97110", 18), ("97140", 13), ("97116", 10), ("97035", 8)],
            cms_allowed: 3,
            cms_ranges: &[(1, 1), (1, 1), (1, 1), (0, 0)],
            ama_allowed: 4,
        },
        Worked {
            id: "CMS-5",
            source: "MCPM Ch.5 §20.2 Ex.5 / R5: any one of three 7-minute codes",
            minutes: &[("97112", 7), ("97110", 7), ("97140", 7)],
            cms_allowed: 1,
            cms_ranges: &[(0, 1), (0, 1), (0, 1)],
            ama_allowed: 0,
        },
        Worked {
            id: "MAC-1",
            source: "MAC article A52758 (codapedia)",
            minutes: &[("97140", 20), ("97110", 20)],
            cms_allowed: 3,
            cms_ranges: &[(1, 2), (1, 2)],
            ama_allowed: 2,
        },
        Worked {
            id: "MAC-2",
            source: "MAC article A52758: remainder 5 < 7",
            minutes: &[("97140", 35), ("97035", 7)],
            cms_allowed: 3,
            cms_ranges: &[(2, 2), (1, 1)],
            ama_allowed: 2,
        },
        Worked {
            id: "W-1",
            source: "WebPT example (billing-rules §1.4), e-stim untimed",
            minutes: &[("97110", 30), ("97140", 15), ("97035", 8)],
            cms_allowed: 4,
            cms_ranges: &[(2, 2), (1, 1), (1, 1)],
            ama_allowed: 4,
        },
        Worked {
            id: "W-2",
            source: "WebPT example (billing-rules §1.4)",
            minutes: &[("97140", 15), ("97035", 8)],
            cms_allowed: 2,
            cms_ranges: &[(1, 1), (1, 1)],
            ama_allowed: 2,
        },
        Worked {
            id: "W-3",
            source: "WebPT example (billing-rules §1.4), R5",
            minutes: &[("97140", 5), ("97035", 3)],
            cms_allowed: 1,
            cms_ranges: &[(1, 1), (0, 0)],
            ama_allowed: 0,
        },
        Worked {
            id: "UHC",
            source: "dynamicchiropractic 57682: 1 unit, tie",
            minutes: &[("97124", 10), ("97110", 10)],
            cms_allowed: 1,
            cms_ranges: &[(0, 1), (0, 1)],
            ama_allowed: 2,
        },
        Worked {
            id: "MASS-1",
            source: "R1: a lone service under 8 minutes",
            minutes: &[("97124", 7)],
            cms_allowed: 0,
            cms_ranges: &[(0, 0)],
            ama_allowed: 0,
        },
        Worked {
            id: "MASS-2",
            source: "billing-rules §1.3 algorithm: remainder 8 > 7",
            minutes: &[("97124", 38), ("97140", 7)],
            cms_allowed: 3,
            cms_ranges: &[(3, 3), (0, 0)],
            ama_allowed: 3,
        },
    ];

    fn allocation(example: &Worked, method: UnitMethod) -> (u64, Vec<CodeAllocation<'_>>) {
        let mut codes: Vec<CodeAllocation> = example
            .minutes
            .iter()
            .map(|(code, minutes)| CodeAllocation {
                code,
                minutes: u64::from(*minutes),
                billed: 0,
                min: 0,
                max: 0,
            })
            .collect();
        let allowed = allocate(method, rules().therapy().unit_table, &mut codes);
        (allowed, codes)
    }

    /// Every billing the ranges allow that totals `allowed`: each CMS tie-break.
    fn accepted_billings(codes: &[CodeAllocation], allowed: u64) -> Vec<Vec<u64>> {
        let mut all = vec![vec![]];
        for code in codes {
            all = all
                .into_iter()
                .flat_map(|prefix: Vec<u64>| {
                    (code.min..=code.max).map(move |units| [prefix.clone(), vec![units]].concat())
                })
                .collect();
        }
        all.into_iter()
            .filter(|billing| billing.iter().sum::<u64>() == allowed)
            .collect()
    }

    #[test]
    fn worked_examples_under_both_methods() {
        for example in WORKED {
            let (allowed, codes) = allocation(example, UnitMethod::CmsTotalTime);
            assert_eq!(
                allowed, example.cms_allowed,
                "{} ({})",
                example.id, example.source
            );
            let ranges: Vec<(u64, u64)> = codes.iter().map(|c| (c.min, c.max)).collect();
            assert_eq!(
                ranges, example.cms_ranges,
                "{} ({})",
                example.id, example.source
            );
            let (ama, _) = allocation(example, UnitMethod::AmaPerCode);
            assert_eq!(
                ama, example.ama_allowed,
                "{} AMA (billing-rules §2)",
                example.id
            );

            // Every tie-break of the CMS allocation validates without a unit finding (Medicare),
            // and the AMA allocation does under a commercial payer.
            let billings = accepted_billings(&codes, allowed);
            assert!(!billings.is_empty(), "{}", example.id);
            for billing in billings {
                let lines: Vec<(&str, u32, u32)> = example
                    .minutes
                    .iter()
                    .zip(&billing)
                    .map(|((c, m), u)| (*c, *m, *u as u32))
                    .collect();
                let outcome = run(PayerKind::Medicare, &lines);
                assert!(
                    unit_reasons(&outcome).is_empty(),
                    "{} {billing:?}: {:#?}",
                    example.id,
                    unit_reasons(&outcome)
                );
                let units = outcome.units.expect("unit summary");
                assert_eq!(
                    (units.method, u64::from(units.allowed_timed_units)),
                    (UnitMethod::CmsTotalTime, allowed)
                );
            }
            let ama_lines: Vec<(&str, u32, u32)> = example
                .minutes
                .iter()
                .map(|(c, m)| {
                    (
                        *c,
                        *m,
                        units_for_minutes(rules().therapy().unit_table, u64::from(*m)) as u32,
                    )
                })
                .collect();
            let outcome = run(PayerKind::Commercial, &ama_lines);
            assert!(
                unit_reasons(&outcome).is_empty(),
                "{} AMA: {:#?}",
                example.id,
                unit_reasons(&outcome)
            );
            assert_eq!(outcome.units.unwrap().method, UnitMethod::AmaPerCode);
        }
    }

    #[test]
    fn boundaries_of_the_unit_table() {
        // billing-rules §1.1 table and closed form.
        let table = [
            (7, 0),
            (8, 1),
            (22, 1),
            (23, 2),
            (37, 2),
            (38, 3),
            (52, 3),
            (53, 4),
            (67, 4),
            (68, 5),
            (82, 5),
            (83, 6),
            (97, 6),
            (98, 7),
            (112, 7),
            (113, 8),
            (127, 8),
            (128, 9),
        ];
        for (minutes, units) in table {
            assert_eq!(
                units_for_minutes(rules().therapy().unit_table, minutes),
                units,
                "{minutes} minutes"
            );
        }
    }

    /// One row per wrong billing: the finding it must raise, where, and why (source).
    #[test]
    fn wrong_billings_are_named() {
        use PayerKind::{Commercial, Medicare};
        use ReasonCode::*;
        type Row<'a> = (
            &'a str,
            &'a str,
            PayerKind,
            &'a [(&'a str, u32, u32)],
            ReasonCode,
            &'a str,
        );
        let cases: &[Row<'_>] = &[
            (
                "CMS-2 billed 3 + 0",
                "MCPM §20.2 Ex.2: never 3 units of one code",
                Medicare,
                &[("97112", 20, 3), ("97110", 20, 0)],
                UnitsDistributionInvalid,
                "service_lines[0].units",
            ),
            (
                "CMS-3 billed 3 + 0",
                "MCPM §20.2 Ex.3",
                Medicare,
                &[("97110", 33, 3), ("97140", 7, 0)],
                UnitsDistributionInvalid,
                "service_lines[0].units",
            ),
            (
                "CMS-1 billed 2 + 2 (AMA rounding under Medicare)",
                "MCPM §20.2 R2",
                Medicare,
                &[("97112", 24, 2), ("97110", 23, 2)],
                UnitsExceedTime,
                "service_lines[1].units",
            ),
            (
                "UHC billed 1 + 1",
                "dynamicchiropractic 57682 (recouped)",
                Medicare,
                &[("97124", 10, 1), ("97110", 10, 1)],
                UnitsExceedTime,
                "service_lines",
            ),
            (
                "MASS-1 billed 1",
                "MCPM §20.2 R1",
                Medicare,
                &[("97124", 7, 1)],
                TimedServiceUnder8Minutes,
                "service_lines[0].units",
            ),
            (
                "AMA: 5 minutes of 97110 billed",
                "AMA per-code rule (billing-rules §2)",
                Commercial,
                &[("97124", 10, 1), ("97110", 5, 1)],
                TimedServiceUnder8Minutes,
                "service_lines[1].units",
            ),
            (
                "CMS-1 billed 2 + 1 under AMA",
                "AMA per-code rule: 2 + 2",
                Commercial,
                &[("97112", 24, 2), ("97110", 23, 1)],
                UnitsBelowTime,
                "service_lines",
            ),
            // A right total under AMA is no allocation: each code is judged on its own.
            (
                "AMA: 30 minutes billed 3, 8 minutes billed 0 (total 3 = 2 + 1)",
                "AMA per-code rule (billing-rules §2); contract §3: UNITS_DISTRIBUTION_INVALID is the CMS allocation's",
                Commercial,
                &[("97110", 30, 3), ("97140", 8, 0)],
                UnitsExceedTime,
                "service_lines[0].units",
            ),
            (
                "AMA: 30 minutes billed 3, 8 minutes billed 0, the under-billed code",
                "AMA per-code rule (billing-rules §2); contract §3 UNITS_BELOW_TIME",
                Commercial,
                &[("97110", 30, 3), ("97140", 8, 0)],
                UnitsBelowTime,
                "service_lines[1].units",
            ),
            (
                "97161 on two lines with the same modifiers",
                "billing-rules §0: service-based codes are billed as 1 unit per date of service",
                Medicare,
                &[("97161", 0, 1), ("97161", 0, 1)],
                UntimedCodeUnits,
                "service_lines[1].units",
            ),
            (
                "units without minutes",
                "MBPM §220.3",
                Medicare,
                &[("97124", 0, 2)],
                TimedMinutesMissing,
                "service_lines[0].minutes",
            ),
            (
                "PT line bills the PTA's unit",
                "contract §4: lines of one code checked against their own minutes",
                Medicare,
                &[("97110", 23, 0), ("97110", 13, 2), ("97140", 30, 2)],
                UnitsExceedTime,
                "service_lines[1].units",
            ),
        ];
        for (name, source, kind, lines, code, field) in cases {
            let outcome = run(*kind, lines);
            let found = unit_reasons(&outcome);
            assert!(
                found
                    .iter()
                    .any(|r| r.code == *code && r.field == *field && !r.remedy.is_empty()),
                "{name} ({source}): expected {code} at {field}, got {found:#?}"
            );
            // The CMS allocation's finding never comes from the AMA rule.
            if *kind == Commercial {
                assert!(
                    found.iter().all(|r| r.code != UnitsDistributionInvalid),
                    "{name}: {found:#?}"
                );
            }
            // One finding per problem: an under-8 line is not also over its time.
            if *code == TimedServiceUnder8Minutes {
                assert!(
                    found.iter().all(|r| r.code != UnitsExceedTime),
                    "{name}: {found:#?}"
                );
            }
        }
        // A service-based code billed on two lines is one problem, whatever the second line's
        // modifiers: UNTIMED_CODE_UNITS on it, not also DUPLICATE_CODE_LINES (contract §9).
        for second_line in [vec!["GP"], vec!["GP", "59"]] {
            let mut encounter = visit(Medicare, &[("97161", 0, 1), ("97161", 0, 1)]);
            encounter.service_lines[1].modifiers =
                second_line.iter().map(|m| (*m).to_owned()).collect();
            let encounter = Box::leak(Box::new(encounter));
            let outcome = crate::core::validate(encounter, rules(), as_of());
            let found: Vec<(ReasonCode, &str)> = outcome
                .reasons
                .iter()
                .filter(|r| [UntimedCodeUnits, DuplicateCodeLines].contains(&r.code))
                .map(|r| (r.code, r.field.as_str()))
                .collect();
            assert_eq!(
                found,
                [(UntimedCodeUnits, "service_lines[1].units")],
                "{second_line:?}"
            );
        }
        // The one-unit finding for UNITS_BELOW_TIME is a warning: the claim still validates.
        let outcome = run(Commercial, &[("97112", 24, 2), ("97110", 23, 1)]);
        assert_eq!(
            outcome.status,
            crate::core::outcome::Status::Validated,
            "{:#?}",
            outcome.reasons
        );
    }

    #[test]
    fn a_cq_split_is_allocated_per_code_then_per_line() {
        // billing-rules §1.5: PTA 23 and PT 13 minutes of 97110, PT 30 of 97140: 66 minutes = 4
        // units, 97110 pooled to 36 minutes = 2 units.
        let outcome = run(
            PayerKind::Medicare,
            &[("97110", 23, 1), ("97110", 13, 1), ("97140", 30, 2)],
        );
        assert!(
            unit_reasons(&outcome).is_empty(),
            "{:#?}",
            unit_reasons(&outcome)
        );
        let units = outcome.units.unwrap();
        assert_eq!(
            (
                units.total_timed_minutes,
                units.allowed_timed_units,
                units.billed_timed_units
            ),
            (66, 4, 4)
        );
        let ranges: Vec<(u32, u32)> = units
            .lines
            .iter()
            .map(|l| (l.expected_units_min, l.expected_units_max))
            .collect();
        assert_eq!(ranges, [(1, 2), (0, 1), (2, 2)]);
    }

    #[test]
    fn untimed_units_duplicates_and_total_time() {
        let outcome = run(PayerKind::Medicare, &[("97110", 30, 2), ("97164", 20, 2)]);
        let untimed = outcome
            .reasons
            .iter()
            .find(|r| r.code == ReasonCode::UntimedCodeUnits)
            .expect("UNTIMED_CODE_UNITS");
        assert_eq!(
            (untimed.field.as_str(), untimed.carc.as_str()),
            ("service_lines[1].units", "CO-151")
        );
        // Untimed minutes do not count toward the timed total (billing-rules §0).
        assert_eq!(outcome.units.unwrap().total_timed_minutes, 30);

        let outcome = run(PayerKind::Medicare, &[("97110", 15, 1), ("97110", 15, 1)]);
        let duplicate = outcome
            .reasons
            .iter()
            .find(|r| r.code == ReasonCode::DuplicateCodeLines)
            .expect("DUPLICATE_CODE_LINES");
        assert_eq!(
            (duplicate.field.as_str(), duplicate.severity),
            ("service_lines[1]", crate::core::reason::Severity::Warning)
        );

        let mut encounter = visit(PayerKind::Medicare, &[("97110", 30, 2)]);
        encounter.total_treatment_minutes = 25;
        let reasons = crate::core::test_support::reasons_for(&encounter);
        let over = reasons
            .iter()
            .find(|r| r.code == ReasonCode::TimedMinutesExceedTotalTime)
            .expect("exceeds total");
        assert_eq!(
            (over.field.as_str(), over.carc.as_str()),
            ("total_treatment_minutes", "CO-16")
        );
        encounter.total_treatment_minutes = 0;
        let reasons = crate::core::test_support::reasons_for(&encounter);
        assert!(
            reasons
                .iter()
                .any(|r| r.code == ReasonCode::TotalTreatmentTimeMissing && r.carc == "CO-16")
        );
        // Commercial payers are not held to the Medicare daily-note rule.
        encounter.payer.as_mut().unwrap().kind = Some(PayerKind::Commercial);
        let reasons = crate::core::test_support::reasons_for(&encounter);
        assert!(
            reasons
                .iter()
                .all(|r| r.code != ReasonCode::TotalTreatmentTimeMissing)
        );
    }

    /// billing-rules §1.3 acceptance test, written independently of `allocate`.
    fn cms_accepts(minutes: &[u64], billed: &[u64]) -> bool {
        let total: u64 = minutes.iter().sum();
        let allowed = if total >= 8 { (total + 7) / 15 } else { 0 };
        if billed.iter().sum::<u64>() != allowed {
            return false;
        }
        let full: Vec<u64> = minutes.iter().map(|m| m / 15).collect();
        let extra: Vec<bool> = billed.iter().zip(&full).map(|(b, f)| b > f).collect();
        if billed.iter().zip(&full).any(|(b, f)| b < f || *b > f + 1) {
            return false;
        }
        (0..minutes.len()).all(|i| {
            (0..minutes.len()).all(|j| !extra[i] || extra[j] || minutes[i] % 15 >= minutes[j] % 15)
        })
    }

    const TIMED: [&str; 6] = ["97110", "97112", "97116", "97124", "97140", "97530"];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Random visits and random billings: accepted exactly when the §1.3 test accepts,
        /// otherwise rejected (or warned, when under-billed) with the right code.
        #[test]
        fn random_cms_billings(
            codes in prop::sample::subsequence(TIMED.to_vec(), 1..=5),
            minutes in prop::collection::vec(0u32..=120, 5),
            units in prop::collection::vec(0u32..=9, 5),
        ) {
            let lines: Vec<(&str, u32, u32)> = codes.iter().enumerate().map(|(i, c)| (*c, minutes[i], units[i])).collect();
            let outcome = run(PayerKind::Medicare, &lines);
            let found = unit_reasons(&outcome);
            if lines.iter().any(|l| l.1 == 0 && l.2 > 0) {
                // Units without minutes cannot be judged: that is the finding.
                prop_assert!(found.iter().all(|r| r.code == ReasonCode::TimedMinutesMissing) && !found.is_empty(), "{lines:?}: {found:#?}");
                return Ok(());
            }
            let m: Vec<u64> = lines.iter().map(|l| u64::from(l.1)).collect();
            let b: Vec<u64> = lines.iter().map(|l| u64::from(l.2)).collect();
            let allowed = units_for_minutes(rules().therapy().unit_table, m.iter().sum());
            let billed: u64 = b.iter().sum();
            let has = |code: ReasonCode| found.iter().any(|r| r.code == code);
            if cms_accepts(&m, &b) {
                prop_assert!(found.is_empty(), "{lines:?}: {found:#?}");
            } else if billed > allowed {
                prop_assert!(has(ReasonCode::UnitsExceedTime) || (allowed == 0 && has(ReasonCode::TimedServiceUnder8Minutes)), "{lines:?}: {found:#?}");
            } else if billed == allowed {
                prop_assert!(has(ReasonCode::UnitsDistributionInvalid), "{lines:?}: {found:#?}");
            } else {
                prop_assert!(has(ReasonCode::UnitsBelowTime), "{lines:?}: {found:#?}");
            }
            let summary = outcome.units.unwrap();
            prop_assert_eq!(u64::from(summary.allowed_timed_units), allowed);
            prop_assert_eq!(u64::from(summary.billed_timed_units), billed);
        }

        /// Every accepted billing (any tie-break) totals the allowed units, keeps each code in
        /// its range, and validates without a unit finding.
        #[test]
        fn every_cms_tie_break_is_accepted(
            codes in prop::sample::subsequence(TIMED.to_vec(), 1..=5),
            minutes in prop::collection::vec(0u32..=120, 5),
            pick in any::<prop::sample::Index>(),
        ) {
            let mut allocation: Vec<CodeAllocation> = codes.iter().enumerate()
                .map(|(i, c)| CodeAllocation { code: c, minutes: u64::from(minutes[i]), billed: 0, min: 0, max: 0 })
                .collect();
            let allowed = allocate(UnitMethod::CmsTotalTime, rules().therapy().unit_table, &mut allocation);
            let billings = accepted_billings(&allocation, allowed);
            prop_assert!(!billings.is_empty());
            let billing = &billings[pick.index(billings.len())];
            let m: Vec<u64> = allocation.iter().map(|c| c.minutes).collect();
            prop_assert!(cms_accepts(&m, billing), "{m:?} {billing:?}");
            let lines: Vec<(&str, u32, u32)> = codes.iter().enumerate().map(|(i, c)| (*c, minutes[i], billing[i] as u32)).collect();
            let outcome = run(PayerKind::Medicare, &lines);
            prop_assert!(unit_reasons(&outcome).is_empty(), "{lines:?}: {:#?}", unit_reasons(&outcome));
        }
    }
}
