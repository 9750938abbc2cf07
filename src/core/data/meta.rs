//! The `[meta]` block every rule table carries: where its values come from and when they apply.

use chrono::NaiveDate;
use serde::Deserialize;

use super::{RuleDataError, parse_date};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Meta {
    pub source: String,
    pub effective_from: String,
    #[serde(default)]
    pub effective_to: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

/// A loaded table, as `claimlint rules` and `ListRules` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableVersion {
    pub table: String,
    pub version: String,
    pub source: String,
    pub effective_from: NaiveDate,
    pub effective_to: Option<NaiveDate>,
}

impl Meta {
    /// Checks the block and records the table it describes.
    pub fn record(
        self,
        file: &str,
        table: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<(), RuleDataError> {
        if self.source.trim().is_empty() {
            return Err(RuleDataError::invalid(
                file,
                "meta.source is empty: every table names its source",
            ));
        }
        let effective_from = parse_date(file, "meta.effective_from", &self.effective_from)?;
        let effective_to = match self.effective_to.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(parse_date(file, "meta.effective_to", raw)?),
        };
        tables.push(TableVersion {
            table: table.to_owned(),
            version: self.version.unwrap_or_else(|| effective_from.to_string()),
            source: self.source,
            effective_from,
            effective_to,
        });
        Ok(())
    }
}

pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, RuleDataError> {
    toml::from_str(text).map_err(|source| RuleDataError::Toml {
        file: file.to_owned(),
        source: Box::new(source),
    })
}

/// Refuses a datum without a source: no number ships without one.
pub(crate) fn require_source(file: &str, what: &str, source: &str) -> Result<(), RuleDataError> {
    if source.trim().is_empty() {
        Err(RuleDataError::invalid(
            file,
            format!("{what} needs a source"),
        ))
    } else {
        Ok(())
    }
}
