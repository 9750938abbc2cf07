//! The encounters the load is made of: the seed visit (97140 + 97124, full documentation),
//! moved to yesterday, so it validates today; and, for patients seen twice a day, a later visit
//! with other codes.

use anyhow::{Result, bail};
use claimlint::proto::v1 as pb;

pub fn typical_visit() -> Result<pb::Encounter> {
    Ok(claimlint::wire::sample::seed_visit_yesterday()?)
}

/// A later visit of the same patient on the same day: the typical visit with therapeutic
/// exercise and neuromuscular re-education (97110 + 97112, GP, no 59) instead of manual therapy
/// and massage. No code in common with the typical visit, so both validate, and the later one
/// adds its codes to the patient-day's entry of the duplicate-service store.
pub fn later_visit_same_day(typical: &pb::Encounter) -> Result<pb::Encounter> {
    let mut visit = typical.clone();
    let [first, second] = visit.service_lines.as_mut_slice() else {
        bail!("the typical visit has two service lines");
    };
    for (line, code) in [(first, "97110"), (second, "97112")] {
        line.procedure_code = code.to_owned();
        line.modifiers = vec!["GP".to_owned()];
        // Manual techniques document manual therapy and massage, not exercise.
        line.techniques.clear();
    }
    Ok(visit)
}

/// What a run publishes: the typical visit, and a later visit the same day for patients seen
/// more than once.
pub struct RunVisits {
    typical: pb::Encounter,
    later: pb::Encounter,
    per_patient_day: u64,
}

impl RunVisits {
    /// `per_patient_day` encounters of one patient on one day, at least 1.
    pub fn new(per_patient_day: u64) -> Result<RunVisits> {
        RunVisits::from_typical(typical_visit()?, per_patient_day)
    }

    fn from_typical(typical: pb::Encounter, per_patient_day: u64) -> Result<RunVisits> {
        let later = later_visit_same_day(&typical)?;
        Ok(RunVisits {
            typical,
            later,
            per_patient_day: per_patient_day.max(1),
        })
    }

    /// Encounter `index` of a run: its own id; its patient shared with the encounters next to
    /// it, `per_patient_day` at a time. Within a patient-day the visits alternate between the
    /// typical visit and the later one, so the second adds codes to the store's entry (an
    /// update, or a lost compare-and-set and a merge when both are in flight at once), and a
    /// third or later repeats the codes of an earlier one (DUPLICATE_SERVICE when that one
    /// was recorded first; validated too when they race).
    pub fn encounter(&self, run: &str, index: u64) -> pb::Encounter {
        let position = index % self.per_patient_day;
        let template = if position.is_multiple_of(2) {
            &self.typical
        } else {
            &self.later
        };
        let mut encounter = numbered_visit(template, run, index);
        encounter.patient_id = format!("pt-{run}-{}", index / self.per_patient_day);
        encounter
    }
}

/// The typical visit as encounter `index` of a run: its own id and patient, so the duplicate
/// check (patient, date, code) sees distinct services, as a day of real visits would.
pub fn numbered_visit(template: &pb::Encounter, run: &str, index: u64) -> pb::Encounter {
    let mut encounter = template.clone();
    encounter.encounter_id = format!("load-{run}-{index}");
    encounter.patient_id = format!("pt-{run}-{index}");
    encounter
}

/// The index back from an encounter id made by [`numbered_visit`].
pub fn index_of(encounter_id: &str) -> Option<u64> {
    encounter_id.rsplit('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use claimlint::wire::check_encounter;

    use super::*;

    /// The day after the seed visit's own date: inside the rule data shipped (ICD-10-CM FY2025,
    /// the 2025 KX threshold), so the test does not depend on today's date.
    fn day_after_the_seed() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2025, 6, 17).unwrap()
    }

    /// The run's visits on the seed visit's own date.
    fn seed_day_visits(per_patient_day: u64) -> RunVisits {
        let typical = claimlint::wire::sample::seed_visit().unwrap();
        RunVisits::from_typical(typical, per_patient_day).unwrap()
    }

    /// A visit's status and reason codes, validated the day after the seed visit.
    fn reason_codes(visit: &pb::Encounter) -> (i32, Vec<String>) {
        let rules = claimlint::rules_source::load_rules(None).unwrap();
        let outcome =
            check_encounter(visit, &rules, day_after_the_seed(), chrono::Utc::now()).unwrap();
        let codes = outcome.reasons.into_iter().map(|r| r.code).collect();
        (outcome.status, codes)
    }

    /// Both visits of a patient-day are clean claims on their own, and the later one shares no
    /// code with the typical one (else it would be a DUPLICATE_SERVICE, not an update).
    #[test]
    fn the_later_visit_is_clean_and_has_other_codes() {
        let visits = seed_day_visits(2);
        let clean = (pb::Status::Validated as i32, Vec::<String>::new());
        assert_eq!(reason_codes(&visits.typical), clean);
        assert_eq!(reason_codes(&visits.later), clean);
        let codes = |visit: &pb::Encounter| -> Vec<String> {
            visit
                .service_lines
                .iter()
                .map(|l| l.procedure_code.clone())
                .collect()
        };
        assert_eq!(codes(&visits.typical), ["97140", "97124"]);
        assert_eq!(codes(&visits.later), ["97110", "97112"]);
    }

    /// Which patient and which visit each encounter of a run is.
    #[test]
    fn encounters_share_a_patient_day_per_patient_day() {
        let cases: [(u64, &[(&str, &str)]); 3] = [
            (
                1,
                &[
                    ("pt-r-0", "97140"),
                    ("pt-r-1", "97140"),
                    ("pt-r-2", "97140"),
                ],
            ),
            (
                2,
                &[
                    ("pt-r-0", "97140"),
                    ("pt-r-0", "97110"),
                    ("pt-r-1", "97140"),
                ],
            ),
            (
                3,
                &[
                    ("pt-r-0", "97140"),
                    ("pt-r-0", "97110"),
                    ("pt-r-0", "97140"),
                ],
            ),
        ];
        for (per_patient_day, expected) in cases {
            let visits = seed_day_visits(per_patient_day);
            for (index, (patient, first_code)) in expected.iter().enumerate() {
                let encounter = visits.encounter("r", index as u64);
                assert_eq!(encounter.encounter_id, format!("load-r-{index}"));
                assert_eq!(index_of(&encounter.encounter_id), Some(index as u64));
                assert_eq!(
                    (
                        encounter.patient_id.as_str(),
                        encounter.service_lines[0].procedure_code.as_str()
                    ),
                    (*patient, *first_code),
                    "{per_patient_day} a patient-day, encounter {index}"
                );
            }
        }
    }
}
