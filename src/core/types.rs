//! Domain types of one encounter, as the rules see it.
//!
//! Built from the wire types at the edge (`crate::wire`). Strings are trimmed and codes
//! upper-cased there; dates are parsed once; enum values outside the contract are read as
//! unspecified. What a rule must report on (an empty field, a malformed date) stays
//! representable, so the rule can say where and why.

use chrono::NaiveDate;

/// Cents as dollars for messages, e.g. `$2410.00`, `-$0.50`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let magnitude = cents.unsigned_abs();
    format!("{sign}${}.{:02}", magnitude / 100, magnitude % 100)
}

/// A `YYYY-MM-DD` field as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateField {
    Missing,
    /// Not a real calendar date in `YYYY-MM-DD` form; holds what was sent.
    Invalid(String),
    Valid(NaiveDate),
}

impl DateField {
    /// Strict `YYYY-MM-DD`: ten characters, zero-padded, a real calendar day.
    pub fn parse(raw: &str) -> DateField {
        let raw = raw.trim();
        if raw.is_empty() {
            return DateField::Missing;
        }
        let bytes = raw.as_bytes();
        let shape_ok = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shape_ok {
            return DateField::Invalid(raw.to_owned());
        }
        // The shape is checked, so the parts are digits; chrono's format-string parser cost
        // more than the rest of the conversion.
        let number = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0u32, |sum, digit| sum * 10 + u32::from(digit - b'0'))
        };
        let year = i32::try_from(number(0..4)).unwrap_or(0);
        match NaiveDate::from_ymd_opt(year, number(5..7), number(8..10)) {
            Some(date) => DateField::Valid(date),
            None => DateField::Invalid(raw.to_owned()),
        }
    }

    pub fn date(&self) -> Option<NaiveDate> {
        match self {
            DateField::Valid(date) => Some(*date),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayerKind {
    Medicare,
    Medicaid,
    Commercial,
}

impl PayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayerKind::Medicare => "medicare",
            PayerKind::Medicaid => "medicaid",
            PayerKind::Commercial => "commercial",
        }
    }
}

/// How timed units are counted (contract §4), chosen by the payer profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitMethod {
    /// CMS Pub 100-04 Ch.5 §20.2: units from the total timed minutes of the visit.
    CmsTotalTime,
    /// AMA/CPT midpoint rule: each code rounded on its own.
    AmaPerCode,
}

impl UnitMethod {
    pub fn parse(raw: &str) -> Option<UnitMethod> {
        match raw.trim() {
            "cms_total_time" => Some(UnitMethod::CmsTotalTime),
            "ama_per_code" => Some(UnitMethod::AmaPerCode),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UnitMethod::CmsTotalTime => "cms_total_time",
            UnitMethod::AmaPerCode => "ama_per_code",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Discipline {
    PhysicalTherapist,
    PhysicalTherapistAssistant,
    OccupationalTherapist,
    OccupationalTherapyAssistant,
    Chiropractor,
    MassageTherapist,
    Physician,
}

impl Discipline {
    /// The rule-data spelling, e.g. `massage_therapist`.
    pub fn parse(raw: &str) -> Option<Discipline> {
        Some(match raw.trim() {
            "physical_therapist" => Discipline::PhysicalTherapist,
            "physical_therapist_assistant" => Discipline::PhysicalTherapistAssistant,
            "occupational_therapist" => Discipline::OccupationalTherapist,
            "occupational_therapy_assistant" => Discipline::OccupationalTherapyAssistant,
            "chiropractor" => Discipline::Chiropractor,
            "massage_therapist" => Discipline::MassageTherapist,
            "physician" => Discipline::Physician,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Discipline::PhysicalTherapist => "physical therapist",
            Discipline::PhysicalTherapistAssistant => "physical therapist assistant",
            Discipline::OccupationalTherapist => "occupational therapist",
            Discipline::OccupationalTherapyAssistant => "occupational therapy assistant",
            Discipline::Chiropractor => "chiropractor",
            Discipline::MassageTherapist => "massage therapist",
            Discipline::Physician => "physician",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    Head,
    Cervical,
    Thoracic,
    Lumbar,
    Sacral,
    Pelvic,
    RibCage,
    Abdomen,
    Shoulder,
    UpperArm,
    Elbow,
    Forearm,
    WristHand,
    Hip,
    Thigh,
    Knee,
    LowerLeg,
    AnkleFoot,
}

/// `LATERALITY_UNSPECIFIED` is read as `None` (contract §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Laterality {
    #[default]
    None,
    Left,
    Right,
    Bilateral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BodyRegion {
    /// `None` when the sender left the region unspecified.
    pub region: Option<Region>,
    pub laterality: Laterality,
}

impl BodyRegion {
    /// Contract §9: the same region, and the same laterality or one of them BILATERAL or NONE.
    pub fn overlaps(&self, other: &BodyRegion) -> bool {
        match (self.region, other.region) {
            (Some(a), Some(b)) if a == b => {
                self.laterality == other.laterality
                    || matches!(self.laterality, Laterality::Bilateral | Laterality::None)
                    || matches!(other.laterality, Laterality::Bilateral | Laterality::None)
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Technique {
    Effleurage,
    Petrissage,
    Tapotement,
    Stroking,
    Compression,
    Percussion,
    SoftTissueMobilization,
    JointMobilization,
    MyofascialRelease,
    ManualTraction,
    ManualLymphaticDrainage,
    Manipulation,
    TherapeuticExercise,
    NeuromuscularReeducation,
    GaitTraining,
    TherapeuticActivities,
    Other,
}

impl Technique {
    /// The rule-data spelling, e.g. `myofascial_release`.
    pub fn parse(raw: &str) -> Option<Technique> {
        use Technique::*;
        Some(match raw.trim() {
            "effleurage" => Effleurage,
            "petrissage" => Petrissage,
            "tapotement" => Tapotement,
            "stroking" => Stroking,
            "compression" => Compression,
            "percussion" => Percussion,
            "soft_tissue_mobilization" => SoftTissueMobilization,
            "joint_mobilization" => JointMobilization,
            "myofascial_release" => MyofascialRelease,
            "manual_traction" => ManualTraction,
            "manual_lymphatic_drainage" => ManualLymphaticDrainage,
            "manipulation" => Manipulation,
            "therapeutic_exercise" => TherapeuticExercise,
            "neuromuscular_reeducation" => NeuromuscularReeducation,
            "gait_training" => GaitTraining,
            "therapeutic_activities" => TherapeuticActivities,
            "other" => Other,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        use Technique::*;
        match self {
            Effleurage => "effleurage",
            Petrissage => "petrissage",
            Tapotement => "tapotement",
            Stroking => "stroking",
            Compression => "compression",
            Percussion => "percussion",
            SoftTissueMobilization => "soft tissue mobilization",
            JointMobilization => "joint mobilization",
            MyofascialRelease => "myofascial release",
            ManualTraction => "manual traction",
            ManualLymphaticDrainage => "manual lymphatic drainage",
            Manipulation => "manipulation",
            TherapeuticExercise => "therapeutic exercise",
            NeuromuscularReeducation => "neuromuscular re-education",
            GaitTraining => "gait training",
            TherapeuticActivities => "therapeutic activities",
            Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasureKind {
    RangeOfMotionDegrees,
    PainScale0To10,
    ManualMuscleTest0To5,
    FunctionalScore,
}

impl MeasureKind {
    /// The rule-data spelling, e.g. `pain_scale_0_10`.
    pub fn parse(raw: &str) -> Option<MeasureKind> {
        Some(match raw.trim() {
            "range_of_motion_degrees" => MeasureKind::RangeOfMotionDegrees,
            "pain_scale_0_10" => MeasureKind::PainScale0To10,
            "manual_muscle_test_0_5" => MeasureKind::ManualMuscleTest0To5,
            "functional_score" => MeasureKind::FunctionalScore,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MeasureKind::RangeOfMotionDegrees => "range of motion (degrees)",
            MeasureKind::PainScale0To10 => "pain (0-10)",
            MeasureKind::ManualMuscleTest0To5 => "manual muscle test (0-5)",
            MeasureKind::FunctionalScore => "functional score",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payer {
    pub payer_id: String,
    pub kind: Option<PayerKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provider {
    pub npi: String,
    pub discipline: Option<Discipline>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLine {
    pub procedure_code: String,
    pub modifiers: Vec<String>,
    pub units: u32,
    pub minutes: u32,
    pub assistant_minutes: u32,
    pub diagnosis_pointers: Vec<u32>,
    pub body_regions: Vec<BodyRegion>,
    /// `None` for an unspecified technique value.
    pub techniques: Vec<Option<Technique>>,
    pub charge_cents: i64,
}

impl ServiceLine {
    pub fn has_modifier(&self, modifier: &str) -> bool {
        self.modifiers.iter().any(|m| m == modifier)
    }

    /// Contract §9: a timed line with minutes and no units is a documented service, not
    /// billed: it is not on the claim (`kind`: the code's kind in the rule data, if known).
    pub fn is_documented_only(&self, kind: Option<super::data::ProcedureKind>) -> bool {
        self.units == 0 && self.minutes > 0 && kind == Some(super::data::ProcedureKind::Timed)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub has_description: bool,
    pub has_target: bool,
    pub target_date: DateField,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveMeasure {
    pub kind: Option<MeasureKind>,
    pub body_region: Option<BodyRegion>,
    pub value: f64,
    pub baseline: Option<f64>,
    pub measured_on: DateField,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanOfCare {
    pub start_date: DateField,
    pub end_date: DateField,
    pub certified_date: DateField,
    pub certifying_npi: String,
    pub has_delayed_certification_reason: bool,
}

/// Documentation facts. Free text is reduced to whether it is present: rules judge presence,
/// and the core never holds note text it could leak into a reason.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Documentation {
    pub has_medical_necessity: bool,
    pub functional_limitation_count: usize,
    pub goals: Vec<Goal>,
    pub objective_measures: Vec<ObjectiveMeasure>,
    pub plan_of_care: Option<PlanOfCare>,
    pub treatment_days_since_progress_report: u32,
    pub therapist_signed: bool,
    pub year_to_date_allowed_cents: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Encounter {
    /// Never empty: an encounter without an id is refused at the edge.
    pub encounter_id: String,
    pub patient_id: String,
    pub date_of_service: DateField,
    pub place_of_service: String,
    pub payer: Option<Payer>,
    pub rendering_provider: Option<Provider>,
    pub billing_provider_npi: String,
    /// Trimmed and upper-cased, as sent (with or without the dot).
    pub diagnosis_codes: Vec<String>,
    pub service_lines: Vec<ServiceLine>,
    pub total_treatment_minutes: u32,
    pub documentation: Option<Documentation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict_yyyy_mm_dd() {
        let cases = [
            ("2025-01-15", true),
            ("2024-02-29", true),
            ("2025-02-29", false),
            ("2025-1-15", false),
            ("2025/01/15", false),
            ("20250115", false),
            ("2025-13-01", false),
            ("+2025-01-1", false),
            ("２０２５-01-15", false),
            ("2025-04-31", false),
            ("2025-00-10", false),
            ("2025-01-00", false),
            ("1900-02-29", false),
            ("2000-02-29", true),
            ("2025-12-31", true),
        ];
        for (raw, valid) in cases {
            assert_eq!(
                matches!(DateField::parse(raw), DateField::Valid(_)),
                valid,
                "{raw}"
            );
        }
        assert_eq!(DateField::parse("  "), DateField::Missing);
    }
}

#[cfg(test)]
mod dollars_tests {
    use super::dollars;

    /// One row per amount, the sign included (charges are signed in the proto).
    #[test]
    fn cents_as_dollars() {
        for (cents, text) in [
            (0, "$0.00"),
            (5, "$0.05"),
            (241_000, "$2410.00"),
            (-50, "-$0.50"),
            (-150, "-$1.50"),
            (i64::MIN, "-$92233720368547758.08"),
        ] {
            assert_eq!(dollars(cents), text, "{cents}");
        }
    }
}
