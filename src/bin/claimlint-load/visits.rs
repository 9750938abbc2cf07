//! The encounters the load is made of: the seed visit (97140 + 97124, full documentation),
//! dated yesterday with its plan of care around that date, so it validates today.

use anyhow::{Context, Result};
use claimlint::proto::v1 as pb;

const SEED_VISIT: &str = include_str!("../../../examples/valid-medicare-seed-visit.json");

pub fn typical_visit() -> Result<pb::Encounter> {
    let mut encounter = claimlint::wire::json::parse_encounters(SEED_VISIT)?
        .into_iter()
        .next()
        .context("the seed visit file holds no encounter")?;
    let today = chrono::Utc::now().date_naive();
    let day = |offset: i64| (today + chrono::Duration::days(offset)).to_string();
    encounter.date_of_service = day(-1);
    let plan = encounter
        .documentation
        .as_mut()
        .and_then(|d| d.plan_of_care.as_mut())
        .context("the seed visit has no plan of care")?;
    plan.start_date = day(-10);
    plan.end_date = day(30);
    plan.certified_date = day(-9);
    for measure in encounter
        .documentation
        .iter_mut()
        .flat_map(|d| d.objective_measures.iter_mut())
    {
        measure.measured_on = day(-1);
    }
    for goal in encounter
        .documentation
        .iter_mut()
        .flat_map(|d| d.goals.iter_mut())
    {
        goal.target_date = day(40);
    }
    Ok(encounter)
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
