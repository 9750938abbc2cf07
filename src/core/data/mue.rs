//! Medically Unlikely Edits from the CMS practitioner MUE files as published
//! (`mue/MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY.csv`: AMA notice rows, then the header
//! `HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication Indicator, MUE
//! Rationale`, the indicator spelled out, e.g. `2 Date of Service Edit: Policy`).
//!
//! A file applies from its effective date to the day before the next file's; the newest for
//! one quarter.

use chrono::{Days, Months, NaiveDate};
use rustc_hash::FxHashMap;

use super::codes::pack_procedure;
use super::meta::TableVersion;
use super::{RuleDataError, RuleFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adjudication {
    /// MAI 1: each claim line on its own.
    Line,
    /// MAI 2 (policy) or 3 (clinical): all units of the code on the date of service.
    DateOfService,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MueValue {
    pub units: u32,
    pub adjudication: Adjudication,
    /// The MAI as published (1, 2 or 3).
    pub indicator: u8,
}

#[derive(Debug)]
struct MueFile {
    name: String,
    effective: NaiveDate,
    values: FxHashMap<u32, MueValue>,
}

/// The MUE file that judges one date of service.
#[derive(Debug, Clone, Copy)]
pub struct MueSelection<'a> {
    file: &'a MueFile,
    pub covers_date_of_service: bool,
}

impl MueSelection<'_> {
    pub fn value(&self, code: &str) -> Option<MueValue> {
        self.file.values.get(&pack_procedure(code)?).copied()
    }

    pub fn source(&self) -> String {
        format!(
            "CMS practitioner MUE file {} (effective {})",
            self.file.name, self.file.effective
        )
    }
}

#[derive(Debug, Default)]
pub struct MueTable {
    /// Sorted by effective date.
    files: Vec<MueFile>,
}

const PREFIX: &str = "MCR_MUE_PractitionerServices_Eff_";

impl MueTable {
    pub(crate) fn parse(
        files: &[RuleFile<'_>],
        tables: &mut Vec<TableVersion>,
    ) -> Result<MueTable, RuleDataError> {
        let mut loaded = Vec::new();
        for file in files {
            let name = file.path.rsplit('/').next().unwrap_or(file.path);
            let Some(effective) = effective_in_name(name) else {
                return Err(RuleDataError::Unrecognized {
                    file: file.path.to_owned(),
                });
            };
            let values = parse_csv(file.path, file.bytes)?;
            loaded.push(MueFile {
                name: name.to_owned(),
                effective,
                values,
            });
        }
        loaded.sort_by_key(|file| file.effective);
        if loaded
            .windows(2)
            .any(|pair| pair[0].effective == pair[1].effective)
        {
            return Err(RuleDataError::invalid(
                "mue/",
                "two MUE files with the same effective date",
            ));
        }
        let table = MueTable { files: loaded };
        for (index, file) in table.files.iter().enumerate() {
            tables.push(TableVersion {
                table: "mue".into(),
                version: file.effective.to_string(),
                source: format!("CMS practitioner MUE file {}", file.name),
                effective_from: file.effective,
                effective_to: table.end_of(index),
            });
        }
        Ok(table)
    }

    fn end_of(&self, index: usize) -> Option<NaiveDate> {
        match self.files.get(index + 1) {
            Some(next) => next.effective.checked_sub_days(Days::new(1)),
            None => self
                .files
                .get(index)?
                .effective
                .checked_add_months(Months::new(3))?
                .pred_opt(),
        }
    }

    /// `None` when no MUE file is loaded (MUE is then not checked).
    pub fn select(&self, date: NaiveDate) -> Option<MueSelection<'_>> {
        let position = self.files.iter().rposition(|file| file.effective <= date);
        let index = position.unwrap_or(0);
        let file = self.files.get(index)?;
        let covers = position.is_some() && self.end_of(index).is_none_or(|end| date <= end);
        Some(MueSelection {
            file,
            covers_date_of_service: covers,
        })
    }

    pub fn is_loaded(&self) -> bool {
        !self.files.is_empty()
    }
}

fn effective_in_name(name: &str) -> Option<NaiveDate> {
    let date = name.strip_prefix(PREFIX)?.strip_suffix(".csv")?;
    NaiveDate::parse_from_str(date, "%m-%d-%Y").ok()
}

fn parse_csv(path: &str, bytes: &[u8]) -> Result<FxHashMap<u32, MueValue>, RuleDataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut values = FxHashMap::default();
    let mut in_rows = false;
    for (index, record) in reader.records().enumerate() {
        let number = index + 1;
        let record =
            record.map_err(|error| RuleDataError::line(path, number, error.to_string()))?;
        let first = record.get(0).unwrap_or("").trim();
        if !in_rows {
            // Notice rows come first; the header starts the table.
            in_rows = first.starts_with("HCPCS");
            continue;
        }
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        let bad = |what: &str| RuleDataError::line(path, number, what.to_owned());
        let code = pack_procedure(first).ok_or_else(|| bad("column 1 is not a CPT/HCPCS code"))?;
        let units = record
            .get(1)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .ok_or_else(|| bad("column 2 is not a whole number of units"))?;
        let indicator = record
            .get(2)
            .and_then(|v| v.trim().bytes().next())
            .filter(|b| (b'1'..=b'3').contains(b))
            .map(|b| b - b'0')
            .ok_or_else(|| {
                bad("column 3 does not start with the adjudication indicator 1, 2 or 3")
            })?;
        let adjudication = if indicator == 1 {
            Adjudication::Line
        } else {
            Adjudication::DateOfService
        };
        if values
            .insert(
                code,
                MueValue {
                    units,
                    adjudication,
                    indicator,
                },
            )
            .is_some()
        {
            return Err(bad("the code is listed twice"));
        }
    }
    if !in_rows {
        return Err(RuleDataError::invalid(
            path,
            "no `HCPCS/CPT Code` header row found",
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(raw: &str) -> NaiveDate {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
    }

    /// The published layout (formats.md §4.2): notice rows with commas in quotes, the header,
    /// the indicator spelled out. Values here are test data, not CMS values.
    const FIXTURE: &str = "\
\"CPT codes, descriptions and other data only are copyright 2025 American Medical Association.  All Rights Reserved.\",,,
\"The MUE values are not to be used as a guideline, see the policy manual\",,,
HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale
97110,8,\"3 Date of Service Edit: Clinical\",Nature of Service/Procedure
97124,4,2 Date of Service Edit: Policy,Code Descriptor / CPT Instruction
97164,1,1 Line Edit,Code Descriptor / CPT Instruction
";

    fn table() -> MueTable {
        let files = [
            RuleFile {
                path: "mue/MCR_MUE_PractitionerServices_Eff_07-01-2026.csv",
                bytes: FIXTURE.as_bytes(),
            },
            RuleFile {
                path: "mue/MCR_MUE_PractitionerServices_Eff_04-01-2026.csv",
                bytes: FIXTURE.replace("97124,4", "97124,3").into_bytes().leak(),
            },
        ];
        MueTable::parse(&files, &mut Vec::new()).unwrap()
    }

    #[test]
    fn reads_the_published_layout() {
        let table = table();
        let july = table.select(date("2026-07-15")).unwrap();
        assert!(july.covers_date_of_service);
        assert_eq!(
            july.value("97124"),
            Some(MueValue {
                units: 4,
                adjudication: Adjudication::DateOfService,
                indicator: 2
            })
        );
        assert_eq!(july.value("97110").unwrap().indicator, 3);
        assert_eq!(
            july.value("97164").unwrap().adjudication,
            Adjudication::Line
        );
        assert_eq!(july.value("97140"), None);
    }

    #[test]
    fn the_date_of_service_picks_the_file() {
        let table = table();
        assert_eq!(
            table
                .select(date("2026-06-30"))
                .unwrap()
                .value("97124")
                .unwrap()
                .units,
            3
        );
        assert_eq!(
            table
                .select(date("2026-07-01"))
                .unwrap()
                .value("97124")
                .unwrap()
                .units,
            4
        );
        // After the newest file's quarter, or before the oldest file: not current.
        assert!(
            !table
                .select(date("2026-10-01"))
                .unwrap()
                .covers_date_of_service
        );
        assert!(
            !table
                .select(date("2026-03-31"))
                .unwrap()
                .covers_date_of_service
        );
        assert!(MueTable::default().select(date("2026-07-01")).is_none());
    }

    #[test]
    fn bad_rows_and_names_are_refused() {
        let bad = format!("{FIXTURE}97530,four,2 Date of Service Edit: Policy,x\n");
        let files = [RuleFile {
            path: "mue/MCR_MUE_PractitionerServices_Eff_07-01-2026.csv",
            bytes: bad.as_bytes(),
        }];
        let error = MueTable::parse(&files, &mut Vec::new()).unwrap_err();
        assert!(error.to_string().contains(":7:"), "{error}");
        let files = [RuleFile {
            path: "mue/mue-values.csv",
            bytes: FIXTURE.as_bytes(),
        }];
        assert!(matches!(
            MueTable::parse(&files, &mut Vec::new()),
            Err(RuleDataError::Unrecognized { .. })
        ));
    }
}
