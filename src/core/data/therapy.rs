//! Therapy thresholds and assistant rules (`therapy.toml`).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Deserialize;

use super::meta::{Meta, TableVersion, parse_toml, require_source};
use super::{RuleDataError, parse_date};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KxThreshold {
    pub year: i32,
    /// PT and SLP combined.
    pub pt_slp_cents: i64,
    pub ot_cents: i64,
    pub source: String,
}

/// The threshold that judges one date of service.
#[derive(Debug, Clone, Copy)]
pub struct KxSelection<'a> {
    pub threshold: &'a KxThreshold,
    /// False when the service year has no published amount and another year's was used.
    pub covers_year: bool,
}

/// The timed-unit table: minutes per unit and the fewest minutes that earn one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitTable {
    pub unit_minutes: u64,
    pub minimum_minutes: u64,
}

#[derive(Debug)]
pub struct TherapyRules {
    pub unit_table: UnitTable,
    pub assistant_required_from: NaiveDate,
    pub assistant_de_minimis_percent: u32,
    pub assistant_source: String,
    kx: BTreeMap<i32, KxThreshold>,
    pub medical_review_cents: i64,
    pub medical_review_years: (i32, i32),
    pub medical_review_source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TherapyFile {
    meta: Meta,
    timed_units: RawUnits,
    assistant: RawAssistant,
    kx_threshold: Vec<RawKx>,
    medical_review: RawReview,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnits {
    unit_minutes: u64,
    minimum_minutes: u64,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssistant {
    required_from: String,
    de_minimis_percent: u32,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKx {
    year: i32,
    pt_slp_cents: i64,
    ot_cents: i64,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReview {
    threshold_cents: i64,
    from_year: i32,
    to_year: i32,
    source: String,
}

impl TherapyRules {
    pub(crate) fn parse(
        file: &str,
        text: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<TherapyRules, RuleDataError> {
        let raw: TherapyFile = parse_toml(file, text)?;
        raw.meta.record(file, "therapy", tables)?;
        require_source(file, "assistant", &raw.assistant.source)?;
        require_source(file, "timed_units", &raw.timed_units.source)?;
        let unit_table = UnitTable {
            unit_minutes: raw.timed_units.unit_minutes,
            minimum_minutes: raw.timed_units.minimum_minutes,
        };
        if unit_table.unit_minutes == 0
            || unit_table.minimum_minutes == 0
            || unit_table.minimum_minutes > unit_table.unit_minutes
        {
            return Err(RuleDataError::invalid(
                file,
                "timed_units: unit_minutes and minimum_minutes must be positive, minimum_minutes at most unit_minutes",
            ));
        }
        require_source(file, "medical_review", &raw.medical_review.source)?;
        if raw.assistant.de_minimis_percent > 100 {
            return Err(RuleDataError::invalid(
                file,
                "assistant.de_minimis_percent is above 100",
            ));
        }
        let mut kx = BTreeMap::new();
        for entry in raw.kx_threshold {
            require_source(file, &format!("kx_threshold {}", entry.year), &entry.source)?;
            if entry.pt_slp_cents <= 0 || entry.ot_cents <= 0 {
                return Err(RuleDataError::invalid(
                    file,
                    format!("kx_threshold {}: amounts must be positive", entry.year),
                ));
            }
            let year = entry.year;
            let threshold = KxThreshold {
                year,
                pt_slp_cents: entry.pt_slp_cents,
                ot_cents: entry.ot_cents,
                source: entry.source,
            };
            if kx.insert(year, threshold).is_some() {
                return Err(RuleDataError::invalid(
                    file,
                    format!("kx_threshold {year} is listed twice"),
                ));
            }
        }
        let (Some(first), Some(last)) = (kx.keys().next(), kx.keys().next_back()) else {
            return Err(RuleDataError::invalid(file, "no kx_threshold"));
        };
        tables.push(TableVersion {
            table: "kx_threshold".into(),
            version: format!("{first}-{last}"),
            source: "therapy.toml [[kx_threshold]] (each year cites its own source)".into(),
            effective_from: NaiveDate::from_ymd_opt(*first, 1, 1).unwrap_or_default(),
            effective_to: NaiveDate::from_ymd_opt(*last, 12, 31),
        });
        Ok(TherapyRules {
            unit_table,
            assistant_required_from: parse_date(
                file,
                "assistant.required_from",
                &raw.assistant.required_from,
            )?,
            assistant_de_minimis_percent: raw.assistant.de_minimis_percent,
            assistant_source: raw.assistant.source,
            kx,
            medical_review_cents: raw.medical_review.threshold_cents,
            medical_review_years: (raw.medical_review.from_year, raw.medical_review.to_year),
            medical_review_source: raw.medical_review.source,
        })
    }

    /// The KX amount of the service year; for a year without one, the latest earlier year's
    /// (or the earliest loaded, for a year before them all), marked as not covering the year.
    pub fn kx_for_year(&self, year: i32) -> Option<KxSelection<'_>> {
        if let Some(threshold) = self.kx.get(&year) {
            return Some(KxSelection {
                threshold,
                covers_year: true,
            });
        }
        let fallback = self
            .kx
            .range(..year)
            .next_back()
            .or_else(|| self.kx.iter().next())
            .map(|(_, threshold)| threshold)?;
        Some(KxSelection {
            threshold: fallback,
            covers_year: false,
        })
    }

    pub fn medical_review_applies(&self, year: i32) -> bool {
        let (from, to) = self.medical_review_years;
        from <= year && year <= to
    }
}
