//! The rule catalogue (`reasons.toml`): default severity, CARC, source and description per code.

use serde::Deserialize;

use super::meta::{Meta, TableVersion, parse_toml};
use super::{RuleDataError, RuleSetting};
use crate::core::reason::ReasonCode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEntry {
    pub code: ReasonCode,
    /// The medicare profile's grading; other profiles start from it.
    pub default_setting: RuleSetting,
    pub carc: String,
    pub source: String,
    pub description: String,
}

/// One entry per [`ReasonCode`], indexed by [`ReasonCode::index`].
#[derive(Debug)]
pub struct Catalogue {
    entries: Vec<RuleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    meta: Meta,
    rule: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    code: String,
    severity: String,
    carc: String,
    source: String,
    description: String,
}

impl Catalogue {
    pub(crate) fn parse(
        file: &str,
        text: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<Catalogue, RuleDataError> {
        let raw: CatalogueFile = parse_toml(file, text)?;
        raw.meta.record(file, "reasons", tables)?;
        let mut slots: Vec<Option<RuleEntry>> = vec![None; ReasonCode::ALL.len()];
        for entry in raw.rule {
            let code = ReasonCode::parse(&entry.code).ok_or_else(|| {
                RuleDataError::invalid(file, format!("unknown reason code `{}`", entry.code))
            })?;
            let default_setting = RuleSetting::parse(&entry.severity).ok_or_else(|| {
                RuleDataError::invalid(
                    file,
                    format!(
                        "{}: severity `{}` is not error, warning or off",
                        entry.code, entry.severity
                    ),
                )
            })?;
            if entry.source.trim().is_empty() || entry.description.trim().is_empty() {
                return Err(RuleDataError::invalid(
                    file,
                    format!("{}: source and description are required", entry.code),
                ));
            }
            let slot = &mut slots[code.index()];
            if slot.is_some() {
                return Err(RuleDataError::invalid(
                    file,
                    format!("{} is listed twice", entry.code),
                ));
            }
            *slot = Some(RuleEntry {
                code,
                default_setting,
                carc: entry.carc.trim().to_owned(),
                source: entry.source,
                description: entry.description,
            });
        }
        let mut entries = Vec::with_capacity(slots.len());
        for (slot, code) in slots.into_iter().zip(ReasonCode::ALL) {
            entries.push(slot.ok_or_else(|| {
                RuleDataError::invalid(file, format!("{code} has no catalogue entry"))
            })?);
        }
        Ok(Catalogue { entries })
    }

    pub fn entry(&self, code: ReasonCode) -> &RuleEntry {
        // Construction guarantees one entry per code, in index order.
        &self.entries[code.index()]
    }

    pub fn entries(&self) -> &[RuleEntry] {
        &self.entries
    }
}
