//! Rule tables at full size: loading a synthetic CMS PTP file of 1.8 million rows (the size of
//! the practitioner edits in force, formats.md §4.1), and pair lookups at 1, 1 thousand and
//! 1.8 million rows (a lookup must not grow with the table). Run with `cargo bench --bench tables`.

use std::hint::black_box;

/// The allocator the `claimlint` binary ships with, so the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Duration;

use chrono::NaiveDate;
use claimlint::core::data::{RuleFile, RuleSet};
use claimlint::rules_source::embedded_files;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const NOTICE: &str = "CPT codes, descriptions and other data only are copyright 2025 American Medical Association.\nColumn1/Column2 Edits\nColumn 1\tColumn 2\t*=in existence prior to 1996\tEffective\tDeletion\tModifier\tPTP Edit Rationale\n";

/// `rows` distinct pairs in the published layout, a tenth of them deleted, some indicator 9.
fn synthetic_ptp(rows: usize) -> String {
    let mut text = String::with_capacity(rows * 60 + NOTICE.len());
    text.push_str(NOTICE);
    for i in 0..rows {
        let column1 = 10000 + i / 2000;
        let column2 = 20000 + i % 2000;
        let deleted = if i % 10 == 0 { "20230101" } else { "*" };
        let indicator = if i % 7 == 0 {
            '9'
        } else if i % 3 == 0 {
            '0'
        } else {
            '1'
        };
        text.push_str(&format!("{column1}\t{column2}\t\t20100101\t{deleted}\t{indicator}\tMutually exclusive procedures\n"));
    }
    text
}

fn rules_with_ptp(text: &str) -> RuleSet {
    let name = "ncci/ccipra-2026q3-synthetic-f1.txt";
    let files = embedded_files()
        .map(|(path, bytes)| RuleFile { path, bytes })
        .chain(std::iter::once(RuleFile {
            path: name,
            bytes: text.as_bytes(),
        }));
    RuleSet::from_files(files).unwrap()
}

fn ptp_load(c: &mut Criterion) {
    let text = synthetic_ptp(1_800_000);
    let mut group = c.benchmark_group("ptp");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("load_all_rules_with_1.8M_ptp_rows", |b| {
        b.iter(|| black_box(rules_with_ptp(&text)))
    });
    group.finish();
}

fn ptp_lookup(c: &mut Criterion) {
    let date = NaiveDate::from_ymd_opt(2026, 8, 3).unwrap();
    let mut group = c.benchmark_group("ptp_lookup");
    for rows in [1usize, 1_000, 1_800_000] {
        let rules = rules_with_ptp(&synthetic_ptp(rows));
        let ptp = rules.ptp();
        // A hit in the middle of the table and a miss.
        let hit = (
            format!("{}", 10000 + (rows / 2) / 2000),
            format!("{}", 20000 + (rows / 2) % 2000 + 1),
        );
        group.bench_with_input(BenchmarkId::new("hit", rows), &rows, |b, _| {
            b.iter(|| black_box(ptp.edit(black_box(&hit.0), black_box(&hit.1), date)))
        });
        group.bench_with_input(BenchmarkId::new("miss", rows), &rows, |b, _| {
            b.iter(|| black_box(ptp.edit(black_box("97140"), black_box("97530"), date)))
        });
    }
    group.finish();
}

criterion_group!(benches, ptp_load, ptp_lookup);
criterion_main!(benches);
