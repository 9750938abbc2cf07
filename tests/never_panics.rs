//! Arbitrary bytes and arbitrary JSON through decode + validate: an answer, never a panic.

use std::sync::OnceLock;

use chrono::{NaiveDate, Utc};
use claimlint::core::data::RuleSet;
use claimlint::proto::v1 as pb;
use claimlint::wire::{check_encounter, check_identity, json};
use proptest::prelude::*;
use prost::Message;
use serde_json::Value;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| claimlint::rules_source::load_rules(None).unwrap())
}

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 20).unwrap()
}

fn validate_if_decoded(encounter: Result<pb::Encounter, impl std::fmt::Debug>) {
    if let Ok(encounter) = encounter {
        match check_encounter(&encounter, rules(), as_of(), Utc::now()) {
            Ok(outcome) => {
                // Every answer is complete: a status, and a reason for every error.
                assert_ne!(outcome.status, pb::Status::Unspecified as i32);
                let rejected = outcome.status == pb::Status::Rejected as i32;
                let has_error = outcome
                    .reasons
                    .iter()
                    .any(|r| r.severity == pb::Severity::Error as i32);
                assert_eq!(rejected, has_error);
                assert!(
                    outcome
                        .reasons
                        .iter()
                        .all(|r| !r.code.is_empty() && !r.message.is_empty())
                );
            }
            // Refused only for what the transports refuse before validating: no usable
            // encounter_id, or an identifier longer than any real one.
            Err(error) => assert_eq!(check_identity(&encounter), Err(error)),
        }
    }
}

const FIELDS: &[&str] = &[
    "encounterId",
    "patientId",
    "dateOfService",
    "placeOfService",
    "payer",
    "payerId",
    "kind",
    "renderingProvider",
    "npi",
    "discipline",
    "billingProviderNpi",
    "diagnosisCodes",
    "serviceLines",
    "procedureCode",
    "modifiers",
    "units",
    "minutes",
    "assistantMinutes",
    "diagnosisPointers",
    "bodyRegions",
    "region",
    "laterality",
    "techniques",
    "chargeCents",
    "totalTreatmentMinutes",
    "documentation",
    "goals",
    "objectiveMeasures",
    "value",
    "baseline",
    "planOfCare",
    "startDate",
    "certifiedDate",
    "therapistSigned",
    "yearToDateAllowedCents",
    "encounter_id",
    "service_lines",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "PAYER_KIND_MEDICARE",
            "DISCIPLINE_PHYSICAL_THERAPIST",
            "REGION_LUMBAR",
            "TECHNIQUE_EFFLEURAGE",
            "97124",
            "97140",
            "GP",
            "59",
            "M54.50",
            "M54.5",
            "2025-06-16",
            "2025-02-30",
            "1234567893",
            "11",
            "",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..8).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// The seed visit with one value somewhere replaced.
fn mutated_seed() -> impl Strategy<Value = Value> {
    let seed: Value =
        serde_json::from_str(include_str!("../examples/valid-medicare-seed-visit.json")).unwrap();
    (any::<prop::sample::Index>(), json_value()).prop_map(move |(index, replacement)| {
        let mut value = seed.clone();
        let mut slots = Vec::new();
        collect_paths(&value, String::new(), &mut slots);
        let path = &slots[index.index(slots.len())];
        if let Some(slot) = value.pointer_mut(path) {
            *slot = replacement;
        }
        value
    })
}

fn collect_paths(value: &Value, path: String, out: &mut Vec<String>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| collect_paths(v, format!("{path}/{k}"), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| collect_paths(v, format!("{path}/{i}"), out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_protobuf(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        validate_if_decoded(pb::Encounter::decode(bytes.as_slice()));
    }

    #[test]
    fn arbitrary_bytes_as_json(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        validate_if_decoded(json::decode_encounter(&bytes));
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = json::parse_encounters(text).map(|all| all.into_iter().for_each(|e| validate_if_decoded(Ok::<_, ()>(e))));
        }
    }

    #[test]
    fn arbitrary_json_documents(value in json_value()) {
        let text = value.to_string();
        validate_if_decoded(json::decode_encounter(text.as_bytes()));
    }

    #[test]
    fn the_seed_visit_with_any_value_replaced(value in mutated_seed()) {
        let text = value.to_string();
        validate_if_decoded(json::decode_encounter(text.as_bytes()));
        // What JSON decoded round-trips through protobuf unchanged, so the NATS protobuf and
        // gRPC feeds judge the very message the JSON feed does (the verdict is a function of it).
        if let Ok(encounter) = json::decode_encounter(text.as_bytes()) {
            let again = pb::Encounter::decode(encounter.encode_to_vec().as_slice()).unwrap();
            prop_assert_eq!(&again, &encounter);
        }
    }
}

#[test]
fn extreme_values_do_not_overflow() {
    let encounter = pb::Encounter {
        encounter_id: "big".into(),
        diagnosis_codes: vec!["M54.50".into(); 40],
        service_lines: (0..50)
            .map(|_| pb::ServiceLine {
                procedure_code: "97124".into(),
                units: u32::MAX,
                minutes: u32::MAX,
                assistant_minutes: u32::MAX,
                diagnosis_pointers: vec![u32::MAX, 0, 1],
                charge_cents: i64::MAX,
                modifiers: vec!["GP".into(); 9],
                ..Default::default()
            })
            .collect(),
        total_treatment_minutes: u32::MAX,
        ..Default::default()
    };
    validate_if_decoded(Ok::<_, ()>(encounter));
}
