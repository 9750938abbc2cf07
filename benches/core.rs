//! Core benchmarks: loading all rule data, and validating the seed visit.
//! Run with `cargo bench --bench core`; figures go in BENCHMARKS.md.

use std::hint::black_box;

use chrono::{NaiveDate, Utc};
use claimlint::core;
use claimlint::rules_source::load_rules;
use claimlint::wire::{check_encounter, json};
use criterion::{Criterion, criterion_group, criterion_main};

fn seed_json() -> &'static str {
    include_str!("../examples/valid-medicare-seed-visit.json")
}

fn rule_data_load(c: &mut Criterion) {
    c.bench_function(
        "rules/load_built_in (all tables, 97k ICD-10-CM codes)",
        |b| b.iter(|| black_box(load_rules(None).unwrap())),
    );
}

fn validate_seed_visit(c: &mut Criterion) {
    let rules = load_rules(None).unwrap();
    let as_of = NaiveDate::from_ymd_opt(2025, 6, 20).unwrap();
    let wire = json::parse_encounters(seed_json()).unwrap().remove(0);
    let encounter = core::types::Encounter::try_from(&wire).unwrap();
    c.bench_function("core/validate_seed_visit", |b| {
        b.iter(|| black_box(core::validate(black_box(&encounter), &rules, as_of)))
    });
    c.bench_function("wire/decode_json+validate+encode_json (seed visit)", |b| {
        b.iter(|| {
            let wire = json::decode_encounter(black_box(seed_json().as_bytes())).unwrap();
            let outcome = check_encounter(&wire, &rules, as_of, Utc::now()).unwrap();
            black_box(serde_json::to_vec(&outcome).unwrap())
        })
    });
}

criterion_group!(benches, rule_data_load, validate_seed_visit);
criterion_main!(benches);
