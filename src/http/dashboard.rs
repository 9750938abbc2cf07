//! `/dashboard`: one self-contained page (no external scripts, styles or fonts) for a team
//! without Grafana, and `/dashboard/data`, the small JSON document it refreshes itself from.
//! Rates come from the totals sampled every few seconds ([`Metrics::sample`]); latency
//! percentiles are read off the histogram buckets as Prometheus's `histogram_quantile` does.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::core::data::RuleSet;
use crate::core::reason::ReasonCode;
use crate::telemetry::metrics::{LatencyCounts, Metrics, Sample, Totals};

pub const PAGE: &str = include_str!("dashboard.html");

/// The window rates and window percentiles are computed over.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Rows shown in the top-reasons table.
const TOP_REASONS: usize = 10;

#[derive(Debug, Serialize)]
pub struct DashboardData {
    pub ruleset_version: String,
    /// Seconds the window rates cover; null until a sample is old enough to compare with.
    pub window_seconds: Option<f64>,
    pub totals: EncounterTotals,
    pub rejection_rate: Ratio,
    pub encounters: Vec<EncounterRow>,
    pub top_reasons: Vec<ReasonRow>,
    pub rejections_by_payer_kind: Vec<PayerRow>,
    pub latency: Vec<LatencyRow>,
    pub nats: NatsRow,
    pub history: Vec<HistoryPoint>,
}

#[derive(Debug, Serialize)]
pub struct EncounterTotals {
    pub encounters: u64,
    pub validated: u64,
    pub rejected: u64,
    pub per_second: Option<f64>,
}

/// Rejected over judged, in the window and since start; null with nothing judged.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub window: Option<f64>,
    pub overall: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct EncounterRow {
    pub source: &'static str,
    pub status: &'static str,
    pub total: u64,
    pub per_second: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ReasonRow {
    pub code: String,
    pub carc: String,
    pub total: u64,
    pub in_window: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct PayerRow {
    pub payer_kind: &'static str,
    pub total: u64,
    pub in_window: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct LatencyRow {
    /// `all`, `grpc` or `nats`.
    pub source: &'static str,
    pub p50_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
    pub observations: u64,
    /// `window` when the window holds observations, else `since start`.
    pub scope: &'static str,
}

#[derive(Debug, Serialize)]
pub struct NatsRow {
    pub consumer_pending: u64,
    pub redeliveries_total: u64,
    pub dead_letters_total: u64,
}

#[derive(Debug, Serialize)]
pub struct HistoryPoint {
    pub seconds_ago: f64,
    pub encounters_per_second: f64,
    pub rejected_per_second: f64,
}

/// The `q` quantile of bucketed observations, interpolated linearly inside the bucket that
/// holds it (as Prometheus's `histogram_quantile`); the top finite bound when it lies above.
pub fn quantile(q: f64, bounds: &[f64], per_bucket: &[u64]) -> Option<f64> {
    let total: u64 = per_bucket.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (index, &count) in per_bucket.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let Some(&upper) = bounds.get(index) else {
                return bounds.last().copied();
            };
            let lower = if index == 0 { 0.0 } else { bounds[index - 1] };
            return Some(lower + (upper - lower) * (rank - below as f64) / count as f64);
        }
        below += count;
    }
    bounds.last().copied()
}

fn encounters(totals: &Totals, status: Option<&str>) -> u64 {
    totals
        .encounters
        .iter()
        .filter(|((_, s), _)| status.is_none_or(|wanted| *s == wanted))
        .map(|(_, n)| n)
        .sum()
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Error reasons summed over payer kinds (or codes) by `key`.
fn error_reasons<K: Ord>(
    totals: &Totals,
    key: impl Fn(&str, &'static str) -> K,
) -> BTreeMap<K, u64> {
    let mut sums = BTreeMap::new();
    for ((code, severity, payer_kind), n) in &totals.reasons {
        if *severity == "error" {
            *sums.entry(key(code, payer_kind)).or_default() += n;
        }
    }
    sums
}

fn latency_delta(now: &LatencyCounts, then: Option<&LatencyCounts>) -> Vec<u64> {
    now.per_bucket
        .iter()
        .enumerate()
        .map(|(i, n)| {
            n.saturating_sub(then.and_then(|t| t.per_bucket.get(i)).copied().unwrap_or(0))
        })
        .collect()
}

fn latency_row(
    source: &'static str,
    bounds: &[f64],
    now: &LatencyCounts,
    then: Option<&LatencyCounts>,
) -> LatencyRow {
    let window = latency_delta(now, then);
    let in_window: u64 = window.iter().sum();
    let (buckets, scope) = if in_window > 0 {
        (window, "window")
    } else {
        (now.per_bucket.clone(), "since start")
    };
    LatencyRow {
        source,
        p50_seconds: quantile(0.5, bounds, &buckets),
        p99_seconds: quantile(0.99, bounds, &buckets),
        observations: buckets.iter().sum(),
        scope,
    }
}

fn merged_latency(totals: &Totals, bounds: &[f64]) -> LatencyCounts {
    let mut all = LatencyCounts {
        per_bucket: vec![0; bounds.len() + 1],
        ..LatencyCounts::default()
    };
    for counts in totals.latency.values() {
        for (sum, n) in all.per_bucket.iter_mut().zip(&counts.per_bucket) {
            *sum += n;
        }
        all.count += counts.count;
        all.sum_seconds += counts.sum_seconds;
    }
    all
}

/// The dashboard's view of the metrics at `now`.
pub fn data(metrics: &Metrics, rules: &RuleSet, now: Instant) -> DashboardData {
    let current = metrics.totals();
    let history = metrics.history();
    let bounds = metrics.latency_bounds();
    // The oldest sample inside the window is the baseline of every window figure.
    let baseline: Option<&Sample> = history
        .iter()
        .find(|s| now.duration_since(s.at) <= RATE_WINDOW)
        .filter(|s| now.duration_since(s.at) >= Duration::from_secs(1));
    let window_seconds = baseline.map(|s| now.duration_since(s.at).as_secs_f64());
    let then = baseline.map(|s| &s.totals);
    let per_second = |now_n: u64, then_n: Option<u64>| {
        window_seconds.map(|w| now_n.saturating_sub(then_n.unwrap_or(0)) as f64 / w)
    };

    let all_now = encounters(&current, None);
    let rejected_now = encounters(&current, Some("rejected"));
    let all_then = then.map(|t| encounters(t, None));
    let rejected_then = then.map(|t| encounters(t, Some("rejected")));

    let carc = |code: &str| {
        ReasonCode::parse(code)
            .map(|c| rules.catalogue().entry(c).carc.clone())
            .unwrap_or_default()
    };
    let reasons_then = then.map(|t| error_reasons(t, |code, _| code.to_owned()));
    let mut top_reasons: Vec<ReasonRow> = error_reasons(&current, |code, _| code.to_owned())
        .into_iter()
        .map(|(code, total)| ReasonRow {
            carc: carc(&code),
            in_window: reasons_then
                .as_ref()
                .map(|t| total.saturating_sub(t.get(&code).copied().unwrap_or(0))),
            code,
            total,
        })
        .collect();
    top_reasons.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.code.cmp(&b.code)));
    top_reasons.truncate(TOP_REASONS);

    let payers_then = then.map(|t| error_reasons(t, |_, kind| kind));
    let rejections_by_payer_kind = error_reasons(&current, |_, kind| kind)
        .into_iter()
        .map(|(payer_kind, total)| PayerRow {
            payer_kind,
            total,
            in_window: payers_then
                .as_ref()
                .map(|t| total.saturating_sub(t.get(payer_kind).copied().unwrap_or(0))),
        })
        .collect();

    let mut latency = vec![latency_row(
        "all",
        bounds,
        &merged_latency(&current, bounds),
        then.map(|t| merged_latency(t, bounds)).as_ref(),
    )];
    for (source, counts) in &current.latency {
        latency.push(latency_row(
            source,
            bounds,
            counts,
            then.and_then(|t| t.latency.get(source)),
        ));
    }

    let history = history
        .windows(2)
        .filter_map(|pair| {
            let seconds = pair[1].at.duration_since(pair[0].at).as_secs_f64();
            (seconds > 0.0).then(|| HistoryPoint {
                seconds_ago: now.duration_since(pair[1].at).as_secs_f64(),
                encounters_per_second: encounters(&pair[1].totals, None)
                    .saturating_sub(encounters(&pair[0].totals, None))
                    as f64
                    / seconds,
                rejected_per_second: encounters(&pair[1].totals, Some("rejected"))
                    .saturating_sub(encounters(&pair[0].totals, Some("rejected")))
                    as f64
                    / seconds,
            })
        })
        .collect();

    DashboardData {
        ruleset_version: rules.version(),
        window_seconds,
        totals: EncounterTotals {
            encounters: all_now,
            validated: encounters(&current, Some("validated")),
            rejected: rejected_now,
            per_second: per_second(all_now, all_then),
        },
        rejection_rate: Ratio {
            window: all_then.and_then(|a| {
                ratio(
                    rejected_now.saturating_sub(rejected_then.unwrap_or(0)),
                    all_now.saturating_sub(a),
                )
            }),
            overall: ratio(rejected_now, all_now),
        },
        encounters: current
            .encounters
            .iter()
            .map(|(&(source, status), &total)| EncounterRow {
                source,
                status,
                total,
                per_second: per_second(
                    total,
                    then.map(|t| t.encounters.get(&(source, status)).copied().unwrap_or(0)),
                ),
            })
            .collect(),
        top_reasons,
        rejections_by_payer_kind,
        latency,
        nats: NatsRow {
            consumer_pending: current.consumer_pending,
            redeliveries_total: current.redeliveries,
            dead_letters_total: current.dead_letters,
        },
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1 as pb;
    use crate::telemetry::metrics::latency_bounds;

    #[test]
    fn quantiles_interpolate_inside_the_bucket_like_histogram_quantile() {
        let bounds = [1.0, 2.0, 4.0];
        // (q, observations per bucket incl. +Inf, expected)
        let cases: &[(f64, &[u64], Option<f64>)] = &[
            (0.5, &[0, 0, 0, 0], None),
            (0.5, &[10, 0, 0, 0], Some(0.5)),
            (0.5, &[0, 10, 0, 0], Some(1.5)),
            (0.99, &[50, 50, 0, 0], Some(1.98)),
            (0.5, &[2, 2, 0, 0], Some(1.0)),
            // Above the last bound: the last bound, as histogram_quantile answers.
            (0.99, &[0, 0, 0, 5], Some(4.0)),
        ];
        for (q, buckets, expected) in cases {
            let got = quantile(*q, &bounds, buckets);
            match (got, expected) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{q} {buckets:?}: {g}"),
                _ => assert_eq!(got, *expected, "{q} {buckets:?}"),
            }
        }
    }

    fn judged(metrics: &Metrics, source: &'static str, rejected: bool, micros: u64) {
        let encounter = pb::Encounter {
            payer: Some(pb::Payer {
                kind: pb::PayerKind::Commercial as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let outcome = pb::Outcome {
            status: if rejected {
                pb::Status::Rejected
            } else {
                pb::Status::Validated
            } as i32,
            reasons: if rejected {
                vec![pb::Reason {
                    code: "NPI_INVALID".into(),
                    severity: pb::Severity::Error as i32,
                    ..Default::default()
                }]
            } else {
                vec![]
            },
            ..Default::default()
        };
        metrics.record(source, &encounter, &outcome, Duration::from_micros(micros));
    }

    #[test]
    fn window_figures_compare_with_the_oldest_sample_in_the_window() {
        let metrics = Metrics::new();
        let rules = crate::core::test_support::rules();
        let start = Instant::now();
        judged(&metrics, "grpc", false, 30);
        metrics.sample(start);
        // Before any sample is a second old there are totals but no rates.
        let young = data(&metrics, rules, start);
        assert_eq!(young.window_seconds, None);
        assert_eq!(young.totals.encounters, 1);
        assert_eq!(young.totals.per_second, None);

        for _ in 0..3 {
            judged(&metrics, "nats", true, 3_000);
        }
        judged(&metrics, "grpc", false, 30);
        let later = data(&metrics, rules, start + Duration::from_secs(10));
        assert_eq!(later.window_seconds, Some(10.0));
        assert_eq!(
            (
                later.totals.encounters,
                later.totals.validated,
                later.totals.rejected
            ),
            (5, 2, 3)
        );
        assert_eq!(later.totals.per_second, Some(0.4));
        assert_eq!(later.rejection_rate.window, Some(0.75));
        assert_eq!(later.rejection_rate.overall, Some(0.6));
        let reason = &later.top_reasons[0];
        assert_eq!(
            (reason.code.as_str(), reason.total, reason.in_window),
            ("NPI_INVALID", 3, Some(3))
        );
        let expected_carc = &rules
            .catalogue()
            .entry(ReasonCode::parse("NPI_INVALID").unwrap())
            .carc;
        assert_eq!(&reason.carc, expected_carc);
        assert_eq!(later.rejections_by_payer_kind[0].payer_kind, "commercial");
        assert_eq!(later.rejections_by_payer_kind[0].total, 3);
        // Window latency: one grpc at 30 µs and three nats at 3 ms; the median falls in the
        // nats observations' bucket (2.56–5.12 ms).
        let all = &later.latency[0];
        assert_eq!(
            (all.source, all.observations, all.scope),
            ("all", 4, "window")
        );
        let p50 = all.p50_seconds.unwrap();
        assert!(p50 > 0.00256 && p50 <= 0.00512, "{p50}");
        assert!(latency_bounds().len() + 1 == metrics.totals().latency["grpc"].per_bucket.len());
    }
}
