//! Rule data: every table the rules consult, parsed from the files of a rules directory.
//!
//! Parsing is pure: the caller hands over `(relative path, bytes)` pairs, read from disk or
//! compiled in (see `crate::rules_source`). Every table states its source and effective dates;
//! a file that does not is refused, so no number ships without a source.

mod catalogue;
mod codes;
mod documentation;
mod icd10;
mod meta;
mod mue;
mod ncci;
mod profiles;
mod therapy;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

pub use catalogue::{Catalogue, RuleEntry};
pub use codes::{
    ModifierTable, PlaceOfServiceTable, ProcedureInfo, ProcedureKind, ProcedureTable,
    is_well_formed_modifier, is_well_formed_procedure, pack_procedure,
};
pub use documentation::{DiagnosisPolicy, DocumentationRules, MeasureScale, TechniqueCode};
pub use icd10::{Icd10CodeSet, Icd10CodeSets, Icd10Lookup, Icd10Selection, normalize_icd10};
pub use meta::TableVersion;
pub use mue::{Adjudication, MueSelection, MueTable, MueValue};
pub use ncci::{ModifierIndicator, PairEdit, PtpTable};
pub use profiles::{
    DisciplineLimit, ExtraPair, FilingLimit, FilingSpan, Profile, Profiles, RuleSetting,
};
pub use therapy::{KxSelection, KxThreshold, TherapyRules, UnitTable};

/// An error in the rule data, naming the file (and the line where there is one).
#[derive(Debug, thiserror::Error)]
pub enum RuleDataError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}:{line}: {message}")]
    InvalidLine {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}")]
    Toml {
        file: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{file}: required rule file is missing")]
    Missing { file: String },
    #[error("{file}: not a rule file claimlint knows (remove it, or fix its name)")]
    Unrecognized { file: String },
}

impl RuleDataError {
    pub(crate) fn invalid(file: &str, message: impl Into<String>) -> RuleDataError {
        RuleDataError::Invalid {
            file: file.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn line(file: &str, line: usize, message: impl Into<String>) -> RuleDataError {
        RuleDataError::InvalidLine {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// One file of a rules directory.
#[derive(Debug, Clone, Copy)]
pub struct RuleFile<'a> {
    /// Path relative to the rules directory, with `/` separators.
    pub path: &'a str,
    pub bytes: &'a [u8],
}

/// All rule data in force, shared read-only by every validation.
#[derive(Debug)]
pub struct RuleSet {
    base_version: String,
    digest: String,
    catalogue: Catalogue,
    profiles: Profiles,
    icd10: Icd10CodeSets,
    procedures: ProcedureTable,
    modifiers: ModifierTable,
    places_of_service: PlaceOfServiceTable,
    therapy: TherapyRules,
    documentation: DocumentationRules,
    ptp: PtpTable,
    mue: MueTable,
    tables: Vec<TableVersion>,
    /// `ruleset_version` per ICD-10-CM fiscal year, built once (every outcome carries one).
    outcome_versions: Vec<(u16, String)>,
}

const MANIFEST: &str = "manifest.toml";
const REASONS: &str = "reasons.toml";
const PROFILES: &str = "profiles.toml";
const PLACES_OF_SERVICE: &str = "place_of_service.toml";
const PROCEDURES: &str = "procedures.toml";
const MODIFIERS: &str = "modifiers.toml";
const THERAPY: &str = "therapy.toml";
const DOCUMENTATION: &str = "documentation.toml";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
}

impl RuleSet {
    /// Parses and cross-checks a complete rules directory.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = RuleFile<'a>>,
    ) -> Result<RuleSet, RuleDataError> {
        let mut named: BTreeMap<&str, &[u8]> = BTreeMap::new();
        let mut icd10_files = Vec::new();
        let mut ncci_files = Vec::new();
        let mut mue_files = Vec::new();
        let mut hasher = Sha256::new();
        for file in files {
            hasher.update(file.path.as_bytes());
            hasher.update([0]);
            hasher.update(file.bytes);
            let name = file.path.rsplit('/').next().unwrap_or(file.path);
            if name.starts_with('.') || name.eq_ignore_ascii_case("README.md") {
                continue;
            }
            if file.path.starts_with("icd10cm/") {
                icd10_files.push(file);
            } else if file.path.starts_with("ncci/") {
                ncci_files.push(file);
            } else if file.path.starts_with("mue/") {
                mue_files.push(file);
            } else if matches!(
                file.path,
                MANIFEST
                    | REASONS
                    | PROFILES
                    | PLACES_OF_SERVICE
                    | PROCEDURES
                    | MODIFIERS
                    | THERAPY
                    | DOCUMENTATION
            ) {
                named.insert(file.path, file.bytes);
            } else {
                return Err(RuleDataError::Unrecognized {
                    file: file.path.to_owned(),
                });
            }
        }
        let digest = hex::encode(hasher.finalize());

        let text = |name: &'static str| -> Result<&str, RuleDataError> {
            let bytes = named
                .get(name)
                .ok_or_else(|| RuleDataError::Missing { file: name.into() })?;
            std::str::from_utf8(bytes).map_err(|_| RuleDataError::invalid(name, "not UTF-8"))
        };

        let manifest: Manifest = meta::parse_toml(MANIFEST, text(MANIFEST)?)?;
        if manifest.version.trim().is_empty() {
            return Err(RuleDataError::invalid(MANIFEST, "version is empty"));
        }
        let mut tables = Vec::new();
        let catalogue = Catalogue::parse(REASONS, text(REASONS)?, &mut tables)?;
        let profiles = Profiles::parse(PROFILES, text(PROFILES)?, &catalogue, &mut tables)?;
        let places_of_service =
            PlaceOfServiceTable::parse(PLACES_OF_SERVICE, text(PLACES_OF_SERVICE)?, &mut tables)?;
        let procedures = ProcedureTable::parse(PROCEDURES, text(PROCEDURES)?, &mut tables)?;
        let modifiers = ModifierTable::parse(MODIFIERS, text(MODIFIERS)?, &mut tables)?;
        let therapy = TherapyRules::parse(THERAPY, text(THERAPY)?, &mut tables)?;
        let documentation =
            DocumentationRules::parse(DOCUMENTATION, text(DOCUMENTATION)?, &mut tables)?;
        let icd10 = Icd10CodeSets::parse(&icd10_files, &mut tables)?;
        let ptp = PtpTable::parse(&ncci_files, &mut tables)?;
        let mue = MueTable::parse(&mue_files, &mut tables)?;

        let base_version = manifest.version.trim().to_owned();
        let outcome_versions = icd10
            .sets()
            .iter()
            .map(|set| {
                let year = set.fiscal_year();
                (
                    year,
                    format!(
                        "{base_version}+icd10cm-fy{year}+{}",
                        digest.get(..8).unwrap_or(&digest)
                    ),
                )
            })
            .collect();
        Ok(RuleSet {
            base_version,
            outcome_versions,
            digest,
            catalogue,
            profiles,
            icd10,
            procedures,
            modifiers,
            places_of_service,
            therapy,
            documentation,
            ptp,
            mue,
            tables,
        })
    }

    /// The version of the whole set: manifest version, every ICD-10-CM year, content digest.
    pub fn version(&self) -> String {
        let years: Vec<String> = self
            .icd10
            .sets()
            .iter()
            .map(|set| format!("fy{}", set.fiscal_year()))
            .collect();
        format!(
            "{}+icd10cm-{}+{}",
            self.base_version,
            years.join("."),
            self.short_digest()
        )
    }

    /// The version naming the data that decided one outcome.
    pub fn version_for(&self, code_set: &Icd10CodeSet) -> &str {
        self.outcome_versions
            .iter()
            .find(|(year, _)| *year == code_set.fiscal_year())
            .map_or("", |(_, version)| version.as_str())
    }

    fn short_digest(&self) -> &str {
        self.digest.get(..8).unwrap_or(&self.digest)
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    pub fn icd10(&self) -> &Icd10CodeSets {
        &self.icd10
    }

    pub fn procedures(&self) -> &ProcedureTable {
        &self.procedures
    }

    pub fn modifiers(&self) -> &ModifierTable {
        &self.modifiers
    }

    pub fn places_of_service(&self) -> &PlaceOfServiceTable {
        &self.places_of_service
    }

    pub fn therapy(&self) -> &TherapyRules {
        &self.therapy
    }

    pub fn documentation(&self) -> &DocumentationRules {
        &self.documentation
    }

    pub fn ptp(&self) -> &PtpTable {
        &self.ptp
    }

    pub fn mue(&self) -> &MueTable {
        &self.mue
    }

    /// Every loaded table with its version, source and effective dates.
    pub fn tables(&self) -> &[TableVersion] {
        &self.tables
    }
}

pub(crate) fn parse_date(file: &str, field: &str, raw: &str) -> Result<NaiveDate, RuleDataError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        RuleDataError::invalid(file, format!("{field}: `{raw}` is not a YYYY-MM-DD date"))
    })
}
