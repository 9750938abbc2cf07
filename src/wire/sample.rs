//! The seed visit of `examples/` (97140 cervical + 97124 lumbar with 59, GP on both, full
//! documentation) as a sample encounter, on its own date or moved to another. Tests, benches
//! and the load generator share it: the example is dated 2025-06-16, so validated today it
//! fails timely filing and its plan of care has expired.

use chrono::{NaiveDate, TimeDelta};

use super::json::{JsonInputError, parse_encounters};
use crate::core::types::DateField;
use crate::proto::v1 as pb;

/// `examples/valid-medicare-seed-visit.json`, built in.
pub const SEED_VISIT_JSON: &str = include_str!("../../examples/valid-medicare-seed-visit.json");

/// Why the built-in example could not be read (only if the file in `examples/` is broken).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SampleError {
    #[error("examples/valid-medicare-seed-visit.json: {0}")]
    Json(#[from] JsonInputError),
    #[error("examples/valid-medicare-seed-visit.json holds no encounter")]
    NoEncounter,
    #[error("examples/valid-medicare-seed-visit.json has no valid date of service")]
    NoDateOfService,
}

/// The seed visit as written.
pub fn seed_visit() -> Result<pb::Encounter, SampleError> {
    parse_encounters(SEED_VISIT_JSON)?
        .into_iter()
        .next()
        .ok_or(SampleError::NoEncounter)
}

/// The seed visit with every date moved by the same number of days, so that its date of
/// service is `date_of_service`: the plan of care, its certification, the measures and the
/// goals keep their distance from the visit, and it validates as the example does a few days
/// after its date.
pub fn seed_visit_on(date_of_service: NaiveDate) -> Result<pb::Encounter, SampleError> {
    let mut visit = seed_visit()?;
    let written = DateField::parse(&visit.date_of_service)
        .date()
        .ok_or(SampleError::NoDateOfService)?;
    let shift = date_of_service - written;
    let mut dates: Vec<&mut String> = vec![&mut visit.date_of_service];
    if let Some(documentation) = visit.documentation.as_mut() {
        if let Some(plan) = documentation.plan_of_care.as_mut() {
            dates.extend([
                &mut plan.start_date,
                &mut plan.end_date,
                &mut plan.certified_date,
            ]);
        }
        dates.extend(documentation.goals.iter_mut().map(|g| &mut g.target_date));
        dates.extend(
            documentation
                .objective_measures
                .iter_mut()
                .map(|m| &mut m.measured_on),
        );
    }
    for date in dates {
        move_date(date, shift);
    }
    Ok(visit)
}

/// The seed visit moved to yesterday (UTC), so that it validates today, the date the service
/// validates as of.
pub fn seed_visit_yesterday() -> Result<pb::Encounter, SampleError> {
    seed_visit_on(chrono::Utc::now().date_naive() - TimeDelta::days(1))
}

/// Moves a date as the core reads it (`YYYY-MM-DD`); leaves anything else (an empty field) as
/// it is.
fn move_date(text: &mut String, shift: TimeDelta) {
    let moved = DateField::parse(text)
        .date()
        .and_then(|date| date.checked_add_signed(shift));
    if let Some(moved) = moved {
        *text = moved.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_support::rules;
    use crate::wire::check_encounter;

    fn date(text: &str) -> NaiveDate {
        DateField::parse(text).date().unwrap()
    }

    /// Every date of the example moves by the same number of days, and nothing else changes.
    /// The walk goes over the JSON form of the whole encounter, not a list of its date fields,
    /// so a date field the example fills later is checked without naming it here.
    #[test]
    fn every_date_moves_with_the_date_of_service() {
        /// Pairs up the two JSON trees leaf by leaf; returns the dates seen.
        fn compare(
            written: &serde_json::Value,
            moved: &serde_json::Value,
            shift: TimeDelta,
            path: &str,
        ) -> usize {
            use serde_json::Value;
            match (written, moved) {
                (Value::Object(was), Value::Object(is)) => {
                    let mut keys_was: Vec<&String> = was.keys().collect();
                    let mut keys_is: Vec<&String> = is.keys().collect();
                    keys_was.sort();
                    keys_is.sort();
                    assert_eq!(keys_was, keys_is, "{path}");
                    was.iter()
                        .map(|(key, value)| {
                            compare(value, &is[key], shift, &format!("{path}.{key}"))
                        })
                        .sum()
                }
                (Value::Array(was), Value::Array(is)) => {
                    assert_eq!(was.len(), is.len(), "{path}");
                    was.iter()
                        .zip(is)
                        .enumerate()
                        .map(|(index, (was, is))| {
                            compare(was, is, shift, &format!("{path}[{index}]"))
                        })
                        .sum()
                }
                (Value::String(was), Value::String(is)) => match DateField::parse(was).date() {
                    Some(was_date) => {
                        assert_eq!(date(is) - was_date, shift, "{path}: {was} → {is}");
                        1
                    }
                    None => {
                        assert_eq!(was, is, "{path}");
                        0
                    }
                },
                (was, is) => {
                    assert_eq!(was, is, "{path}");
                    0
                }
            }
        }

        let written = seed_visit().unwrap();
        assert_eq!(seed_visit_on(date("2025-06-16")).unwrap(), written);
        let moved = seed_visit_on(date("2026-11-28")).unwrap();
        let shift = date("2026-11-28") - date("2025-06-16");
        let to_json = |visit: &pb::Encounter| serde_json::to_value(visit).unwrap();
        let dates = compare(&to_json(&written), &to_json(&moved), shift, "encounter");
        // Date of service, the plan of care's three dates, two goals and two measures: the
        // walk did reach the nested ones.
        assert_eq!(dates, 8);
    }

    /// Moved, the seed visit is a clean claim a day after its date of service, as the example
    /// is on its examples' validation date. Past FY2025 (the ICD-10-CM code set shipped) the
    /// only reason is the warning that no code set covers the date.
    #[test]
    fn the_moved_visit_validates_clean() {
        const NO_CODE_SET: &str = "DIAGNOSIS_CODE_SET_UNAVAILABLE";
        let cases: [(Option<&str>, &str, &[&str]); 4] = [
            (None, "2025-06-20", &[]),
            (Some("2025-09-01"), "2025-09-02", &[]),
            (Some("2026-11-28"), "2026-11-29", &[NO_CODE_SET]),
            (Some("2026-11-29"), "2026-11-29", &[NO_CODE_SET]),
        ];
        for (moved_to, as_of, expected) in cases {
            let visit = match moved_to {
                None => seed_visit().unwrap(),
                Some(day) => seed_visit_on(date(day)).unwrap(),
            };
            let outcome =
                check_encounter(&visit, rules(), date(as_of), chrono::Utc::now()).unwrap();
            let codes: Vec<&str> = outcome.reasons.iter().map(|r| r.code.as_str()).collect();
            assert_eq!(
                (outcome.status, codes.as_slice()),
                (pb::Status::Validated as i32, expected),
                "{moved_to:?} as of {as_of}"
            );
        }
    }
}
