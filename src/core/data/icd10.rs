//! ICD-10-CM code sets, one per fiscal year, chosen by the date of service.
//!
//! Two file forms are read from `icd10cm/`:
//! - `icd10cm-fyYYYY.tsv`: claimlint's compact form (`scripts/import-icd10cm-tsv`), with
//!   `# key: value` header lines naming the fiscal year, effective dates and source;
//! - `icd10cm_order_YYYY.txt` (or `icd10cm-order-YYYY.txt`): the CMS order file as published,
//!   fixed columns (order number 1-5, code 7-13, billable flag 15, descriptions after), so a
//!   deployment can drop in a new year. Fiscal year YYYY runs from (YYYY-1)-10-01 to YYYY-09-30.

use rustc_hash::FxHashMap as HashMap;

use chrono::NaiveDate;

use super::meta::TableVersion;
use super::{RuleDataError, RuleFile, parse_date};

/// A code packed into a `u64` (up to 7 ASCII bytes, no dot): cheap to hash, no allocation.
type PackedCode = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icd10Lookup {
    /// Valid for HIPAA transactions.
    Billable,
    /// A category or header code that needs more characters.
    Header,
    /// Not in this code set.
    NotInSet,
}

#[derive(Debug)]
pub struct Icd10CodeSet {
    fiscal_year: u16,
    effective_from: NaiveDate,
    effective_to: NaiveDate,
    codes: HashMap<PackedCode, bool>,
}

impl Icd10CodeSet {
    pub fn fiscal_year(&self) -> u16 {
        self.fiscal_year
    }

    pub fn effective_from(&self) -> NaiveDate {
        self.effective_from
    }

    pub fn effective_to(&self) -> NaiveDate {
        self.effective_to
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Looks up a code already checked by [`normalize_icd10`].
    pub fn lookup(&self, code: PackedCode) -> Icd10Lookup {
        match self.codes.get(&code) {
            Some(true) => Icd10Lookup::Billable,
            Some(false) => Icd10Lookup::Header,
            None => Icd10Lookup::NotInSet,
        }
    }

    fn covers(&self, date: NaiveDate) -> bool {
        self.effective_from <= date && date <= self.effective_to
    }
}

/// The code set that judges one encounter.
#[derive(Debug, Clone, Copy)]
pub struct Icd10Selection<'a> {
    pub set: &'a Icd10CodeSet,
    /// False when no loaded set covers the date of service and the newest was used instead.
    pub covers_date_of_service: bool,
}

#[derive(Debug)]
pub struct Icd10CodeSets {
    /// Sorted by fiscal year; never empty.
    sets: Vec<Icd10CodeSet>,
}

impl Icd10CodeSets {
    pub(crate) fn parse(
        files: &[RuleFile<'_>],
        tables: &mut Vec<TableVersion>,
    ) -> Result<Icd10CodeSets, RuleDataError> {
        let mut sets: Vec<Icd10CodeSet> = Vec::new();
        for file in files {
            let name = file.path.rsplit('/').next().unwrap_or(file.path);
            let text = std::str::from_utf8(file.bytes)
                .map_err(|_| RuleDataError::invalid(file.path, "not UTF-8"))?;
            let (set, source) = if let Some(year) = order_file_year(name) {
                parse_order_file(file.path, year, text)?
            } else if name.starts_with("icd10cm-fy") && name.ends_with(".tsv") {
                parse_compact(file.path, text)?
            } else {
                return Err(RuleDataError::Unrecognized {
                    file: file.path.to_owned(),
                });
            };
            if sets.iter().any(|s| s.fiscal_year == set.fiscal_year) {
                return Err(RuleDataError::invalid(
                    file.path,
                    format!("a second code set for FY{}", set.fiscal_year),
                ));
            }
            tables.push(TableVersion {
                table: "icd10cm".into(),
                version: format!("fy{}", set.fiscal_year),
                source,
                effective_from: set.effective_from,
                effective_to: Some(set.effective_to),
            });
            sets.push(set);
        }
        if sets.is_empty() {
            return Err(RuleDataError::Missing {
                file: "icd10cm/icd10cm-fyYYYY.tsv or icd10cm/icd10cm_order_YYYY.txt".into(),
            });
        }
        sets.sort_by_key(|set| set.fiscal_year);
        Ok(Icd10CodeSets { sets })
    }

    pub fn sets(&self) -> &[Icd10CodeSet] {
        &self.sets
    }

    /// The set in force on the date of service; the newest when none covers it (or the date
    /// is unknown, in which case no gap is reported: the date itself is the finding).
    pub fn select(&self, date_of_service: Option<NaiveDate>) -> Icd10Selection<'_> {
        let newest = self.newest();
        match date_of_service {
            None => Icd10Selection {
                set: newest,
                covers_date_of_service: true,
            },
            Some(date) => match self.sets.iter().find(|set| set.covers(date)) {
                Some(set) => Icd10Selection {
                    set,
                    covers_date_of_service: true,
                },
                None => Icd10Selection {
                    set: newest,
                    covers_date_of_service: false,
                },
            },
        }
    }

    fn newest(&self) -> &Icd10CodeSet {
        // `parse` refuses an empty list.
        &self.sets[self.sets.len() - 1]
    }
}

/// Checks an ICD-10-CM code's structure (billing-rules §9: letter, digit, letter or digit,
/// then up to four letters or digits; the dot, when present, after the third character) and
/// packs it without the dot. `None` when malformed.
pub fn normalize_icd10(raw: &str) -> Option<PackedCode> {
    let bytes = raw.as_bytes();
    let mut packed: u64 = 0;
    let mut length = 0usize;
    for (position, &byte) in bytes.iter().enumerate() {
        if byte == b'.' {
            // Only after the category, and only once with something after it.
            if position != 3 || position + 1 >= bytes.len() {
                return None;
            }
            continue;
        }
        let ok = match length {
            0 => byte.is_ascii_uppercase(),
            1 => byte.is_ascii_digit(),
            _ => byte.is_ascii_uppercase() || byte.is_ascii_digit(),
        };
        if !ok || length == 7 {
            return None;
        }
        packed = (packed << 8) | u64::from(byte);
        length += 1;
    }
    (length >= 3).then_some(packed)
}

fn order_file_year(name: &str) -> Option<u16> {
    let rest = name
        .strip_prefix("icd10cm_order_")
        .or_else(|| name.strip_prefix("icd10cm-order-"))?;
    let year = rest.strip_suffix(".txt")?;
    if year.len() != 4 {
        return None;
    }
    year.parse().ok()
}

fn fiscal_year_dates(file: &str, year: u16) -> Result<(NaiveDate, NaiveDate), RuleDataError> {
    let from = NaiveDate::from_ymd_opt(i32::from(year) - 1, 10, 1);
    let to = NaiveDate::from_ymd_opt(i32::from(year), 9, 30);
    from.zip(to)
        .ok_or_else(|| RuleDataError::invalid(file, format!("fiscal year {year} is out of range")))
}

fn insert_code(
    file: &str,
    line: usize,
    codes: &mut HashMap<PackedCode, bool>,
    code: &str,
    flag: &str,
) -> Result<(), RuleDataError> {
    let packed = normalize_icd10(code).ok_or_else(|| {
        RuleDataError::line(file, line, format!("`{code}` is not an ICD-10-CM code"))
    })?;
    let billable = match flag {
        "1" => true,
        "0" => false,
        other => {
            return Err(RuleDataError::line(
                file,
                line,
                format!("billable flag `{other}` is not 0 or 1"),
            ));
        }
    };
    if codes.insert(packed, billable).is_some() {
        return Err(RuleDataError::line(
            file,
            line,
            format!("{code} is listed twice"),
        ));
    }
    Ok(())
}

fn parse_compact(file: &str, text: &str) -> Result<(Icd10CodeSet, String), RuleDataError> {
    let mut fiscal_year = None;
    let mut effective_from = None;
    let mut effective_to = None;
    let mut source = None;
    let mut codes = HashMap::with_capacity_and_hasher(text.len() / 8, Default::default());
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if let Some(header) = line.strip_prefix('#') {
            if let Some((key, value)) = header.split_once(':') {
                let value = value.trim();
                match key.trim() {
                    "fiscal_year" => {
                        fiscal_year = Some(value.parse::<u16>().map_err(|_| {
                            RuleDataError::line(file, number, "fiscal_year is not a year")
                        })?)
                    }
                    "effective_from" => {
                        effective_from = Some(parse_date(file, "effective_from", value)?)
                    }
                    "effective_to" => effective_to = Some(parse_date(file, "effective_to", value)?),
                    "source" => source = Some(value.to_owned()),
                    _ => {}
                }
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let (code, flag) = line
            .split_once('\t')
            .ok_or_else(|| RuleDataError::line(file, number, "expected CODE<TAB>FLAG"))?;
        insert_code(file, number, &mut codes, code.trim(), flag.trim())?;
    }
    let missing =
        |what: &str| RuleDataError::invalid(file, format!("header `# {what}:` is missing"));
    let fiscal_year = fiscal_year.ok_or_else(|| missing("fiscal_year"))?;
    let source = source
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("source"))?;
    let set = Icd10CodeSet {
        fiscal_year,
        effective_from: effective_from.ok_or_else(|| missing("effective_from"))?,
        effective_to: effective_to.ok_or_else(|| missing("effective_to"))?,
        codes,
    };
    if set.effective_to < set.effective_from {
        return Err(RuleDataError::invalid(
            file,
            "effective_to is before effective_from",
        ));
    }
    Ok((set, source))
}

fn parse_order_file(
    file: &str,
    year: u16,
    text: &str,
) -> Result<(Icd10CodeSet, String), RuleDataError> {
    let (effective_from, effective_to) = fiscal_year_dates(file, year)?;
    let mut codes = HashMap::with_capacity_and_hasher(text.len() / 100, Default::default());
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let order = line.get(0..5).unwrap_or("");
        let code = line.get(6..13).unwrap_or("").trim();
        let flag = line.get(14..15).unwrap_or("");
        if !order.trim().bytes().all(|b| b.is_ascii_digit()) || order.trim().is_empty() {
            return Err(RuleDataError::line(
                file,
                number,
                "not a CMS order-file row (order number in columns 1-5, code in 7-13, flag in 15)",
            ));
        }
        insert_code(file, number, &mut codes, code, flag)?;
    }
    let source = format!("CMS ICD-10-CM order file for FY{year} ({file})");
    Ok((
        Icd10CodeSet {
            fiscal_year: year,
            effective_from,
            effective_to,
            codes,
        },
        source,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_and_dot_position() {
        // billing-rules §9: ^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$, with or without the dot.
        let cases = [
            ("M54.50", true),
            ("M5450", true),
            ("M1A", true),
            ("U07.1", true),
            ("S93.401A", true),
            ("S93401A", true),
            ("M54.", false),
            ("M5.450", false),
            ("M54.5.0", false),
            ("1M54", false),
            ("MM54", false),
            ("M5", false),
            ("S93.401AB", false),
            ("m54.50", false),
            ("", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(normalize_icd10(raw).is_some(), ok, "{raw}");
        }
        assert_eq!(normalize_icd10("M54.50"), normalize_icd10("M5450"));
        assert_ne!(normalize_icd10("M545"), normalize_icd10("M5450"));
    }

    #[test]
    fn order_file_rows_are_read_by_column() {
        let text = "\
00001 A00     0 Cholera                                                      Cholera
00002 A000    1 Cholera due to Vibrio cholerae 01, biovar cholerae           Cholera due to Vibrio cholerae 01, biovar cholerae
08000 M5450   1 Low back pain, unspecified                                   Low back pain, unspecified
";
        let (set, _) = parse_order_file("icd10cm/icd10cm_order_2026.txt", 2026, text).unwrap();
        assert_eq!(set.fiscal_year(), 2026);
        assert_eq!(
            set.effective_from(),
            NaiveDate::from_ymd_opt(2025, 10, 1).unwrap()
        );
        assert_eq!(
            set.lookup(normalize_icd10("A00").unwrap()),
            Icd10Lookup::Header
        );
        assert_eq!(
            set.lookup(normalize_icd10("M54.50").unwrap()),
            Icd10Lookup::Billable
        );
        assert_eq!(
            set.lookup(normalize_icd10("M54.5").unwrap()),
            Icd10Lookup::NotInSet
        );
        let bad = parse_order_file("f", 2026, "A00 1 Cholera\n").unwrap_err();
        assert!(bad.to_string().contains("f:1:"), "{bad}");
    }

    #[test]
    fn order_file_names() {
        assert_eq!(order_file_year("icd10cm_order_2026.txt"), Some(2026));
        assert_eq!(order_file_year("icd10cm-order-2027.txt"), Some(2027));
        assert_eq!(order_file_year("icd10cm_order_26.txt"), None);
        assert_eq!(order_file_year("icd10cm-fy2025.tsv"), None);
    }
}
