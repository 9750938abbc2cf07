//! NCCI procedure-to-procedure edits.
//!
//! Two sources in `ncci/`:
//! - `pairs.toml`: the pairs claimlint ships, each with an id and its own source;
//! - `ccipra*.txt`: CMS practitioner PTP files as published (tab-separated, 7 columns, notice
//!   and wrapped header lines first; `*` for no deletion date; modifier indicator 0, 1 or 9;
//!   the same pair may repeat, and the row in force on the date of service wins). A file name
//!   holding the quarter (`2026q3`) lets claimlint warn when a date of service is outside it.

use chrono::{Datelike, Months, NaiveDate};
use rustc_hash::FxHashMap;
use serde::Deserialize;

use super::codes::pack_procedure;
use super::meta::{Meta, TableVersion, parse_toml};
use super::{RuleDataError, RuleFile, parse_date};

/// Column-1 and column-2 codes packed into one key (26 bits each).
pub(crate) fn pair_key(column1: u32, column2: u32) -> u64 {
    (u64::from(column1) << 26) | u64::from(column2)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifierIndicator {
    /// Never payable together.
    NotAllowed,
    /// Payable with an NCCI-associated modifier when the services are distinct.
    Allowed,
    /// Not applicable: the edit does not apply.
    NotApplicable,
}

impl ModifierIndicator {
    fn parse(raw: &str) -> Option<ModifierIndicator> {
        raw.trim()
            .parse()
            .ok()
            .and_then(ModifierIndicator::from_number)
    }

    /// 0, 1 or 9, as CMS numbers them.
    pub fn from_number(number: u8) -> Option<ModifierIndicator> {
        match number {
            0 => Some(ModifierIndicator::NotAllowed),
            1 => Some(ModifierIndicator::Allowed),
            9 => Some(ModifierIndicator::NotApplicable),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PairRow {
    effective: NaiveDate,
    /// First date the edit no longer applies.
    deleted: Option<NaiveDate>,
    indicator: ModifierIndicator,
    /// Index into `PtpTable::sources`.
    source: u32,
}

impl PairRow {
    fn in_force(&self, date: NaiveDate) -> bool {
        self.effective <= date && self.deleted.is_none_or(|deleted| date < deleted)
    }
}

/// One edit in force, as a rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairEdit<'a> {
    pub indicator: ModifierIndicator,
    pub source: &'a str,
    /// The shipped pair id, when the edit comes from `pairs.toml`.
    pub id: Option<&'a str>,
}

#[derive(Debug, Default)]
pub struct PtpTable {
    rows: FxHashMap<u64, PairRow>,
    /// Further rows of pairs that repeat (rare): the first row stays in `rows`.
    repeated: FxHashMap<u64, Vec<PairRow>>,
    sources: Vec<String>,
    /// Pair id per source index, for shipped pairs.
    ids: FxHashMap<u32, String>,
    /// Quarters covered by loaded CMS files: (first day, last day).
    quarters: Vec<(NaiveDate, NaiveDate)>,
    row_count: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairsFile {
    meta: Meta,
    #[serde(default)]
    pair: Vec<RawPair>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    id: String,
    column1: String,
    column2: String,
    modifier_indicator: u8,
    effective_from: String,
    #[serde(default)]
    deleted_on: Option<String>,
    #[allow(dead_code)]
    kind: String,
    source: String,
}

impl PtpTable {
    pub(crate) fn parse(
        files: &[RuleFile<'_>],
        tables: &mut Vec<TableVersion>,
    ) -> Result<PtpTable, RuleDataError> {
        let mut table = PtpTable::default();
        for file in files {
            let name = file.path.rsplit('/').next().unwrap_or(file.path);
            let text = std::str::from_utf8(file.bytes)
                .map_err(|_| RuleDataError::invalid(file.path, "not UTF-8"))?;
            if name == "pairs.toml" {
                table.load_pairs_toml(file.path, text, tables)?;
            } else if name.to_ascii_lowercase().starts_with("ccipra")
                && name.to_ascii_lowercase().ends_with(".txt")
            {
                table.load_cms_file(file.path, name, text, tables)?;
            } else {
                return Err(RuleDataError::Unrecognized {
                    file: file.path.to_owned(),
                });
            }
        }
        Ok(table)
    }

    fn add_source(&mut self, source: String) -> u32 {
        self.sources.push(source);
        u32::try_from(self.sources.len() - 1).unwrap_or(u32::MAX)
    }

    fn insert(&mut self, key: u64, row: PairRow) {
        self.row_count += 1;
        match self.rows.entry(key) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(row);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.repeated.entry(key).or_default().push(row);
            }
        }
    }

    fn load_pairs_toml(
        &mut self,
        path: &str,
        text: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<(), RuleDataError> {
        let raw: PairsFile = parse_toml(path, text)?;
        raw.meta.record(path, "ncci_pairs", tables)?;
        for pair in raw.pair {
            let what = format!("pair {}", pair.id);
            let column1 = pack_procedure(pair.column1.trim()).ok_or_else(|| {
                RuleDataError::invalid(path, format!("{what}: column1 is not a CPT/HCPCS code"))
            })?;
            let column2 = pack_procedure(pair.column2.trim()).ok_or_else(|| {
                RuleDataError::invalid(path, format!("{what}: column2 is not a CPT/HCPCS code"))
            })?;
            let indicator =
                ModifierIndicator::from_number(pair.modifier_indicator).ok_or_else(|| {
                    RuleDataError::invalid(
                        path,
                        format!("{what}: modifier_indicator is not 0, 1 or 9"),
                    )
                })?;
            if pair.source.trim().is_empty() || pair.id.trim().is_empty() {
                return Err(RuleDataError::invalid(
                    path,
                    format!("{what}: id and source are required"),
                ));
            }
            if self.ids.values().any(|id| *id == pair.id) {
                return Err(RuleDataError::invalid(
                    path,
                    format!("{what}: id is used twice"),
                ));
            }
            let effective = parse_date(
                path,
                &format!("{what}.effective_from"),
                &pair.effective_from,
            )?;
            let deleted = match pair.deleted_on.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(raw) => Some(parse_date(path, &format!("{what}.deleted_on"), raw)?),
            };
            let source = self.add_source(pair.source);
            self.ids.insert(source, pair.id);
            self.insert(
                pair_key(column1, column2),
                PairRow {
                    effective,
                    deleted,
                    indicator,
                    source,
                },
            );
        }
        Ok(())
    }

    fn load_cms_file(
        &mut self,
        path: &str,
        name: &str,
        text: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<(), RuleDataError> {
        let quarter = quarter_in_name(name);
        let source = self.add_source(format!("CMS NCCI practitioner PTP edits, {name}"));
        let mut seen_rows = false;
        let mut earliest: Option<NaiveDate> = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let row = parse_cms_row(line);
            let Some((column1, column2, effective, deleted, indicator)) = row else {
                if seen_rows && !line.trim().is_empty() {
                    return Err(RuleDataError::line(
                        path,
                        number,
                        "not a PTP row (column 1, column 2, prior-1996 flag, effective YYYYMMDD, deletion YYYYMMDD or *, modifier 0/1/9, rationale)",
                    ));
                }
                // The AMA notice and the wrapped header come before the first row.
                continue;
            };
            seen_rows = true;
            earliest = Some(earliest.map_or(effective, |e: NaiveDate| e.min(effective)));
            self.insert(
                pair_key(column1, column2),
                PairRow {
                    effective,
                    deleted,
                    indicator,
                    source,
                },
            );
        }
        if !seen_rows {
            return Err(RuleDataError::invalid(path, "no PTP rows found"));
        }
        let (from, to) = match quarter {
            Some((start, end)) => {
                self.quarters.push((start, end));
                (start, Some(end))
            }
            None => (earliest.unwrap_or_default(), None),
        };
        tables.push(TableVersion {
            table: "ncci_ptp".into(),
            version: name.to_owned(),
            source: format!("CMS NCCI practitioner PTP edits ({name})"),
            effective_from: from,
            effective_to: to,
        });
        Ok(())
    }

    /// The edit in force on `date` for this ordered pair of codes, if any.
    pub fn edit(&self, column1: &str, column2: &str, date: NaiveDate) -> Option<PairEdit<'_>> {
        let key = pair_key(pack_procedure(column1)?, pack_procedure(column2)?);
        let first = self.rows.get(&key)?;
        let mut best = first.in_force(date).then_some(first);
        if let Some(more) = self.repeated.get(&key) {
            for row in more.iter().filter(|row| row.in_force(date)) {
                // Of several rows in force, the latest one wins.
                if best.is_none_or(|b| row.effective >= b.effective) {
                    best = Some(row);
                }
            }
        }
        let row = best?;
        Some(PairEdit {
            indicator: row.indicator,
            source: self
                .sources
                .get(row.source as usize)
                .map_or("", String::as_str),
            id: self.ids.get(&row.source).map(String::as_str),
        })
    }

    /// False when CMS files with a named quarter are loaded and none covers `date`.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.quarters.is_empty()
            || self
                .quarters
                .iter()
                .any(|(from, to)| *from <= date && date <= *to)
    }

    pub fn row_count(&self) -> usize {
        self.row_count
    }
}

type CmsRow = (u32, u32, NaiveDate, Option<NaiveDate>, ModifierIndicator);

fn parse_cms_row(line: &str) -> Option<CmsRow> {
    let mut fields = line.split('\t');
    let column1 = pack_procedure(fields.next()?.trim())?;
    let column2 = pack_procedure(fields.next()?.trim())?;
    let _prior_1996 = fields.next()?;
    let effective = yyyymmdd(fields.next()?.trim())?;
    let deleted = match fields.next()?.trim() {
        "*" | "" => None,
        raw => Some(yyyymmdd(raw)?),
    };
    let indicator = ModifierIndicator::parse(fields.next()?)?;
    Some((column1, column2, effective, deleted, indicator))
}

fn yyyymmdd(raw: &str) -> Option<NaiveDate> {
    if raw.len() != 8 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(raw, "%Y%m%d").ok()
}

/// `…2026q3…` in a file name → the first and last day of that quarter.
pub(crate) fn quarter_in_name(name: &str) -> Option<(NaiveDate, NaiveDate)> {
    let lower = name.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    (0..bytes.len().saturating_sub(5)).find_map(|i| {
        let window = &bytes[i..i + 6];
        let year_ok = window[..4].iter().all(u8::is_ascii_digit) && window[4] == b'q';
        let quarter = window[5];
        if !year_ok || !(b'1'..=b'4').contains(&quarter) {
            return None;
        }
        let year: i32 = lower.get(i..i + 4)?.parse().ok()?;
        let start = NaiveDate::from_ymd_opt(year, u32::from(quarter - b'1') * 3 + 1, 1)?;
        let end = start.checked_add_months(Months::new(3))?.pred_opt()?;
        (start.year() == year).then_some((start, end))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(raw: &str) -> NaiveDate {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
    }

    /// The layout of `ccipra-v322r0-f1.TXT` (formats.md §4.1): notice, wrapped header, rows.
    const CMS_FIXTURE: &str = "\
CPT codes, descriptions and other data only are copyright 2025 American Medical Association. All rights reserved.
Column1/Column2 Edits
Column 1\tColumn 2\t*=in existence prior to 1996\tEffective\tDeletion\tModifier\tPTP Edit Rationale
\t\t\tDate\tDate\t0=not allowed\t
\t\t\t\t*=no data\t1=allowed\t
\t\t\t\t\t9=not applicable\t
0001U\t0030U\t\t20180701\t*\t1\tMisuse of Column Two code with Column One code
0001A\t90473\t\t20220101\t20220101\t9\tCPT Manual or CMS manual coding instruction
13121\t13120\t\t19960101\t20050101\t9\tMutually exclusive procedures
13121\t13120\t\t20050101\t*\t0\tMutually exclusive procedures
17000\t17281\t*\t19940101\t*\t1\tStandards of medical/surgical practice
17000\t17281\t\t20200101\t*\t9\tStandards of medical/surgical practice
97530\t97116\t\t20200101\t20200401\t1\tMisuse of Column Two code with Column One code
";

    fn cms_table(name: &str) -> PtpTable {
        let files = [RuleFile {
            path: name,
            bytes: CMS_FIXTURE.as_bytes(),
        }];
        PtpTable::parse(&files, &mut Vec::new()).unwrap()
    }

    #[test]
    fn cms_rows_after_notice_and_header() {
        let table = cms_table("ncci/ccipra-2026q3-v322r0-f1.txt");
        assert_eq!(table.row_count(), 7);
        let edit = table.edit("0001U", "0030U", date("2025-01-01")).unwrap();
        assert_eq!(edit.indicator, ModifierIndicator::Allowed);
        assert!(edit.source.contains("ccipra-2026q3-v322r0-f1.txt"));
        assert_eq!(edit.id, None);
        // Order matters: column 2 before column 1 is not this edit.
        assert_eq!(table.edit("0030U", "0001U", date("2025-01-01")), None);
        // Before its effective date.
        assert_eq!(table.edit("0001U", "0030U", date("2018-06-30")), None);
    }

    #[test]
    fn deleted_rows_and_repeated_pairs() {
        let table = cms_table("ncci/ccipra-v322r0-f1.txt");
        // Deleted the day it took effect: never in force.
        assert_eq!(table.edit("0001A", "90473", date("2022-01-01")), None);
        // Repeated pair: the row in force on the date of service wins.
        assert_eq!(
            table
                .edit("13121", "13120", date("2004-12-31"))
                .unwrap()
                .indicator,
            ModifierIndicator::NotApplicable
        );
        assert_eq!(
            table
                .edit("13121", "13120", date("2005-01-01"))
                .unwrap()
                .indicator,
            ModifierIndicator::NotAllowed
        );
        // Two rows in force: the later one (indicator 9) wins.
        assert_eq!(
            table
                .edit("17000", "17281", date("2019-12-31"))
                .unwrap()
                .indicator,
            ModifierIndicator::Allowed
        );
        assert_eq!(
            table
                .edit("17000", "17281", date("2021-01-01"))
                .unwrap()
                .indicator,
            ModifierIndicator::NotApplicable
        );
        // Deleted before the date of service.
        assert!(table.edit("97530", "97116", date("2020-03-31")).is_some());
        assert_eq!(table.edit("97530", "97116", date("2020-04-01")), None);
    }

    #[test]
    fn quarter_coverage_from_the_file_name() {
        let table = cms_table("ncci/ccipra-2026q3-v322r0-f1.txt");
        assert!(table.covers(date("2026-07-01")) && table.covers(date("2026-09-30")));
        assert!(!table.covers(date("2026-10-01")));
        let unnamed = cms_table("ncci/ccipra-v322r0-f1.txt");
        assert!(unnamed.covers(date("2030-01-01")));
        assert_eq!(
            quarter_in_name("medicare-ncci-2026q4-ccipra-f1.txt"),
            Some((date("2026-10-01"), date("2026-12-31")))
        );
        assert_eq!(quarter_in_name("ccipra-v322r0-f1.txt"), None);
    }

    #[test]
    fn a_broken_row_after_the_header_names_its_line() {
        let text = format!("{CMS_FIXTURE}97140\t97124\t\t2025-01-01\t*\t1\tbad date\n");
        let files = [RuleFile {
            path: "ncci/ccipra-f1.txt",
            bytes: text.as_bytes(),
        }];
        let error = PtpTable::parse(&files, &mut Vec::new()).unwrap_err();
        assert!(
            error.to_string().starts_with("ncci/ccipra-f1.txt:14:"),
            "{error}"
        );
    }
}
