//! Payer profiles (`profiles.toml`): rule grading, unit method and filing limit per payer.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::RuleDataError;
use super::catalogue::Catalogue;
use super::meta::{Meta, TableVersion, parse_toml};
use super::ncci::{ModifierIndicator, PairEdit, PtpTable};
use crate::core::reason::{ReasonCode, Severity};
use crate::core::types::{Discipline, Payer, PayerKind, UnitMethod};

/// How a profile grades one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSetting {
    On(Severity),
    Off,
}

impl RuleSetting {
    pub fn parse(raw: &str) -> Option<RuleSetting> {
        match raw.trim() {
            "error" => Some(RuleSetting::On(Severity::Error)),
            "warning" => Some(RuleSetting::On(Severity::Warning)),
            "off" => Some(RuleSetting::Off),
            _ => None,
        }
    }
}

/// How long after the date of service a claim may be filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilingLimit {
    pub span: FilingSpan,
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilingSpan {
    Months(u32),
    Days(u32),
}

/// A discipline that may bill only some codes to this payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisciplineLimit {
    pub discipline: Discipline,
    pub may_bill: Vec<String>,
    pub source: String,
}

/// A pair this payer edits on top of the NCCI table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraPair {
    pub column1: String,
    pub column2: String,
    pub indicator: ModifierIndicator,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct Profile {
    /// `medicare`, `medicaid`, `commercial`, or `payer:<payer_id>`.
    pub name: String,
    pub unit_method: UnitMethod,
    pub unit_method_source: String,
    pub filing_limit: Option<FilingLimit>,
    pub discipline_limits: Vec<DisciplineLimit>,
    /// Shipped pair ids or `COLUMN1/COLUMN2` this payer does not apply.
    pub pairs_off: Vec<String>,
    pub extra_pairs: Vec<ExtraPair>,
    /// Per procedure: the diagnoses (prefixes) this payer accepts as support.
    pub supporting_diagnoses: Vec<super::DiagnosisPolicy>,
    /// From when an NCCI bypass modifier may stand on either line of a pair; without it, only
    /// on the column-2 line (the NCCI rule).
    pub bypass_on_either_line: Option<EitherLine>,
    settings: Vec<RuleSetting>,
}

/// A payer's acceptance of the bypass modifier on the column-1 line of a pair.
#[derive(Debug, Clone)]
pub struct EitherLine {
    pub from: chrono::NaiveDate,
    pub source: String,
}

impl Profile {
    pub fn setting(&self, code: ReasonCode) -> RuleSetting {
        self.settings
            .get(code.index())
            .copied()
            .unwrap_or(RuleSetting::Off)
    }

    /// The PTP edit this payer applies to an ordered pair of codes on `date`.
    pub fn pair_edit<'a>(
        &'a self,
        table: &'a PtpTable,
        column1: &str,
        column2: &str,
        date: chrono::NaiveDate,
    ) -> Option<PairEdit<'a>> {
        if let Some(extra) = self
            .extra_pairs
            .iter()
            .find(|pair| pair.column1 == column1 && pair.column2 == column2)
        {
            return Some(PairEdit {
                indicator: extra.indicator,
                source: &extra.source,
                id: None,
            });
        }
        let edit = table.edit(column1, column2, date)?;
        let switched_off = self.pairs_off.iter().any(|off| {
            edit.id == Some(off.as_str())
                || off
                    .split_once('/')
                    .is_some_and(|(a, b)| a == column1 && b == column2)
        });
        (!switched_off).then_some(edit)
    }

    pub fn discipline_limit(&self, discipline: Discipline) -> Option<&DisciplineLimit> {
        self.discipline_limits
            .iter()
            .find(|limit| limit.discipline == discipline)
    }
}

#[derive(Debug)]
pub struct Profiles {
    medicare: Profile,
    medicaid: Profile,
    commercial: Profile,
    payers: HashMap<String, Profile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    meta: Meta,
    profile: BTreeMap<String, RawProfile>,
    #[serde(default)]
    payer: BTreeMap<String, RawProfile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    /// Only for `[payer.*]`: the profile this one starts from.
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    unit_method: Option<String>,
    #[serde(default)]
    unit_method_source: Option<String>,
    #[serde(default)]
    filing_limit_months: Option<u32>,
    #[serde(default)]
    filing_limit_days: Option<u32>,
    #[serde(default)]
    filing_limit_source: Option<String>,
    #[serde(default)]
    rules: BTreeMap<String, String>,
    #[serde(default)]
    discipline_limit: Vec<RawDisciplineLimit>,
    #[serde(default)]
    pairs_off: Vec<String>,
    #[serde(default)]
    extra_pairs: Vec<RawExtraPair>,
    #[serde(default)]
    supporting_diagnoses: Vec<super::documentation::RawPolicy>,
    #[serde(default)]
    bypass_modifier_either_line_from: Option<String>,
    #[serde(default)]
    bypass_modifier_either_line_source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisciplineLimit {
    discipline: String,
    may_bill: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtraPair {
    column1: String,
    column2: String,
    modifier_indicator: u8,
    source: String,
}

const KINDS: [&str; 3] = ["medicare", "medicaid", "commercial"];

impl Profiles {
    pub(crate) fn parse(
        file: &str,
        text: &str,
        catalogue: &Catalogue,
        tables: &mut Vec<TableVersion>,
    ) -> Result<Profiles, RuleDataError> {
        let mut raw: ProfilesFile = parse_toml(file, text)?;
        raw.meta.record(file, "profiles", tables)?;
        if let Some(unknown) = raw
            .profile
            .keys()
            .find(|name| !KINDS.contains(&name.as_str()))
        {
            return Err(RuleDataError::invalid(
                file,
                format!(
                    "[profile.{unknown}]: profiles are medicare, medicaid and commercial; use [payer.\"<payer_id>\"] for a payer"
                ),
            ));
        }
        let defaults: Vec<RuleSetting> = catalogue
            .entries()
            .iter()
            .map(|entry| entry.default_setting)
            .collect();
        let mut build = |name: &str| -> Result<Profile, RuleDataError> {
            let spec = raw.profile.remove(name).ok_or_else(|| {
                RuleDataError::invalid(file, format!("[profile.{name}] is missing"))
            })?;
            if spec.base.is_some() {
                return Err(RuleDataError::invalid(
                    file,
                    format!("[profile.{name}]: `base` is only for payers"),
                ));
            }
            let base = Profile {
                name: name.to_owned(),
                unit_method: UnitMethod::CmsTotalTime,
                unit_method_source: String::new(),
                filing_limit: None,
                discipline_limits: Vec::new(),
                pairs_off: Vec::new(),
                extra_pairs: Vec::new(),
                supporting_diagnoses: Vec::new(),
                bypass_on_either_line: None,
                settings: defaults.clone(),
            };
            apply(file, &format!("profile.{name}"), base, spec, true)
        };
        let medicare = build("medicare")?;
        let medicaid = build("medicaid")?;
        let commercial = build("commercial")?;

        let mut payers = HashMap::new();
        for (payer_id, spec) in raw.payer {
            let section = format!("payer.\"{payer_id}\"");
            let base = match spec.base.as_deref() {
                Some("medicare") => medicare.clone(),
                Some("medicaid") => medicaid.clone(),
                Some("commercial") => commercial.clone(),
                other => {
                    return Err(RuleDataError::invalid(
                        file,
                        format!(
                            "[{section}]: base must be medicare, medicaid or commercial, not {other:?}"
                        ),
                    ));
                }
            };
            let base = Profile {
                name: format!("payer:{payer_id}"),
                ..base
            };
            payers.insert(
                payer_id.trim().to_owned(),
                apply(file, &section, base, spec, false)?,
            );
        }
        Ok(Profiles {
            medicare,
            medicaid,
            commercial,
            payers,
        })
    }

    /// The profile for a payer: its `payer_id` override, else its kind. An encounter without a
    /// payer kind is judged by the medicare profile, the strictest one shipped.
    pub fn for_payer(&self, payer: Option<&Payer>) -> &Profile {
        if let Some(profile) = payer.and_then(|payer| self.payers.get(payer.payer_id.as_str())) {
            return profile;
        }
        match payer.and_then(|payer| payer.kind) {
            Some(PayerKind::Medicaid) => &self.medicaid,
            Some(PayerKind::Commercial) => &self.commercial,
            Some(PayerKind::Medicare) | None => &self.medicare,
        }
    }

    /// Every profile, kinds first, then payers by id.
    pub fn all(&self) -> Vec<&Profile> {
        let mut payers: Vec<&Profile> = self.payers.values().collect();
        payers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut all = vec![&self.medicare, &self.medicaid, &self.commercial];
        all.extend(payers);
        all
    }
}

fn apply(
    file: &str,
    section: &str,
    mut profile: Profile,
    spec: RawProfile,
    needs_unit_method: bool,
) -> Result<Profile, RuleDataError> {
    match spec.unit_method.as_deref() {
        Some(raw) => {
            profile.unit_method = UnitMethod::parse(raw).ok_or_else(|| {
                RuleDataError::invalid(
                    file,
                    format!(
                        "[{section}]: unit_method `{raw}` is not cms_total_time or ama_per_code"
                    ),
                )
            })?;
            profile.unit_method_source = spec.unit_method_source.unwrap_or_default();
            if profile.unit_method_source.trim().is_empty() {
                return Err(RuleDataError::invalid(
                    file,
                    format!("[{section}]: unit_method needs unit_method_source"),
                ));
            }
        }
        None if needs_unit_method => {
            return Err(RuleDataError::invalid(
                file,
                format!("[{section}]: unit_method is required"),
            ));
        }
        None => {}
    }
    let span = match (spec.filing_limit_months, spec.filing_limit_days) {
        (Some(_), Some(_)) => {
            return Err(RuleDataError::invalid(
                file,
                format!("[{section}]: set filing_limit_months or filing_limit_days, not both"),
            ));
        }
        (Some(months), None) => Some(FilingSpan::Months(months)),
        (None, Some(days)) => Some(FilingSpan::Days(days)),
        (None, None) => None,
    };
    if let Some(span) = span {
        let source = spec.filing_limit_source.unwrap_or_default();
        if source.trim().is_empty() {
            return Err(RuleDataError::invalid(
                file,
                format!("[{section}]: a filing limit needs filing_limit_source"),
            ));
        }
        profile.filing_limit = Some(FilingLimit { span, source });
    }
    match (
        spec.bypass_modifier_either_line_from,
        spec.bypass_modifier_either_line_source,
    ) {
        (Some(from), Some(source)) if !source.trim().is_empty() => {
            let from = super::parse_date(
                file,
                &format!("[{section}].bypass_modifier_either_line_from"),
                &from,
            )?;
            profile.bypass_on_either_line = Some(EitherLine { from, source });
        }
        (Some(_), _) => {
            return Err(RuleDataError::invalid(
                file,
                format!(
                    "[{section}]: bypass_modifier_either_line_from needs bypass_modifier_either_line_source"
                ),
            ));
        }
        (None, Some(_)) => {
            return Err(RuleDataError::invalid(
                file,
                format!(
                    "[{section}]: bypass_modifier_either_line_source without bypass_modifier_either_line_from"
                ),
            ));
        }
        (None, None) => {}
    }
    for limit in spec.discipline_limit {
        let discipline = Discipline::parse(&limit.discipline).ok_or_else(|| {
            RuleDataError::invalid(file, format!("[{section}].discipline_limit: `{}` is not a discipline (e.g. massage_therapist)", limit.discipline))
        })?;
        if limit.source.trim().is_empty() {
            return Err(RuleDataError::invalid(
                file,
                format!("[{section}].discipline_limit: a source is required"),
            ));
        }
        profile
            .discipline_limits
            .retain(|existing| existing.discipline != discipline);
        profile.discipline_limits.push(DisciplineLimit {
            discipline,
            may_bill: limit
                .may_bill
                .iter()
                .map(|c| c.trim().to_ascii_uppercase())
                .collect(),
            source: limit.source,
        });
    }
    profile
        .pairs_off
        .extend(spec.pairs_off.into_iter().map(|p| p.trim().to_owned()));
    for pair in spec.extra_pairs {
        let indicator =
            ModifierIndicator::from_number(pair.modifier_indicator).ok_or_else(|| {
                RuleDataError::invalid(
                    file,
                    format!(
                        "[{section}].extra_pairs: modifier_indicator {} is not 0, 1 or 9",
                        pair.modifier_indicator
                    ),
                )
            })?;
        let (column1, column2) = (
            pair.column1.trim().to_ascii_uppercase(),
            pair.column2.trim().to_ascii_uppercase(),
        );
        if !super::is_well_formed_procedure(&column1)
            || !super::is_well_formed_procedure(&column2)
            || pair.source.trim().is_empty()
        {
            return Err(RuleDataError::invalid(
                file,
                format!(
                    "[{section}].extra_pairs: {column1}/{column2} needs two CPT/HCPCS codes and a source"
                ),
            ));
        }
        profile.extra_pairs.push(ExtraPair {
            column1,
            column2,
            indicator,
            source: pair.source,
        });
    }
    for policy in spec.supporting_diagnoses {
        let policy = policy.check(file, &format!("[{section}].supporting_diagnoses"))?;
        profile
            .supporting_diagnoses
            .retain(|p| p.procedure != policy.procedure);
        profile.supporting_diagnoses.push(policy);
    }
    for (code, setting) in spec.rules {
        let reason = ReasonCode::parse(&code).ok_or_else(|| {
            RuleDataError::invalid(
                file,
                format!("[{section}].rules: unknown reason code `{code}`"),
            )
        })?;
        let setting = RuleSetting::parse(&setting).ok_or_else(|| {
            RuleDataError::invalid(
                file,
                format!("[{section}].rules.{code}: `{setting}` is not error, warning or off"),
            )
        })?;
        profile.settings[reason.index()] = setting;
    }
    Ok(profile)
}
