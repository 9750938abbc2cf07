//! Code tables: procedure codes (timed or service-based), modifiers, places of service.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use chrono::NaiveDate;
use serde::Deserialize;

use super::meta::{Meta, TableVersion, parse_toml};
use super::{RuleDataError, parse_date};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcedureKind {
    /// Billed in 15-minute units under the 8-minute rule.
    Timed,
    /// One unit per date of service, whatever the time.
    Untimed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcedureInfo {
    pub kind: ProcedureKind,
    /// On the CMS list of codes that are therapy whoever furnishes them: needs GP/GO/GN.
    pub always_therapy: bool,
}

#[derive(Debug)]
pub struct ProcedureTable {
    codes: HashMap<String, ProcedureInfo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProceduresFile {
    meta: Meta,
    group: Vec<ProcedureGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcedureGroup {
    kind: String,
    always_therapy: bool,
    codes: Vec<String>,
    source: String,
}

impl ProcedureTable {
    pub(crate) fn parse(
        file: &str,
        text: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<ProcedureTable, RuleDataError> {
        let raw: ProceduresFile = parse_toml(file, text)?;
        raw.meta.record(file, "procedures", tables)?;
        let mut codes = HashMap::default();
        for group in raw.group {
            let kind = match group.kind.as_str() {
                "timed" => ProcedureKind::Timed,
                "untimed" => ProcedureKind::Untimed,
                other => {
                    return Err(RuleDataError::invalid(
                        file,
                        format!("group kind `{other}` is not timed or untimed"),
                    ));
                }
            };
            if group.source.trim().is_empty() {
                return Err(RuleDataError::invalid(file, "every group needs a source"));
            }
            for code in group.codes {
                let code = code.trim().to_ascii_uppercase();
                if !is_well_formed_procedure(&code) {
                    return Err(RuleDataError::invalid(
                        file,
                        format!("`{code}` is not a CPT/HCPCS code"),
                    ));
                }
                let info = ProcedureInfo {
                    kind,
                    always_therapy: group.always_therapy,
                };
                if codes.insert(code.clone(), info).is_some() {
                    return Err(RuleDataError::invalid(
                        file,
                        format!("{code} is listed twice"),
                    ));
                }
            }
        }
        Ok(ProcedureTable { codes })
    }

    pub fn get(&self, code: &str) -> Option<ProcedureInfo> {
        self.codes.get(code).copied()
    }

    pub fn kind(&self, code: &str) -> Option<ProcedureKind> {
        self.get(code).map(|info| info.kind)
    }

    pub fn is_timed(&self, code: &str) -> bool {
        self.kind(code) == Some(ProcedureKind::Timed)
    }
}

/// CPT Category I (5 digits), II (4 digits + F), III (4 digits + T), HCPCS Level II
/// (letter + 4 digits), billing-rules §9; plus the CPT suffixes A (vaccine administration),
/// M (multianalyte assays) and U (proprietary lab analyses) that appear in the CMS NCCI files
/// (formats.md §4.1: rows `0001A`, `0001U`).
pub fn is_well_formed_procedure(code: &str) -> bool {
    let bytes = code.as_bytes();
    if bytes.len() != 5 {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    (digits(0..5))
        || (digits(0..4) && matches!(bytes[4], b'A' | b'F' | b'M' | b'T' | b'U'))
        || (bytes[0].is_ascii_uppercase() && digits(1..5))
}

/// Packs a well-formed 5-character CPT/HCPCS code into 26 bits (base 36), for the large edit
/// tables: no allocation per row, cheap hashing.
pub fn pack_procedure(code: &str) -> Option<u32> {
    if !is_well_formed_procedure(code) {
        return None;
    }
    code.bytes().try_fold(0u32, |packed, byte| {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A' + 10,
            _ => return None,
        };
        Some(packed * 36 + u32::from(digit))
    })
}

#[derive(Debug)]
pub struct ModifierTable {
    known: HashSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModifiersFile {
    meta: Meta,
    group: Vec<ModifierGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModifierGroup {
    #[allow(dead_code)]
    category: String,
    modifiers: Vec<String>,
    source: String,
}

impl ModifierTable {
    pub(crate) fn parse(
        file: &str,
        text: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<ModifierTable, RuleDataError> {
        let raw: ModifiersFile = parse_toml(file, text)?;
        raw.meta.record(file, "modifiers", tables)?;
        let mut known = HashSet::default();
        for group in raw.group {
            if group.source.trim().is_empty() {
                return Err(RuleDataError::invalid(file, "every group needs a source"));
            }
            for modifier in group.modifiers {
                let modifier = modifier.trim().to_ascii_uppercase();
                if !is_well_formed_modifier(&modifier) {
                    return Err(RuleDataError::invalid(
                        file,
                        format!("`{modifier}` is not a 2-character modifier"),
                    ));
                }
                if !known.insert(modifier.clone()) {
                    return Err(RuleDataError::invalid(
                        file,
                        format!("{modifier} is listed twice"),
                    ));
                }
            }
        }
        Ok(ModifierTable { known })
    }

    pub fn is_known(&self, modifier: &str) -> bool {
        self.known.contains(modifier)
    }
}

/// Two letters or digits (X12 SV101-3..6).
pub fn is_well_formed_modifier(modifier: &str) -> bool {
    modifier.len() == 2
        && modifier
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[derive(Debug)]
pub struct PlaceOfServiceTable {
    /// Code → the first date of service it is valid for, when later than the table's start.
    codes: HashMap<String, Option<NaiveDate>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacesFile {
    meta: Meta,
    codes: Vec<PlaceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceEntry {
    code: String,
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    effective_from: Option<String>,
}

impl PlaceOfServiceTable {
    pub(crate) fn parse(
        file: &str,
        text: &str,
        tables: &mut Vec<TableVersion>,
    ) -> Result<PlaceOfServiceTable, RuleDataError> {
        let raw: PlacesFile = parse_toml(file, text)?;
        raw.meta.record(file, "place_of_service", tables)?;
        let mut codes = HashMap::default();
        for entry in raw.codes {
            let code = entry.code.trim().to_owned();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RuleDataError::invalid(
                    file,
                    format!("`{code}` is not a two-digit POS code"),
                ));
            }
            let from = match entry.effective_from.as_deref() {
                Some(raw) => Some(parse_date(file, &format!("{code}.effective_from"), raw)?),
                None => None,
            };
            if codes.insert(code.clone(), from).is_some() {
                return Err(RuleDataError::invalid(
                    file,
                    format!("{code} is listed twice"),
                ));
            }
        }
        Ok(PlaceOfServiceTable { codes })
    }

    /// Whether `code` is a POS code in force on `date_of_service` (any date when unknown).
    pub fn is_valid(&self, code: &str, date_of_service: Option<NaiveDate>) -> bool {
        match self.codes.get(code) {
            None => false,
            Some(None) => true,
            Some(Some(from)) => date_of_service.is_none_or(|dos| dos >= *from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_code_shapes() {
        // billing-rules §9: CPT I/II/III and HCPCS Level II.
        let cases = [
            ("97124", true),
            ("0001F", true),
            ("0042T", true),
            ("G0283", true),
            ("9712", false),
            ("971245", false),
            ("97X24", false),
            ("g0283", false),
            ("0001A", true),
            ("0001U", true),
            ("0001Z", false),
        ];
        for (code, ok) in cases {
            assert_eq!(is_well_formed_procedure(code), ok, "{code}");
        }
    }

    #[test]
    fn packed_codes_are_distinct() {
        let codes = ["97124", "97140", "G0283", "0001A", "0001U", "Z9999"];
        let packed: Vec<u32> = codes.iter().map(|c| pack_procedure(c).unwrap()).collect();
        for (i, a) in packed.iter().enumerate() {
            assert!(*a < 1 << 26);
            for b in &packed[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(pack_procedure("9712"), None);
    }

    #[test]
    fn modifier_shapes() {
        for (modifier, ok) in [
            ("GP", true),
            ("59", true),
            ("X", false),
            ("GPX", false),
            ("G-", false),
        ] {
            assert_eq!(is_well_formed_modifier(modifier), ok, "{modifier}");
        }
    }
}
