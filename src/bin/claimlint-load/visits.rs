//! The encounters the load is made of: the seed visit (97140 + 97124, full documentation),
//! moved to yesterday, so it validates today.

use anyhow::Result;
use claimlint::proto::v1 as pb;

pub fn typical_visit() -> Result<pb::Encounter> {
    Ok(claimlint::wire::sample::seed_visit_yesterday()?)
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
