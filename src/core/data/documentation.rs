//! Documentation rule data (`documentation.toml`): plan-of-care periods, the progress-report
//! interval, measure scales, the technique map, codes needing body regions, and diagnoses that
//! cannot support a procedure on their own.

use serde::Deserialize;

use super::RuleDataError;
use super::meta::{Meta, TableVersion, parse_toml, require_source};
use crate::core::types::{MeasureKind, Technique};

#[derive(Debug, Clone, PartialEq)]
pub struct MeasureScale {
    pub kind: MeasureKind,
    pub min: f64,
    pub max: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechniqueCode {
    pub code: String,
    pub techniques: Vec<Technique>,
    pub requires_technique: bool,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosisPolicy {
    pub procedure: String,
    /// ICD-10-CM prefixes without the dot.
    pub diagnosis_prefixes: Vec<String>,
    pub source: String,
}

#[derive(Debug)]
pub struct DocumentationRules {
    pub certification_period_days: u32,
    pub certification_period_source: String,
    pub certification_due_days: u32,
    pub certification_due_source: String,
    pub progress_report_max_days: u32,
    pub progress_report_source: String,
    pub scales: Vec<MeasureScale>,
    pub technique_codes: Vec<TechniqueCode>,
    pub body_region_codes: Vec<String>,
    pub body_region_source: String,
    pub not_supporting: Vec<DiagnosisPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentationFile {
    meta: Meta,
    plan_of_care: RawPlan,
    progress_report: RawProgress,
    measure_scale: Vec<RawScale>,
    technique_code: Vec<RawTechniqueCode>,
    body_region: RawBodyRegion,
    #[serde(default)]
    not_supporting: Vec<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    certification_period_days: u32,
    certification_period_source: String,
    certification_due_days: u32,
    certification_due_source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgress {
    max_treatment_days: u32,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScale {
    kind: String,
    min: f64,
    max: f64,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTechniqueCode {
    code: String,
    techniques: Vec<String>,
    requires_technique: bool,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBodyRegion {
    codes: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub procedure: String,
    pub diagnosis_prefixes: Vec<String>,
    pub source: String,
}

impl RawPolicy {
    pub(crate) fn check(self, file: &str, section: &str) -> Result<DiagnosisPolicy, RuleDataError> {
        let procedure = self.procedure.trim().to_ascii_uppercase();
        if !super::is_well_formed_procedure(&procedure) || self.source.trim().is_empty() {
            return Err(RuleDataError::invalid(
                file,
                format!("{section}: `{procedure}` needs a CPT/HCPCS code and a source"),
            ));
        }
        let diagnosis_prefixes = self
            .diagnosis_prefixes
            .iter()
            .map(|p| p.trim().replace('.', "").to_ascii_uppercase())
            .collect::<Vec<_>>();
        if let Some(bad) = diagnosis_prefixes
            .iter()
            .find(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(RuleDataError::invalid(
                file,
                format!("{section}: `{bad}` is not an ICD-10-CM prefix"),
            ));
        }
        Ok(DiagnosisPolicy {
            procedure,
            diagnosis_prefixes,
            source: self.source,
        })
    }
}

impl DocumentationRules {
    pub(crate) fn parse(
        file: &str,
        text: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<DocumentationRules, RuleDataError> {
        let raw: DocumentationFile = parse_toml(file, text)?;
        raw.meta.record(file, "documentation", tables)?;
        require_source(
            file,
            "plan_of_care.certification_period",
            &raw.plan_of_care.certification_period_source,
        )?;
        require_source(
            file,
            "plan_of_care.certification_due",
            &raw.plan_of_care.certification_due_source,
        )?;
        require_source(file, "progress_report", &raw.progress_report.source)?;
        require_source(file, "body_region", &raw.body_region.source)?;
        let mut scales = Vec::new();
        for scale in raw.measure_scale {
            let kind = MeasureKind::parse(&scale.kind).ok_or_else(|| {
                RuleDataError::invalid(
                    file,
                    format!("measure_scale: `{}` is not a measure kind", scale.kind),
                )
            })?;
            require_source(
                file,
                &format!("measure_scale {}", scale.kind),
                &scale.source,
            )?;
            if !matches!(
                scale.min.partial_cmp(&scale.max),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ) {
                return Err(RuleDataError::invalid(
                    file,
                    format!("measure_scale {}: min is above max", scale.kind),
                ));
            }
            scales.push(MeasureScale {
                kind,
                min: scale.min,
                max: scale.max,
                source: scale.source,
            });
        }
        let mut technique_codes = Vec::new();
        for entry in raw.technique_code {
            require_source(
                file,
                &format!("technique_code {}", entry.code),
                &entry.source,
            )?;
            let techniques = entry
                .techniques
                .iter()
                .map(|t| {
                    Technique::parse(t).ok_or_else(|| {
                        RuleDataError::invalid(
                            file,
                            format!("technique_code {}: `{t}` is not a technique", entry.code),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            technique_codes.push(TechniqueCode {
                code: entry.code.trim().to_ascii_uppercase(),
                techniques,
                requires_technique: entry.requires_technique,
                source: entry.source,
            });
        }
        let not_supporting = raw
            .not_supporting
            .into_iter()
            .map(|policy| policy.check(file, "not_supporting"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DocumentationRules {
            certification_period_days: raw.plan_of_care.certification_period_days,
            certification_period_source: raw.plan_of_care.certification_period_source,
            certification_due_days: raw.plan_of_care.certification_due_days,
            certification_due_source: raw.plan_of_care.certification_due_source,
            progress_report_max_days: raw.progress_report.max_treatment_days,
            progress_report_source: raw.progress_report.source,
            scales,
            technique_codes,
            body_region_codes: raw
                .body_region
                .codes
                .iter()
                .map(|c| c.trim().to_ascii_uppercase())
                .collect(),
            body_region_source: raw.body_region.source,
            not_supporting,
        })
    }

    pub fn scale(&self, kind: MeasureKind) -> Option<&MeasureScale> {
        self.scales.iter().find(|scale| scale.kind == kind)
    }

    pub fn techniques_of(&self, code: &str) -> Option<&TechniqueCode> {
        self.technique_codes.iter().find(|entry| entry.code == code)
    }

    /// The codes a technique belongs to (empty for OTHER and unmapped techniques).
    pub fn codes_of(&self, technique: Technique) -> impl Iterator<Item = &str> {
        self.technique_codes
            .iter()
            .filter(move |entry| entry.techniques.contains(&technique))
            .map(|entry| entry.code.as_str())
    }

    pub fn needs_body_region(&self, code: &str) -> bool {
        self.body_region_codes.iter().any(|c| c == code)
    }
}
