//! Payer profiles (`profiles.toml`): rule grading, unit method and filing limit per payer.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::RuleDataError;
use super::catalogue::Catalogue;
use super::meta::{Meta, TableVersion, parse_toml};
use crate::core::reason::{ReasonCode, Severity};
use crate::core::types::{Payer, PayerKind, UnitMethod};

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

#[derive(Debug, Clone)]
pub struct Profile {
    /// `medicare`, `medicaid`, `commercial`, or `payer:<payer_id>`.
    pub name: String,
    pub unit_method: UnitMethod,
    pub unit_method_source: String,
    pub filing_limit: Option<FilingLimit>,
    settings: Vec<RuleSetting>,
}

impl Profile {
    pub fn setting(&self, code: ReasonCode) -> RuleSetting {
        self.settings
            .get(code.index())
            .copied()
            .unwrap_or(RuleSetting::Off)
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
