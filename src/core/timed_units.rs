//! Timed units: the 8-minute rule under the payer's method (contract §4), untimed units,
//! duplicate lines and the visit's time fields.
//!
//! CMS_TOTAL_TIME: `T` = the timed minutes of the visit, `U = T >= 8 ? (T + 7) / 15 : 0`;
//! each code keeps its full 15-minute units, the leftover units go one each to the codes with
//! the largest remainders, and any tie-break is accepted. AMA_PER_CODE rounds each code on its
//! own. Lines of one code (e.g. with and without CQ) are allocated together, then each line is
//! checked against its own minutes.

use std::collections::BTreeSet;

use super::Visit;
use super::data::ProcedureKind;
use super::outcome::{UnitLine, UnitSummary};
use super::reason::{Finding, ReasonCode};
use super::types::{ServiceLine, UnitMethod};

/// Minutes per unit and the fewest minutes that earn one (CMS Pub 100-04 Ch.5 §20.2).
const MINUTES_PER_UNIT: u64 = 15;
const MINIMUM_MINUTES: u64 = 8;

/// Units the 8-minute table gives `minutes` (billing-rules §1.1: `T >= 8 ? (T + 7) / 15 : 0`).
pub fn units_for_minutes(minutes: u64) -> u64 {
    if minutes >= MINIMUM_MINUTES {
        (minutes + MINIMUM_MINUTES - 1) / MINUTES_PER_UNIT
    } else {
        0
    }
}

/// One timed code of the visit: its lines pooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeAllocation {
    pub code: String,
    pub minutes: u64,
    pub billed: u64,
    /// The units this code may carry: `min..=max` (a range only where remainders tie).
    pub min: u64,
    pub max: u64,
}

/// The allowed total and each code's accepted range under `method`.
pub fn allocate(method: UnitMethod, codes: &mut [CodeAllocation]) -> u64 {
    match method {
        UnitMethod::AmaPerCode => codes.iter_mut().fold(0, |total, code| {
            let units = units_for_minutes(code.minutes);
            code.min = units;
            code.max = units;
            total + units
        }),
        UnitMethod::CmsTotalTime => {
            let total_minutes: u64 = codes.iter().map(|c| c.minutes).sum();
            let allowed = units_for_minutes(total_minutes);
            let full_units: u64 = codes.iter().map(|c| c.minutes / MINUTES_PER_UNIT).sum();
            let leftover = allowed.saturating_sub(full_units);
            let mut remainders: Vec<u64> = codes
                .iter()
                .map(|c| c.minutes % MINUTES_PER_UNIT)
                .filter(|&r| r > 0)
                .collect();
            remainders.sort_unstable_by(|a, b| b.cmp(a));
            // The remainder of the last code that takes a leftover unit; codes above it must
            // take one, codes equal to it may (ties), codes below it may not.
            let cutoff = usize::try_from(leftover)
                .ok()
                .filter(|&n| n > 0)
                .and_then(|n| remainders.get(n - 1).copied());
            for code in codes.iter_mut() {
                let full = code.minutes / MINUTES_PER_UNIT;
                let remainder = code.minutes % MINUTES_PER_UNIT;
                let (must, may) = match cutoff {
                    Some(cutoff) if remainder > cutoff => (1, 1),
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

pub fn check(visit: &Visit<'_>, out: &mut Vec<Finding>) -> Option<UnitSummary> {
    let lines = &visit.encounter.service_lines;
    let procedures = visit.rules.procedures();
    check_duplicates(lines, out);

    let mut timed: Vec<(usize, &ServiceLine)> = Vec::new();
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
    let mut codes: Vec<CodeAllocation> = Vec::new();
    let mut line_code: Vec<usize> = Vec::with_capacity(timed.len());
    for (_, line) in &timed {
        let position = match codes.iter().position(|c| c.code == line.procedure_code) {
            Some(position) => position,
            None => {
                codes.push(CodeAllocation {
                    code: line.procedure_code.clone(),
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
    let allowed = allocate(method, &mut codes);
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
        lines: line_ranges(&timed, &line_code, &codes),
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
    let method_name = match method {
        UnitMethod::CmsTotalTime => "CMS total-time",
        UnitMethod::AmaPerCode => "AMA per-code",
    };
    // Codes judged under 8 minutes are not judged again (one finding per problem).
    let mut under_eight = BTreeSet::new();
    for (position, code) in codes.iter().enumerate() {
        let nothing_allowed = match method {
            UnitMethod::CmsTotalTime => allowed == 0,
            UnitMethod::AmaPerCode => code.minutes < MINIMUM_MINUTES,
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
    let judged: Vec<(usize, &CodeAllocation)> = codes
        .iter()
        .enumerate()
        .filter(|(p, _)| !under_eight.contains(p))
        .collect();
    let billed_judged = billed - under_eight.iter().map(|&p| codes[p].billed).sum::<u64>();
    let basis = match method {
        UnitMethod::CmsTotalTime => {
            format!("{timed_minutes} timed minutes allow {allowed} unit(s) in all")
        }
        UnitMethod::AmaPerCode => {
            format!("rounding each code on its own allows {allowed} unit(s) in all")
        }
    };
    let remedy = format!("Bill {}.", accepted_billing(codes));
    let over: Vec<&(usize, &CodeAllocation)> =
        judged.iter().filter(|(_, c)| c.billed > c.max).collect();
    let exceed = |position: usize, code: &CodeAllocation| {
        Finding::new(
            ReasonCode::UnitsExceedTime,
            code_field(timed, line_code, position),
            format!(
                "{} bills {} unit(s) for {} minutes; {basis} ({method_name} rule).",
                code.code, code.billed, code.minutes
            ),
        )
        .expected(format!("at most {}", code.max))
        .actual(code.billed.to_string())
        .remedy(remedy.clone())
    };
    if billed_judged > allowed {
        if over.is_empty() {
            out.push(
                Finding::new(
                    ReasonCode::UnitsExceedTime,
                    "service_lines",
                    format!(
                        "The visit bills {billed_judged} timed units; {basis} ({method_name} rule)."
                    ),
                )
                .expected(allowed.to_string())
                .actual(billed_judged.to_string())
                .remedy(remedy.clone()),
            );
        }
        for (position, code) in &over {
            out.push(exceed(*position, code));
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
                    .remedy(remedy.clone()),
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
                format!("The visit bills {billed_judged} timed unit(s); {basis} ({method_name} rule): revenue is lost."),
            )
            .expected(allowed.to_string())
            .actual(billed_judged.to_string())
            .remedy(remedy.clone()),
        );
    }
    // Lines of one code share its units, but no line bills more 15-minute blocks than its own
    // minutes started.
    for (position, code) in &judged {
        let lines: Vec<&(usize, &ServiceLine)> = timed
            .iter()
            .zip(line_code)
            .filter(|(_, c)| **c == *position)
            .map(|(l, _)| l)
            .collect();
        if lines.len() < 2 || code.billed > code.max {
            continue;
        }
        for (index, line) in lines {
            let ceiling = u64::from(line.minutes).div_ceil(MINUTES_PER_UNIT);
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
fn line_ranges(
    timed: &[(usize, &ServiceLine)],
    line_code: &[usize],
    codes: &[CodeAllocation],
) -> Vec<UnitLine> {
    timed
        .iter()
        .zip(line_code)
        .map(|((index, line), &position)| {
            let code = &codes[position];
            let ceiling = |l: &ServiceLine| {
                u64::from(l.minutes)
                    .div_ceil(MINUTES_PER_UNIT)
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
                procedure_code: line.procedure_code.clone(),
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

fn check_duplicates(lines: &[ServiceLine], out: &mut Vec<Finding>) {
    for (index, line) in lines.iter().enumerate() {
        if line.procedure_code.is_empty() {
            continue;
        }
        let modifiers: BTreeSet<&String> = line.modifiers.iter().collect();
        let earlier = lines[..index].iter().position(|other| {
            other.procedure_code == line.procedure_code
                && other.modifiers.iter().collect::<BTreeSet<_>>() == modifiers
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
