//! Core benchmarks: loading all rule data; validating the typical visit (the seed visit:
//! 97140 + 97124, full documentation) and a large one (12 lines, 12 diagnoses); validation
//! time against the number of lines; decode JSON → validate → encode the outcome; ICD-10-CM
//! lookups in the full code set. Run with `cargo bench --bench core`; figures go in
//! BENCHMARKS.md.

use std::hint::black_box;

/// The allocator the `claimlint` binary ships with, so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::{NaiveDate, Utc};
use claimlint::core;
use claimlint::core::data::normalize_icd10;
use claimlint::proto::v1 as pb;
use claimlint::rules_source::load_rules;
use claimlint::wire::{check_encounter, content_hash, json, sample};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn seed_visit() -> pb::Encounter {
    sample::seed_visit().unwrap()
}

/// The date the examples are written for (their date of service is 2025-06-16).
fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 20).unwrap()
}

/// Billable FY2025 ICD-10-CM codes of the musculoskeletal chapter (rules/icd10cm).
const DIAGNOSES: [&str; 12] = [
    "M54.2", "M54.50", "M62.838", "M25.511", "M25.512", "M54.6", "M79.18", "M62.81", "M25.561",
    "M25.562", "M54.16", "M62.830",
];

/// Timed therapy codes (rules/procedures.toml), one line each, 15 minutes and 1 unit.
const TIMED_CODES: [&str; 12] = [
    "97110", "97112", "97116", "97140", "97124", "97530", "97535", "97750", "97113", "97032",
    "97035", "97033",
];

/// The seed visit grown to `lines` service lines and 12 diagnoses: each line a copy of one of
/// the seed's two lines (the 97124 line keeps its massage techniques) with another timed code,
/// 15 minutes, 1 unit, pointing at its own diagnosis.
fn visit_with_lines(lines: usize) -> pb::Encounter {
    let mut visit = seed_visit();
    let templates = visit.service_lines.clone();
    visit.diagnosis_codes = DIAGNOSES.iter().map(|c| (*c).to_owned()).collect();
    visit.service_lines = (0..lines)
        .map(|i| {
            let code = TIMED_CODES[i % TIMED_CODES.len()];
            let mut line = templates[usize::from(code == "97124")].clone();
            line.procedure_code = code.to_owned();
            line.minutes = 15;
            line.units = 1;
            line.diagnosis_pointers = vec![(i % DIAGNOSES.len()) as u32 + 1];
            line
        })
        .collect();
    visit.total_treatment_minutes = 15 * lines as u32;
    visit
}

fn rule_data_load(c: &mut Criterion) {
    c.bench_function(
        "rules/load_built_in (all tables, 97k ICD-10-CM codes)",
        |b| b.iter(|| black_box(load_rules(None).unwrap())),
    );
}

fn validate_visits(c: &mut Criterion) {
    let rules = load_rules(None).unwrap();
    let seed = core::types::Encounter::try_from(&seed_visit()).unwrap();
    c.bench_function("core/validate_seed_visit", |b| {
        b.iter(|| black_box(core::validate(black_box(&seed), &rules, as_of())))
    });
    let large = core::types::Encounter::try_from(&visit_with_lines(12)).unwrap();
    c.bench_function("core/validate_large_visit (12 lines, 12 diagnoses)", |b| {
        b.iter(|| black_box(core::validate(black_box(&large), &rules, as_of())))
    });
    // Growth: time per visit against its number of lines.
    let mut group = c.benchmark_group("core/validate_by_lines");
    for lines in [1usize, 2, 4, 8, 12] {
        let visit = core::types::Encounter::try_from(&visit_with_lines(lines)).unwrap();
        group.throughput(Throughput::Elements(lines as u64));
        group.bench_with_input(BenchmarkId::from_parameter(lines), &visit, |b, visit| {
            b.iter(|| black_box(core::validate(black_box(visit), &rules, as_of())))
        });
    }
    group.finish();
}

fn wire_round_trip(c: &mut Criterion) {
    let rules = load_rules(None).unwrap();
    // Compact JSON is what arrives on NATS (the load generator and EMRs write it so); the
    // example file is pretty-printed (2.9 kB, a third of it indentation).
    let seed_compact = serde_json::to_vec(&seed_visit()).unwrap();
    let large_compact = serde_json::to_vec(&visit_with_lines(12)).unwrap();
    for (name, bytes) in [
        (
            "wire/decode_json+validate+encode_json (seed visit, compact)",
            seed_compact.as_slice(),
        ),
        (
            "wire/decode_json+validate+encode_json (seed visit, pretty-printed as in examples/)",
            sample::SEED_VISIT_JSON.as_bytes(),
        ),
        (
            "wire/decode_json+validate+encode_json (large visit)",
            large_compact.as_slice(),
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let wire = json::decode_encounter(black_box(bytes)).unwrap();
                let outcome = check_encounter(&wire, &rules, as_of(), Utc::now()).unwrap();
                black_box(serde_json::to_vec(&outcome).unwrap())
            })
        });
    }
}

/// The round trip's parts, for the seed visit (compact JSON): where its time goes.
fn wire_parts(c: &mut Criterion) {
    let rules = load_rules(None).unwrap();
    let bytes = serde_json::to_vec(&seed_visit()).unwrap();
    let wire = json::decode_encounter(&bytes).unwrap();
    let outcome = check_encounter(&wire, &rules, as_of(), Utc::now()).unwrap();
    c.bench_function("wire/decode_json (seed visit, compact)", |b| {
        b.iter(|| black_box(json::decode_encounter(black_box(&bytes)).unwrap()))
    });
    c.bench_function(
        "wire/check_encounter (seed visit: to core, validate, hash, to wire)",
        |b| {
            b.iter(|| {
                black_box(check_encounter(black_box(&wire), &rules, as_of(), Utc::now()).unwrap())
            })
        },
    );
    c.bench_function(
        "wire/content_hash (seed visit: protobuf encoding, SHA-256)",
        |b| b.iter(|| black_box(content_hash(black_box(&wire)))),
    );
    c.bench_function("wire/to_core (seed visit)", |b| {
        b.iter(|| black_box(core::types::Encounter::try_from(black_box(&wire)).unwrap()))
    });
    c.bench_function("wire/encode_json (seed visit's outcome)", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&outcome)).unwrap()))
    });
}

fn icd10_lookup(c: &mut Criterion) {
    let rules = load_rules(None).unwrap();
    let set = rules.icd10().select(Some(as_of())).set;
    let mut group = c.benchmark_group(format!("icd10_lookup ({} codes)", set.len()));
    for (name, raw) in [("hit", "M62.838"), ("header", "M54"), ("miss", "Z99.999")] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let code = normalize_icd10(black_box(raw)).unwrap();
                black_box(set.lookup(code))
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    rule_data_load,
    validate_visits,
    wire_round_trip,
    wire_parts,
    icd10_lookup
);
criterion_main!(benches);
