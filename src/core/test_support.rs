//! Shared fixtures for the rule tables: the seed visit of `examples/`, the shipped rule data,
//! and a runner that checks one row per case.

use std::sync::OnceLock;

use chrono::NaiveDate;

use super::data::RuleSet;
use super::reason::{Reason, ReasonCode, Severity};
use super::types::Encounter;

pub fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| crate::rules_source::load_rules(None).expect("shipped rule data loads"))
}

/// The validation date of the examples.
pub fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 20).expect("date")
}

/// The valid Medicare seed visit (97140 cervical + 97124 lumbar with 59, GP on both), as sent.
pub fn seed_visit_wire() -> crate::proto::v1::Encounter {
    crate::wire::sample::seed_visit().expect("example parses")
}

/// The seed visit moved to yesterday, so that it validates on today's date (what `App::check`
/// uses).
pub fn recent_seed_visit_wire() -> crate::proto::v1::Encounter {
    // Dated once per test process, so a test running across midnight sees one visit.
    static VISIT: std::sync::OnceLock<crate::proto::v1::Encounter> = std::sync::OnceLock::new();
    VISIT
        .get_or_init(|| crate::wire::sample::seed_visit_yesterday().expect("example parses"))
        .clone()
}

/// The seed visit as the rules see it.
pub fn seed_visit() -> Encounter {
    Encounter::try_from(&seed_visit_wire()).expect("example converts")
}

/// The shipped rule data with one file replaced (or added).
pub fn rules_with(path: &str, contents: &str) -> RuleSet {
    let mut files: Vec<(String, Vec<u8>)> = crate::rules_source::embedded_files()
        .filter(|(name, _)| *name != path)
        .map(|(name, bytes)| (name.to_owned(), bytes.to_vec()))
        .collect();
    files.push((path.to_owned(), contents.as_bytes().to_vec()));
    RuleSet::from_files(
        files
            .iter()
            .map(|(path, bytes)| super::data::RuleFile { path, bytes }),
    )
    .expect("rule data loads")
}

pub fn reasons_for(encounter: &Encounter) -> Vec<Reason> {
    super::validate(encounter, rules(), as_of()).reasons
}

/// What one row of a rule table expects.
pub enum Expect {
    /// The rule stays silent.
    Passes(ReasonCode),
    /// The rule fires with this code, severity, field and CARC.
    Fails {
        code: ReasonCode,
        severity: Severity,
        field: &'static str,
        carc: &'static str,
    },
}

pub struct Case {
    pub name: &'static str,
    /// The rule's source, cited per row.
    pub source: &'static str,
    pub change: fn(&mut Encounter),
    pub expect: Expect,
}

pub fn run_table(cases: &[Case]) {
    for case in cases {
        let mut encounter = seed_visit();
        (case.change)(&mut encounter);
        let reasons = reasons_for(&encounter);
        match &case.expect {
            Expect::Passes(code) => assert!(
                reasons.iter().all(|r| r.code != *code),
                "{} ({}): {code} fired: {reasons:#?}",
                case.name,
                case.source
            ),
            Expect::Fails {
                code,
                severity,
                field,
                carc,
            } => assert!(
                reasons.iter().any(|r| r.code == *code
                    && r.severity == *severity
                    && r.field == *field
                    && r.carc == *carc
                    && !r.message.is_empty()
                    && !r.remedy.is_empty()
                    && !r.source.is_empty()),
                "{} ({}): expected {code} {severity:?} at {field} with {carc}, got {reasons:#?}",
                case.name,
                case.source
            ),
        }
    }
}

#[test]
fn the_seed_visit_validates_without_findings() {
    let visit = seed_visit();
    let outcome = super::validate(&visit, rules(), as_of());
    assert_eq!(outcome.status, super::outcome::Status::Validated);
    assert!(outcome.reasons.is_empty(), "{:#?}", outcome.reasons);
    let claim = outcome.claim.expect("claim");
    assert_eq!(claim.lines.len(), 2);
    assert_eq!(claim.total_units, 3);
    assert_eq!(claim.total_charge_cents, 11_500);
    assert_eq!(claim.lines[1].modifiers, vec!["GP", "59"]);
}
