//! Reason codes (contract §3) and the findings rules emit.
//!
//! A rule family emits [`Finding`]s: what is wrong, where, and how to fix it. The validation
//! entry point turns them into [`Reason`]s by adding the severity of the payer profile and the
//! CARC and source of the rule catalogue, so no severity or denial code lives in rule code.

use std::fmt;

macro_rules! reason_codes {
    ($($variant:ident => $name:literal,)+) => {
        /// A stable reason code. The catalogue in `rules/reasons.toml` holds its severity,
        /// CARC and source; the loader refuses a catalogue that misses one of these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode { $($variant,)+ }

        impl ReasonCode {
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(ReasonCode::$variant => $name,)+ }
            }

            pub fn parse(name: &str) -> Option<ReasonCode> {
                match name { $($name => Some(ReasonCode::$variant),)+ _ => None }
            }

            /// Dense index for per-profile lookup tables.
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

reason_codes! {
    RequiredFieldMissing => "REQUIRED_FIELD_MISSING",
    DateInvalid => "DATE_INVALID",
    DateOfServiceInFuture => "DATE_OF_SERVICE_IN_FUTURE",
    TimelyFilingExpired => "TIMELY_FILING_EXPIRED",
    NpiInvalid => "NPI_INVALID",
    PlaceOfServiceInvalid => "PLACE_OF_SERVICE_INVALID",
    DiagnosisCodeInvalid => "DIAGNOSIS_CODE_INVALID",
    DiagnosisCodeNotBillable => "DIAGNOSIS_CODE_NOT_BILLABLE",
    DiagnosisCodeSetUnavailable => "DIAGNOSIS_CODE_SET_UNAVAILABLE",
    DiagnosisPointerInvalid => "DIAGNOSIS_POINTER_INVALID",
    ProcedureCodeInvalid => "PROCEDURE_CODE_INVALID",
    ProcedureCodeUnknown => "PROCEDURE_CODE_UNKNOWN",
    ModifierInvalid => "MODIFIER_INVALID",
    UnitsMissing => "UNITS_MISSING",
    TimedMinutesMissing => "TIMED_MINUTES_MISSING",
    TimedServiceUnder8Minutes => "TIMED_SERVICE_UNDER_8_MINUTES",
    UnitsExceedTime => "UNITS_EXCEED_TIME",
    UnitsDistributionInvalid => "UNITS_DISTRIBUTION_INVALID",
    UnitsBelowTime => "UNITS_BELOW_TIME",
    TimedMinutesExceedTotalTime => "TIMED_MINUTES_EXCEED_TOTAL_TIME",
    TotalTreatmentTimeMissing => "TOTAL_TREATMENT_TIME_MISSING",
    UntimedCodeUnits => "UNTIMED_CODE_UNITS",
    DuplicateCodeLines => "DUPLICATE_CODE_LINES",
    MueExceeded => "MUE_EXCEEDED",
    NcciPtpModifierRequired => "NCCI_PTP_MODIFIER_REQUIRED",
    NcciPtpNotAllowed => "NCCI_PTP_NOT_ALLOWED",
    DistinctServiceSameRegion => "DISTINCT_SERVICE_SAME_REGION",
    Modifier59Unsupported => "MODIFIER_59_UNSUPPORTED",
    Modifier59WithXModifier => "MODIFIER_59_WITH_X_MODIFIER",
    TherapyModifierMissing => "THERAPY_MODIFIER_MISSING",
    TherapyModifierMismatch => "THERAPY_MODIFIER_MISMATCH",
    AssistantModifierMissing => "ASSISTANT_MODIFIER_MISSING",
    AssistantModifierMismatch => "ASSISTANT_MODIFIER_MISMATCH",
    KxModifierRequired => "KX_MODIFIER_REQUIRED",
    KxModifierUnsupported => "KX_MODIFIER_UNSUPPORTED",
    MedicalReviewThreshold => "MEDICAL_REVIEW_THRESHOLD",
    ProviderNotEligible => "PROVIDER_NOT_ELIGIBLE",
    RuleDataNotCurrent => "RULE_DATA_NOT_CURRENT",
    DiagnosisNotSupporting => "DIAGNOSIS_NOT_SUPPORTING",
    MedicalNecessityMissing => "MEDICAL_NECESSITY_MISSING",
    TreatmentGoalsMissing => "TREATMENT_GOALS_MISSING",
    TreatmentGoalNotMeasurable => "TREATMENT_GOAL_NOT_MEASURABLE",
    ObjectiveMeasuresMissing => "OBJECTIVE_MEASURES_MISSING",
    ObjectiveMeasureOutOfRange => "OBJECTIVE_MEASURE_OUT_OF_RANGE",
    MassageTechniqueMissing => "MASSAGE_TECHNIQUE_MISSING",
    TechniqueCodeMismatch => "TECHNIQUE_CODE_MISMATCH",
    BodyRegionMissing => "BODY_REGION_MISSING",
    PlanOfCareMissing => "PLAN_OF_CARE_MISSING",
    PlanOfCareExpired => "PLAN_OF_CARE_EXPIRED",
    PlanOfCareNotCertified => "PLAN_OF_CARE_NOT_CERTIFIED",
    ProgressReportOverdue => "PROGRESS_REPORT_OVERDUE",
    SignatureMissing => "SIGNATURE_MISSING",
    DuplicateService => "DUPLICATE_SERVICE",
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// What a rule found, before the payer profile grades it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub code: ReasonCode,
    /// Path into the encounter: proto names, 0-based indexes; empty for the whole encounter.
    pub field: String,
    pub message: String,
    pub expected: String,
    pub actual: String,
    pub remedy: String,
    /// A citation more specific than the catalogue's (e.g. the source of one NCCI pair).
    pub source: Option<String>,
}

impl Finding {
    pub fn new(code: ReasonCode, field: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            code,
            field: field.into(),
            message: message.into(),
            expected: String::new(),
            actual: String::new(),
            remedy: String::new(),
            source: None,
        }
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Finding {
        self.expected = expected.into();
        self
    }

    pub fn actual(mut self, actual: impl Into<String>) -> Finding {
        self.actual = actual.into();
        self
    }

    pub fn remedy(mut self, remedy: impl Into<String>) -> Finding {
        self.remedy = remedy.into();
        self
    }

    pub fn source(mut self, source: impl Into<String>) -> Finding {
        self.source = Some(source.into());
        self
    }
}

/// A graded finding, as it appears in the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    pub severity: Severity,
    pub field: String,
    pub message: String,
    pub expected: String,
    pub actual: String,
    pub remedy: String,
    /// Empty for warnings that no payer denies.
    pub carc: String,
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_indexes_are_dense() {
        for (position, code) in ReasonCode::ALL.iter().enumerate() {
            assert_eq!(ReasonCode::parse(code.as_str()), Some(*code));
            assert_eq!(code.index(), position);
        }
        assert_eq!(ReasonCode::parse("NOT_A_CODE"), None);
    }
}
