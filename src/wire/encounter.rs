//! proto `Encounter` → core `Encounter`: trim strings, upper-case codes, parse dates, read
//! enum values outside the contract as unspecified, reduce free text to its presence.

use crate::core::types as core;
use crate::proto::v1 as pb;

use super::EncounterError;

impl TryFrom<&pb::Encounter> for core::Encounter {
    type Error = EncounterError;

    fn try_from(wire: &pb::Encounter) -> Result<Self, Self::Error> {
        check_identity(wire)?;
        let encounter_id = wire.encounter_id.trim();
        Ok(core::Encounter {
            encounter_id: encounter_id.to_owned(),
            patient_id: wire.patient_id.trim().to_owned(),
            date_of_service: core::DateField::parse(&wire.date_of_service),
            place_of_service: wire.place_of_service.trim().to_owned(),
            payer: wire.payer.as_ref().map(|payer| core::Payer {
                payer_id: payer.payer_id.trim().to_owned(),
                kind: payer_kind(payer.kind),
            }),
            rendering_provider: wire
                .rendering_provider
                .as_ref()
                .map(|provider| core::Provider {
                    npi: provider.npi.trim().to_owned(),
                    discipline: discipline(provider.discipline),
                }),
            billing_provider_npi: wire.billing_provider_npi.trim().to_owned(),
            diagnosis_codes: wire.diagnosis_codes.iter().map(|c| code(c)).collect(),
            service_lines: wire.service_lines.iter().map(service_line).collect(),
            total_treatment_minutes: wire.total_treatment_minutes,
            documentation: wire.documentation.as_ref().map(documentation),
        })
    }
}

/// The longest identifier or code accepted (real ones are far shorter).
pub const MAX_IDENTIFIER_BYTES: usize = 256;

/// The most service lines an encounter may have: one visit is billed as one 837P claim, whose
/// service-line loop (2400) repeats at most 50 times (X12 005010X222A1).
pub const MAX_SERVICE_LINES: usize = 50;

/// Whether a wire encounter can be judged at all: an `encounter_id` without control characters
/// (it goes into a header), no identifier longer than any real one, and no more service lines
/// than one claim carries. Cheap (no allocation): transports call it before doing I/O for an
/// input.
pub fn check_identity(wire: &pb::Encounter) -> Result<(), EncounterError> {
    if wire.encounter_id.trim().is_empty() {
        return Err(EncounterError::MissingEncounterId);
    }
    // Around it, a line break is whitespace and trimmed like the rest (a line read from a file).
    if wire.encounter_id.trim().chars().any(char::is_control) {
        return Err(EncounterError::ControlCharacter {
            field: "encounter.encounter_id",
        });
    }
    let too_long = |field: &'static str, value: &str| {
        if value.len() > MAX_IDENTIFIER_BYTES {
            Err(EncounterError::FieldTooLong {
                field,
                limit: MAX_IDENTIFIER_BYTES,
            })
        } else {
            Ok(())
        }
    };
    too_long("encounter.encounter_id", &wire.encounter_id)?;
    if wire.service_lines.len() > MAX_SERVICE_LINES {
        return Err(EncounterError::TooManyEntries {
            field: "encounter.service_lines",
            limit: MAX_SERVICE_LINES,
        });
    }
    too_long("encounter.patient_id", &wire.patient_id)?;
    too_long("encounter.date_of_service", &wire.date_of_service)?;
    too_long("encounter.place_of_service", &wire.place_of_service)?;
    too_long("encounter.billing_provider_npi", &wire.billing_provider_npi)?;
    if let Some(payer) = &wire.payer {
        too_long("encounter.payer.payer_id", &payer.payer_id)?;
    }
    if let Some(provider) = &wire.rendering_provider {
        too_long("encounter.rendering_provider.npi", &provider.npi)?;
    }
    for code in &wire.diagnosis_codes {
        too_long("encounter.diagnosis_codes", code)?;
    }
    for line in &wire.service_lines {
        too_long(
            "encounter.service_lines.procedure_code",
            &line.procedure_code,
        )?;
        for modifier in &line.modifiers {
            too_long("encounter.service_lines.modifiers", modifier)?;
        }
    }
    Ok(())
}

fn code(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

fn has_text(raw: &str) -> bool {
    !raw.trim().is_empty()
}

fn service_line(wire: &pb::ServiceLine) -> core::ServiceLine {
    core::ServiceLine {
        procedure_code: code(&wire.procedure_code),
        modifiers: wire.modifiers.iter().map(|m| code(m)).collect(),
        units: wire.units,
        minutes: wire.minutes,
        assistant_minutes: wire.assistant_minutes,
        diagnosis_pointers: wire.diagnosis_pointers.clone(),
        body_regions: wire.body_regions.iter().map(body_region).collect(),
        techniques: wire.techniques.iter().map(|&t| technique(t)).collect(),
        charge_cents: wire.charge_cents,
    }
}

fn documentation(wire: &pb::Documentation) -> core::Documentation {
    core::Documentation {
        has_medical_necessity: has_text(&wire.medical_necessity),
        functional_limitation_count: wire
            .functional_limitations
            .iter()
            .filter(|text| has_text(text))
            .count(),
        goals: wire
            .goals
            .iter()
            .map(|goal| core::Goal {
                has_description: has_text(&goal.description),
                has_target: has_text(&goal.target),
                target_date: core::DateField::parse(&goal.target_date),
            })
            .collect(),
        objective_measures: wire
            .objective_measures
            .iter()
            .map(|measure| core::ObjectiveMeasure {
                kind: measure_kind(measure.kind),
                body_region: measure.body_region.as_ref().map(body_region),
                value: measure.value,
                baseline: measure.baseline,
                measured_on: core::DateField::parse(&measure.measured_on),
            })
            .collect(),
        plan_of_care: wire.plan_of_care.as_ref().map(|plan| core::PlanOfCare {
            start_date: core::DateField::parse(&plan.start_date),
            end_date: core::DateField::parse(&plan.end_date),
            certified_date: core::DateField::parse(&plan.certified_date),
            certifying_npi: plan.certifying_npi.trim().to_owned(),
            has_delayed_certification_reason: has_text(&plan.delayed_certification_reason),
        }),
        treatment_days_since_progress_report: wire.treatment_days_since_progress_report,
        therapist_signed: wire.therapist_signed,
        year_to_date_allowed_cents: wire.year_to_date_allowed_cents,
    }
}

fn body_region(wire: &pb::BodyRegion) -> core::BodyRegion {
    core::BodyRegion {
        region: region(wire.region),
        laterality: match pb::Laterality::try_from(wire.laterality) {
            Ok(pb::Laterality::Left) => core::Laterality::Left,
            Ok(pb::Laterality::Right) => core::Laterality::Right,
            Ok(pb::Laterality::Bilateral) => core::Laterality::Bilateral,
            // Contract §9: unspecified is read as NONE.
            Ok(pb::Laterality::None | pb::Laterality::Unspecified) | Err(_) => {
                core::Laterality::None
            }
        },
    }
}

fn payer_kind(value: i32) -> Option<core::PayerKind> {
    match pb::PayerKind::try_from(value).ok()? {
        pb::PayerKind::Medicare => Some(core::PayerKind::Medicare),
        pb::PayerKind::Medicaid => Some(core::PayerKind::Medicaid),
        pb::PayerKind::Commercial => Some(core::PayerKind::Commercial),
        pb::PayerKind::Unspecified => None,
    }
}

fn discipline(value: i32) -> Option<core::Discipline> {
    use core::Discipline as D;
    match pb::Discipline::try_from(value).ok()? {
        pb::Discipline::PhysicalTherapist => Some(D::PhysicalTherapist),
        pb::Discipline::PhysicalTherapistAssistant => Some(D::PhysicalTherapistAssistant),
        pb::Discipline::OccupationalTherapist => Some(D::OccupationalTherapist),
        pb::Discipline::OccupationalTherapyAssistant => Some(D::OccupationalTherapyAssistant),
        pb::Discipline::Chiropractor => Some(D::Chiropractor),
        pb::Discipline::MassageTherapist => Some(D::MassageTherapist),
        pb::Discipline::Physician => Some(D::Physician),
        pb::Discipline::Unspecified => None,
    }
}

fn region(value: i32) -> Option<core::Region> {
    use core::Region as R;
    match pb::Region::try_from(value).ok()? {
        pb::Region::Head => Some(R::Head),
        pb::Region::Cervical => Some(R::Cervical),
        pb::Region::Thoracic => Some(R::Thoracic),
        pb::Region::Lumbar => Some(R::Lumbar),
        pb::Region::Sacral => Some(R::Sacral),
        pb::Region::Pelvic => Some(R::Pelvic),
        pb::Region::RibCage => Some(R::RibCage),
        pb::Region::Abdomen => Some(R::Abdomen),
        pb::Region::Shoulder => Some(R::Shoulder),
        pb::Region::UpperArm => Some(R::UpperArm),
        pb::Region::Elbow => Some(R::Elbow),
        pb::Region::Forearm => Some(R::Forearm),
        pb::Region::WristHand => Some(R::WristHand),
        pb::Region::Hip => Some(R::Hip),
        pb::Region::Thigh => Some(R::Thigh),
        pb::Region::Knee => Some(R::Knee),
        pb::Region::LowerLeg => Some(R::LowerLeg),
        pb::Region::AnkleFoot => Some(R::AnkleFoot),
        pb::Region::Unspecified => None,
    }
}

fn technique(value: i32) -> Option<core::Technique> {
    use core::Technique as T;
    match pb::Technique::try_from(value).ok()? {
        pb::Technique::Effleurage => Some(T::Effleurage),
        pb::Technique::Petrissage => Some(T::Petrissage),
        pb::Technique::Tapotement => Some(T::Tapotement),
        pb::Technique::Stroking => Some(T::Stroking),
        pb::Technique::Compression => Some(T::Compression),
        pb::Technique::Percussion => Some(T::Percussion),
        pb::Technique::SoftTissueMobilization => Some(T::SoftTissueMobilization),
        pb::Technique::JointMobilization => Some(T::JointMobilization),
        pb::Technique::MyofascialRelease => Some(T::MyofascialRelease),
        pb::Technique::ManualTraction => Some(T::ManualTraction),
        pb::Technique::ManualLymphaticDrainage => Some(T::ManualLymphaticDrainage),
        pb::Technique::Manipulation => Some(T::Manipulation),
        pb::Technique::TherapeuticExercise => Some(T::TherapeuticExercise),
        pb::Technique::NeuromuscularReeducation => Some(T::NeuromuscularReeducation),
        pb::Technique::GaitTraining => Some(T::GaitTraining),
        pb::Technique::TherapeuticActivities => Some(T::TherapeuticActivities),
        pb::Technique::Other => Some(T::Other),
        pb::Technique::Unspecified => None,
    }
}

fn measure_kind(value: i32) -> Option<core::MeasureKind> {
    use core::MeasureKind as M;
    match pb::MeasureKind::try_from(value).ok()? {
        pb::MeasureKind::RangeOfMotionDegrees => Some(M::RangeOfMotionDegrees),
        pb::MeasureKind::PainScale010 => Some(M::PainScale0To10),
        pb::MeasureKind::ManualMuscleTest05 => Some(M::ManualMuscleTest0To5),
        pb::MeasureKind::FunctionalScore => Some(M::FunctionalScore),
        pb::MeasureKind::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Up to one claim's service lines can be judged; more are refused before any rule runs.
    #[test]
    fn at_most_one_claims_service_lines() {
        for (lines, expected) in [
            (1, Ok(())),
            (MAX_SERVICE_LINES, Ok(())),
            (
                MAX_SERVICE_LINES + 1,
                Err(EncounterError::TooManyEntries {
                    field: "encounter.service_lines",
                    limit: MAX_SERVICE_LINES,
                }),
            ),
        ] {
            let encounter = pb::Encounter {
                encounter_id: "e-1".into(),
                service_lines: vec![pb::ServiceLine::default(); lines],
                ..Default::default()
            };
            assert_eq!(check_identity(&encounter), expected, "{lines} lines");
        }
    }

    /// Which encounter ids can be judged, and what the others are refused for.
    #[test]
    fn encounter_ids_that_cannot_be_judged() {
        let too_long = "e".repeat(MAX_IDENTIFIER_BYTES + 1);
        let at_limit = "e".repeat(MAX_IDENTIFIER_BYTES);
        let control = |field| Err(EncounterError::ControlCharacter { field });
        let cases: [(&str, Result<(), EncounterError>); 9] = [
            ("e-1", Ok(())),
            (" e-1\n", Ok(())),
            ("", Err(EncounterError::MissingEncounterId)),
            (" \t\r\n", Err(EncounterError::MissingEncounterId)),
            ("e-1\nX-Injected: 1", control("encounter.encounter_id")),
            ("e-1\r\nX", control("encounter.encounter_id")),
            ("e\u{0}1", control("encounter.encounter_id")),
            (
                &too_long,
                Err(EncounterError::FieldTooLong {
                    field: "encounter.encounter_id",
                    limit: MAX_IDENTIFIER_BYTES,
                }),
            ),
            (&at_limit, Ok(())),
        ];
        for (encounter_id, expected) in cases {
            let encounter = pb::Encounter {
                encounter_id: encounter_id.to_owned(),
                ..Default::default()
            };
            assert_eq!(check_identity(&encounter), expected, "{encounter_id:?}");
        }
    }
}
