//! The NATS pipeline against real `nats-server` processes (JetStream, free ports, temporary
//! stores) and the real `claimlint` binary, including SIGKILL of either and a 3-node cluster.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use claimlint::proto::v1 as pb;
use futures_util::StreamExt;
use support::*;

const TEN_THOUSAND: usize = 10_000;

/// These tests start processes and push 10,000 messages each: one at a time on 2 cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What most tests here start with: the lock that runs them one at a time (keep it to the end
/// of the test: bind it to a name, not `_`), a fresh nats-server, claimlint on it with the
/// default flags, and a JetStream context.
async fn start_pipeline() -> (
    tokio::sync::MutexGuard<'static, ()>,
    NatsServer,
    ClaimlintProcess,
    jetstream::Context,
) {
    let serial = SERIAL.lock().await;
    let nats = NatsServer::start();
    let claimlint = start_claimlint(&nats.url(), &[]);
    let js = connect(&nats.url()).await;
    (serial, nats, claimlint, js)
}

fn start_claimlint(url: &str, extra: &[&str]) -> ClaimlintProcess {
    let mut flags = pipeline_flags(url);
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    ClaimlintProcess::start(&flags)
}

/// Encounter `i`: its own patient; every fourth one is rejected (bad NPI).
fn encounter(i: usize) -> pb::Encounter {
    let mut encounter = recent_seed_visit();
    encounter.encounter_id = format!("e-{i}");
    encounter.patient_id = format!("p-{i}");
    if i.is_multiple_of(4) {
        encounter.rendering_provider.as_mut().unwrap().npi = "1234567890".into();
    }
    encounter
}

/// Each expected encounter has exactly one outcome, on the subject of its status.
async fn assert_exactly_once(js: &jetstream::Context, expected: impl Iterator<Item = usize>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for message in read_stream(js, "CLAIMS").await {
        let outcome: pb::Outcome = serde_json::from_slice(&message.payload).unwrap();
        let subject = if outcome.status == pb::Status::Validated as i32 {
            "claims.validated"
        } else {
            "claims.rejected"
        };
        assert_eq!(
            message.subject.as_str(),
            subject,
            "{}",
            outcome.encounter_id
        );
        let headers = message.headers.as_ref().unwrap();
        assert_eq!(
            headers.get("Nats-Msg-Id").unwrap().as_str(),
            format!("{}:{}", outcome.encounter_id, outcome.content_hash)
        );
        *seen.entry(outcome.encounter_id).or_default() += 1;
    }
    let mut expected_count = 0;
    for i in expected {
        expected_count += 1;
        assert_eq!(seen.get(&format!("e-{i}")), Some(&1), "encounter e-{i}");
    }
    assert_eq!(
        seen.len(),
        expected_count,
        "no outcome for an encounter that was not sent"
    );
}

async fn consumer_drained(js: &jetstream::Context) {
    wait_until(Duration::from_secs(30), || async {
        // A JetStream API request can time out while a cluster elects new leaders after losing
        // a node: ask again until the deadline.
        let Ok(stream) = js.get_stream("ENCOUNTERS").await else {
            return false;
        };
        let Ok(info) = stream.consumer_info("claimlint").await else {
            return false;
        };
        info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_encounters_give_exactly_ten_thousand_outcomes() {
    let (_serial, _nats, _claimlint, js) = start_pipeline().await;
    publish(&js, (0..TEN_THOUSAND).map(encounter)).await;
    wait_for_outcomes(&js, TEN_THOUSAND as u64, Duration::from_secs(240)).await;
    consumer_drained(&js).await;
    assert_exactly_once(&js, 0..TEN_THOUSAND).await;
    assert_eq!(stream_count(&js, "ENCOUNTERS_DEAD").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republished_encounters_dedupe_and_changed_content_does_not() {
    let (_serial, _nats, claimlint, js) = start_pipeline().await;
    let first = encounter(1);
    publish(&js, vec![first.clone(), first.clone(), first.clone()]).await;
    wait_for_outcomes(&js, 1, Duration::from_secs(30)).await;
    // All three processed, not just the first.
    consumer_drained(&js).await;
    assert_eq!(
        stream_count(&js, "CLAIMS").await,
        1,
        "three publishes, one outcome"
    );

    let mut changed = first.clone();
    changed.total_treatment_minutes += 5;
    publish(&js, vec![changed]).await;
    wait_for_outcomes(&js, 2, Duration::from_secs(30)).await;

    // Another encounter for the same patient, date and codes is a duplicate service (CO-18);
    // the first encounter again is not a duplicate of itself.
    let mut other = first.clone();
    other.encounter_id = "e-other".into();
    publish(&js, vec![other]).await;
    wait_for_outcomes(&js, 3, Duration::from_secs(30)).await;
    let outcomes: Vec<pb::Outcome> = read_stream(&js, "CLAIMS")
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    let duplicate = outcomes
        .iter()
        .find(|o| o.encounter_id == "e-other")
        .unwrap();
    assert_eq!(duplicate.status, pb::Status::Rejected as i32);
    let reason = duplicate
        .reasons
        .iter()
        .find(|r| r.code == "DUPLICATE_SERVICE")
        .expect("DUPLICATE_SERVICE");
    assert_eq!(
        (reason.carc.as_str(), reason.actual.as_str()),
        ("CO-18", "also in encounter e-1")
    );
    assert!(
        outcomes
            .iter()
            .filter(|o| o.encounter_id == "e-1")
            .all(|o| o.status == pb::Status::Validated as i32)
    );

    // gRPC Validate publishes through the same path; dry_run does not.
    let client = claimlint::proto::v1::claim_validator_client::ClaimValidatorClient::connect(
        format!("http://{}", claimlint.grpc_addr),
    )
    .await
    .unwrap();
    let validate = |visit: pb::Encounter, dry_run: bool| {
        let request = pb::ValidateRequest {
            encounter: Some(visit),
            dry_run,
        };
        let mut client = client.clone();
        async move {
            client
                .validate(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert!(validate(encounter(7), false).await.unwrap().published);
    assert_eq!(stream_count(&js, "CLAIMS").await, 4);
    assert!(!validate(encounter(8), true).await.unwrap().published);
    assert_eq!(stream_count(&js, "CLAIMS").await, 4);

    // An encounter_id with a line break cannot go into the outcome's Nats-Msg-Id header: the
    // call is refused, and the connection and the service keep working.
    let mut broken = encounter(9);
    broken.encounter_id = "e-9\nX-Injected: 1".into();
    let status = validate(broken, false).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("control character"), "{status:?}");
    assert!(validate(encounter(10), false).await.unwrap().published);
    assert_eq!(stream_count(&js, "CLAIMS").await, 5);
}

/// The seed visit of patient `p-day` with only the lines of `codes`, as encounter `id`.
fn day_visit(id: &str, codes: &[&str]) -> pb::Encounter {
    let mut visit = recent_seed_visit();
    visit.encounter_id = id.into();
    visit.patient_id = "p-day".into();
    visit
        .service_lines
        .retain(|line| codes.contains(&line.procedure_code.as_str()));
    visit
}

/// `(line index, other encounter)` of each prior service a lookup found.
fn prior_of(lookup: &claimlint::nats::Lookup) -> Vec<(usize, String)> {
    lookup
        .prior
        .iter()
        .map(|p| (p.line_index, p.other_encounter_id.clone()))
        .collect()
}

/// The bucket's layout marker, as text.
async fn layout_marker(bucket: &jetstream::kv::Store) -> Option<String> {
    let value = bucket.get(claimlint::nats::LAYOUT_KEY).await.unwrap()?;
    Some(String::from_utf8(value.to_vec()).unwrap())
}

async fn services_bucket(js: &jetstream::Context) -> jetstream::kv::Store {
    js.create_key_value(jetstream::kv::Config {
        bucket: "CLAIMLINT_SERVICES".into(),
        history: 1,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// What a claim found: the claim, or `None` for a conflict (judge again).
async fn claim(
    store: &claimlint::nats::ServiceStore,
    encounter_id: &str,
    lookup: claimlint::nats::Lookup,
) -> Option<claimlint::nats::Claimed> {
    match store.claim(encounter_id, lookup).await.unwrap() {
        claimlint::nats::Claim::Claimed(claimed) => Some(claimed),
        claimlint::nats::Claim::Conflict => None,
    }
}

/// One patient-day entry: encounters racing on it each read, then claim. The loser of the
/// compare-and-set re-reads: it merges when the winner claimed other codes, and its judgement
/// is out of date (a conflict) when the winner claimed one of its codes. A claim given back
/// takes back only what it added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_day_claims_merge_other_codes_and_conflict_on_the_same_code() {
    use claimlint::nats::{Layout, ServiceStore};
    let _serial = SERIAL.lock().await;
    let nats = NatsServer::start();
    let js = connect(&nats.url()).await;
    let bucket = services_bucket(&js).await;
    let one = ServiceStore::open(bucket.clone()).await.unwrap();
    let two = ServiceStore::open(bucket.clone()).await.unwrap();
    assert_eq!(
        (one.layout(), two.layout()),
        (Layout::PatientDay, Layout::PatientDay)
    );
    assert_eq!(
        layout_marker(&bucket).await.as_deref(),
        Some(claimlint::nats::PATIENT_DAY_LAYOUT)
    );

    // Both read an absent entry; both create; the second finds it exists and merges.
    let (a, b) = (day_visit("a", &["97140"]), day_visit("b", &["97124"]));
    let (lookup_a, lookup_b) = (one.lookup(&a).await.unwrap(), two.lookup(&b).await.unwrap());
    assert!(lookup_a.prior.is_empty() && lookup_b.prior.is_empty());
    assert!(claim(&one, "a", lookup_a).await.unwrap().added_anything());
    assert!(claim(&two, "b", lookup_b).await.unwrap().added_anything());
    let both = day_visit("c", &["97140", "97124"]);
    let lookup = one.lookup(&both).await.unwrap();
    assert_eq!(prior_of(&lookup), [(0, "a".into()), (1, "b".into())]);

    // Both read revision r of the entry, and both would claim 97110: the first keeps it, the
    // second's judgement (no prior service on its line 0) is out of date.
    let mut c = day_visit("c", &["97140", "97124"]);
    c.service_lines[0].procedure_code = "97110".into();
    let mut d = c.clone();
    d.encounter_id = "d".into();
    d.service_lines[1].procedure_code = "97530".into();
    let (lookup_c, lookup_d) = (one.lookup(&c).await.unwrap(), two.lookup(&d).await.unwrap());
    assert_eq!(prior_of(&lookup_c), [(1, "b".into())]);
    assert!(prior_of(&lookup_d).is_empty());
    assert!(claim(&one, "c", lookup_c).await.is_some());
    assert!(claim(&two, "d", lookup_d).await.is_none(), "a conflict");
    // Judged again, d finds c's claim on its line 0.
    assert_eq!(prior_of(&two.lookup(&d).await.unwrap()), [(0, "c".into())]);
    let mut all = day_visit("e", &["97140", "97124"]);
    let mut extra = all.service_lines[0].clone();
    extra.procedure_code = "97110".into();
    all.service_lines.push(extra.clone());
    extra.procedure_code = "97530".into();
    all.service_lines.push(extra);
    let lookup = two.lookup(&all).await.unwrap();
    assert_eq!(
        prior_of(&lookup),
        [(0, "a".into()), (1, "b".into()), (2, "c".into())],
        "97530 was not claimed"
    );

    // The same encounter claiming again (a redelivery) adds nothing. A claim given back
    // removes only what it added: e's 97530, not a's 97140 that it also billed.
    let again = claim(&one, "c", one.lookup(&c).await.unwrap())
        .await
        .unwrap();
    assert!(!again.added_anything());
    let e = claim(&one, "e", lookup).await.unwrap();
    assert!(e.added_anything());
    assert_eq!(prior_of(&one.lookup(&all).await.unwrap()).len(), 4);
    one.release(e).await.unwrap();
    assert_eq!(
        prior_of(&one.lookup(&all).await.unwrap()),
        [(0, "a".into()), (1, "b".into()), (2, "c".into())]
    );

    // Another day of the same patient is another entry.
    let mut next_day = day_visit("f", &["97140"]);
    next_day.date_of_service = "2020-01-02".into();
    assert!(one.lookup(&next_day).await.unwrap().prior.is_empty());

    // A lost marker beside patient-day entries: the entries decide, and the marker returns.
    bucket.purge(claimlint::nats::LAYOUT_KEY).await.unwrap();
    let reopened = ServiceStore::open(bucket.clone()).await.unwrap();
    assert_eq!(reopened.layout(), Layout::PatientDay);
    assert_eq!(
        layout_marker(&bucket).await.as_deref(),
        Some(claimlint::nats::PATIENT_DAY_LAYOUT)
    );
    assert_eq!(prior_of(&reopened.lookup(&both).await.unwrap()).len(), 2);
}

/// The outcomes in CLAIMS, by encounter.
async fn outcomes_by_encounter(js: &jetstream::Context) -> HashMap<String, pb::Outcome> {
    read_stream(js, "CLAIMS")
        .await
        .iter()
        .map(|m| serde_json::from_slice::<pb::Outcome>(&m.payload).unwrap())
        .map(|o| (o.encounter_id.clone(), o))
        .collect()
}

/// The DUPLICATE_SERVICE reasons' `actual` of an outcome, with its status.
fn duplicate_of(outcome: &pb::Outcome) -> (bool, Vec<&str>) {
    let validated = outcome.status == pb::Status::Validated as i32;
    let others = outcome
        .reasons
        .iter()
        .filter(|r| r.code == "DUPLICATE_SERVICE")
        .map(|r| r.actual.as_str())
        .collect();
    (validated, others)
}

/// A burst with duplicates in it (an EMR sending a day's notes twice under two encounter ids):
/// both copies are judged at the same moment by concurrent tasks, yet in each pair exactly one
/// is validated and the other is a DUPLICATE_SERVICE of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_published_together_are_caught() {
    const PAIRS: usize = 200;
    let (_serial, _nats, _claimlint, js) = start_pipeline().await;
    // One template: a test crossing midnight would otherwise date the copies differently.
    let template = recent_seed_visit();
    let mut visits = Vec::with_capacity(2 * PAIRS);
    for pair in 0..PAIRS {
        for copy in ["a", "b"] {
            let mut visit = template.clone();
            visit.encounter_id = format!("pair-{pair}-{copy}");
            visit.patient_id = format!("p-{pair}");
            visits.push(visit);
        }
    }
    publish(&js, visits).await;
    wait_for_outcomes(&js, 2 * PAIRS as u64, Duration::from_secs(60)).await;
    let outcomes = outcomes_by_encounter(&js).await;
    assert_eq!(outcomes.len(), 2 * PAIRS);
    for pair in 0..PAIRS {
        let (a, b) = (format!("pair-{pair}-a"), format!("pair-{pair}-b"));
        let judged = (duplicate_of(&outcomes[&a]), duplicate_of(&outcomes[&b]));
        let a_first = (true, vec![]) == judged.0;
        let (kept, duplicate, of) = if a_first {
            (&judged.0, &judged.1, &a)
        } else {
            (&judged.1, &judged.0, &b)
        };
        let expected = format!("also in encounter {of}");
        assert_eq!(
            (kept, duplicate),
            (
                &(true, vec![]),
                &(false, vec![expected.as_str(), expected.as_str()])
            ),
            "pair {pair}"
        );
    }
    consumer_drained(&js).await;
}

/// An outcome that JetStream drops as a duplicate of an earlier one gives its claim back.
/// Encounter x is first a DUPLICATE_SERVICE of o (rejected); o's entry is then removed from the
/// store by hand, and x sent again with the same content is judged clean; its outcome has the
/// Nats-Msg-Id of the rejected one, so CLAIMS keeps the rejection, and x must not hold the
/// services: y, with the same codes, is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_dropped_as_a_duplicate_gives_its_claim_back() {
    let (_serial, _nats, _claimlint, js) = start_pipeline().await;
    // One template: the same content each time x is sent, even across midnight.
    let template = recent_seed_visit();
    let visit = |id: &str| {
        let mut visit = template.clone();
        visit.encounter_id = id.into();
        visit.patient_id = "p-dropped".into();
        visit
    };
    publish(&js, vec![visit("o")]).await;
    wait_for_outcomes(&js, 1, Duration::from_secs(30)).await;
    publish(&js, vec![visit("x")]).await;
    wait_for_outcomes(&js, 2, Duration::from_secs(30)).await;
    let outcomes = outcomes_by_encounter(&js).await;
    assert_eq!(duplicate_of(&outcomes["o"]), (true, vec![]));
    assert_eq!(
        duplicate_of(&outcomes["x"]),
        (false, vec!["also in encounter o"; 2])
    );

    let day_key = claimlint::wire::billed_services(&visit("o"))
        .unwrap()
        .day_key;
    let bucket = js.get_key_value("CLAIMLINT_SERVICES").await.unwrap();
    bucket.purge(&day_key).await.unwrap();
    publish(&js, vec![visit("x")]).await;
    consumer_drained(&js).await;
    assert_eq!(
        stream_count(&js, "CLAIMS").await,
        2,
        "x's clean outcome was dropped"
    );
    assert_eq!(
        bucket.get(&day_key).await.unwrap().map(|v| v.to_vec()),
        Some(b"{}".to_vec()),
        "x gave its claim back"
    );

    publish(&js, vec![visit("y")]).await;
    wait_for_outcomes(&js, 3, Duration::from_secs(30)).await;
    assert_eq!(
        duplicate_of(&outcomes_by_encounter(&js).await["y"]),
        (true, vec![])
    );
}

/// A bucket an earlier version filled (per-service keys, no layout marker) keeps its layout:
/// the services it holds are still duplicates, through the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_with_per_service_entries_keeps_its_layout() {
    let _serial = SERIAL.lock().await;
    let nats = NatsServer::start();
    let js = connect(&nats.url()).await;
    let bucket = services_bucket(&js).await;
    let earlier = day_visit("earlier", &["97140", "97124"]);
    for (_, key) in claimlint::wire::service_keys(&earlier) {
        bucket.create(&key, "earlier".into()).await.unwrap();
    }
    let claimlint = start_claimlint(&nats.url(), &[]);
    publish(&js, vec![day_visit("later", &["97124"])]).await;
    wait_for_outcomes(&js, 1, Duration::from_secs(30)).await;
    let outcome: pb::Outcome =
        serde_json::from_slice(&read_stream(&js, "CLAIMS").await[0].payload).unwrap();
    let reason = outcome
        .reasons
        .iter()
        .find(|r| r.code == "DUPLICATE_SERVICE")
        .expect("DUPLICATE_SERVICE from a per-service entry");
    assert_eq!(reason.actual, "also in encounter earlier");
    assert!(
        claimlint
            .logs()
            .iter()
            .any(|line| line.contains(r#""services_layout":"PerService""#)),
        "the layout is logged"
    );
    assert_eq!(
        layout_marker(&bucket).await.as_deref(),
        Some(claimlint::nats::PER_SERVICE_LAYOUT),
        "the decision is marked, so it sticks"
    );

    // A marker this version does not know is refused, not guessed.
    let unknown = js
        .create_key_value(jetstream::kv::Config {
            bucket: "OTHER".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    unknown
        .put(claimlint::nats::LAYOUT_KEY, "patient-week/9".into())
        .await
        .unwrap();
    let error = claimlint::nats::ServiceStore::open(unknown)
        .await
        .err()
        .expect("unknown layout refused");
    assert!(error.to_string().contains("patient-week/9"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_killed_at_twenty_percent_and_restarted_loses_and_repeats_nothing() {
    let (_serial, mut nats, _claimlint, js) = start_pipeline().await;
    publish(&js, (0..TEN_THOUSAND).map(encounter)).await;
    wait_until(Duration::from_secs(120), || async {
        stream_count(&js, "CLAIMS").await >= 2_000
    })
    .await;
    nats.kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.restart();
    let js = connect(&nats.url()).await;
    wait_for_outcomes(&js, TEN_THOUSAND as u64, Duration::from_secs(300)).await;
    consumer_drained(&js).await;
    assert_exactly_once(&js, 0..TEN_THOUSAND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimlint_killed_at_twenty_percent_then_replaced_loses_and_repeats_nothing() {
    let (_serial, nats, mut first, js) = start_pipeline().await;
    publish(&js, (0..TEN_THOUSAND).map(encounter)).await;
    wait_until(Duration::from_secs(120), || async {
        stream_count(&js, "CLAIMS").await >= 2_000
    })
    .await;
    first.kill9();
    let _second = start_claimlint(&nats.url(), &[]);
    wait_for_outcomes(&js, TEN_THOUSAND as u64, Duration::from_secs(300)).await;
    consumer_drained(&js).await;
    assert_exactly_once(&js, 0..TEN_THOUSAND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_consumer_and_one_dies_halfway() {
    let _serial = SERIAL.lock().await;
    let nats = NatsServer::start();
    let mut one = start_claimlint(&nats.url(), &[]);
    let _two = start_claimlint(&nats.url(), &[]);
    let js = connect(&nats.url()).await;
    publish(&js, (0..TEN_THOUSAND).map(encounter)).await;
    wait_until(Duration::from_secs(120), || async {
        stream_count(&js, "CLAIMS").await >= 5_000
    })
    .await;
    one.kill9();
    wait_for_outcomes(&js, TEN_THOUSAND as u64, Duration::from_secs(300)).await;
    consumer_drained(&js).await;
    assert_exactly_once(&js, 0..TEN_THOUSAND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_loses_a_node_mid_stream() {
    let _serial = SERIAL.lock().await;
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let routes = ports
        .iter()
        .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<NatsServer> = ports
        .iter()
        .enumerate()
        .map(|(i, (client, cluster))| {
            NatsServer::start_with(
                *client,
                &[
                    "--server_name".into(),
                    format!("n{i}"),
                    "--cluster_name".into(),
                    "claimlint-test".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{cluster}"),
                    "--routes".into(),
                    routes.clone(),
                ],
            )
        })
        .collect();
    let urls = nodes.iter().map(|n| n.url()).collect::<Vec<_>>().join(",");
    // JetStream needs a meta leader before streams with 3 replicas can be created.
    let js = connect(&urls).await;
    wait_until(Duration::from_secs(60), || async {
        js.query_account().await.is_ok()
    })
    .await;
    let _claimlint = start_claimlint(&urls, &["--nats-replicas", "3"]);
    publish(&js, (0..TEN_THOUSAND).map(encounter)).await;
    wait_until(Duration::from_secs(120), || async {
        stream_count(&js, "CLAIMS").await >= 3_000
    })
    .await;
    nodes[0].kill9();
    wait_for_outcomes(&js, TEN_THOUSAND as u64, Duration::from_secs(300)).await;
    consumer_drained(&js).await;
    assert_exactly_once(&js, 0..TEN_THOUSAND).await;
    let claims = until_ok("looking up CLAIMS", Duration::from_secs(30), || {
        js.get_stream("CLAIMS")
    })
    .await;
    assert_eq!(claims.cached_info().config.num_replicas, 3);
}

/// Thirty kinds of payload that are not an encounter: each is dead-lettered with its original
/// bytes, headers and a reason, and the service stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_go_to_the_dead_letter_stream() {
    use prost::Message as _;
    let (_serial, _nats, claimlint, js) = start_pipeline().await;
    let seed = serde_json::to_value(encounter(1)).unwrap();
    let with = |pointer: &str, value: serde_json::Value| {
        let mut doc = seed.clone();
        *doc.pointer_mut(pointer).unwrap() = value;
        doc.to_string().into_bytes()
    };
    let without = |key: &str| {
        let mut doc = seed.clone();
        doc.as_object_mut().unwrap().remove(key);
        doc.to_string().into_bytes()
    };
    let json_text = seed.to_string();
    let protobuf_bytes = encounter(2).encode_to_vec();
    let json: Vec<(&str, Vec<u8>)> = vec![
        ("garbage bytes", vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]),
        ("empty payload", Vec::new()),
        ("whitespace", b"   \n\t ".to_vec()),
        (
            "truncated JSON",
            json_text.as_bytes()[..json_text.len() / 2].to_vec(),
        ),
        ("JSON null", b"null".to_vec()),
        ("JSON number", b"42".to_vec()),
        ("JSON string", b"\"encounter\"".to_vec()),
        (
            "JSON array of encounters",
            format!("[{json_text}]").into_bytes(),
        ),
        ("empty object", b"{}".to_vec()),
        ("missing encounter_id", without("encounterId")),
        (
            "line break in encounter_id",
            with("/encounterId", "e-1\nX-Injected: 1".into()),
        ),
        ("more service lines than a claim carries", {
            let line = seed.pointer("/serviceLines/0").unwrap().clone();
            with("/serviceLines", serde_json::Value::Array(vec![line; 2_000]))
        }),
        ("blank encounter_id", with("/encounterId", " ".into())),
        ("encounter_id a number", with("/encounterId", 17.into())),
        (
            "encounter_id an object",
            with("/encounterId", serde_json::json!({"id": "x"})),
        ),
        ("units negative", with("/serviceLines/0/units", (-1).into())),
        (
            "units a string of letters",
            with("/serviceLines/0/units", "two".into()),
        ),
        (
            "minutes a float",
            with("/serviceLines/0/minutes", 12.5.into()),
        ),
        (
            "serviceLines an object",
            with(
                "/serviceLines",
                serde_json::json!({"procedureCode": "97124"}),
            ),
        ),
        (
            "unknown enum name",
            with("/payer/kind", "PAYER_KIND_BARTER".into()),
        ),
        (
            "diagnosisCodes a string",
            with("/diagnosisCodes", "M54.50".into()),
        ),
        (
            "chargeCents not a number",
            with("/serviceLines/0/chargeCents", "a lot".into()),
        ),
        (
            "oversized encounter_id",
            with("/encounterId", "x".repeat(10_000).into()),
        ),
        (
            "oversized patient_id",
            with("/patientId", "p".repeat(100_000).into()),
        ),
        (
            "oversized procedure code",
            with("/serviceLines/0/procedureCode", "9".repeat(5_000).into()),
        ),
        ("protobuf sent as JSON", protobuf_bytes.clone()),
        ("invalid UTF-8 in JSON", {
            let mut b = json_text.clone().into_bytes();
            b[10] = 0xff;
            b
        }),
        (
            "trailing garbage",
            format!("{json_text} trailing").into_bytes(),
        ),
        (
            "two documents",
            format!("{json_text}{json_text}").into_bytes(),
        ),
    ];
    let protobuf: Vec<(&str, Vec<u8>)> = vec![
        ("JSON sent as protobuf", json_text.clone().into_bytes()),
        (
            "truncated protobuf",
            protobuf_bytes[..protobuf_bytes.len() - 7].to_vec(),
        ),
        (
            "protobuf without encounter_id",
            pb::Encounter {
                patient_id: "p".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ];
    assert_eq!(json.len() + protobuf.len(), 32);
    let mut messages = Vec::new();
    for (kind, payload) in &json {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Content-Type", "application/json");
        headers.insert("X-Test-Kind", *kind);
        messages.push((headers, payload.clone()));
    }
    for (kind, payload) in &protobuf {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Content-Type", "application/protobuf");
        headers.insert("X-Test-Kind", *kind);
        messages.push((headers, payload.clone()));
    }
    // A bad message with the producer's own JetStream headers: sent again as they are, they
    // would make JetStream refuse the dead letter (its stream is not ENCOUNTERS).
    let mut steering = async_nats::HeaderMap::new();
    steering.insert("Content-Type", "application/json");
    steering.insert("X-Test-Kind", "with the producer's JetStream headers");
    steering.insert("Nats-Expected-Stream", "ENCOUNTERS");
    steering.insert("Nats-Msg-Id", "producer-7");
    messages.push((steering, b"not an encounter".to_vec()));
    // One good encounter after them: the service keeps working.
    publish_raw(&js, messages.clone()).await;
    publish(&js, vec![encounter(3)]).await;
    wait_until(Duration::from_secs(60), || async {
        stream_count(&js, "ENCOUNTERS_DEAD").await == 33
    })
    .await;
    wait_for_outcomes(&js, 1, Duration::from_secs(30)).await;
    let dead = read_stream(&js, "ENCOUNTERS_DEAD").await;
    for (headers, payload) in &messages {
        let kind = headers.get("X-Test-Kind").unwrap().as_str();
        let letter = dead
            .iter()
            .find(|m| {
                m.headers
                    .as_ref()
                    .unwrap()
                    .get("X-Test-Kind")
                    .unwrap()
                    .as_str()
                    == kind
            })
            .unwrap_or_else(|| panic!("{kind} was not dead-lettered"));
        assert_eq!(
            letter.payload.as_ref(),
            payload.as_slice(),
            "{kind}: original bytes"
        );
        let reason = letter
            .headers
            .as_ref()
            .unwrap()
            .get("Claimlint-Error")
            .unwrap()
            .as_str();
        assert!(!reason.is_empty(), "{kind}: a reason");
        assert_eq!(
            letter
                .headers
                .as_ref()
                .unwrap()
                .get("Content-Type")
                .unwrap()
                .as_str(),
            headers.get("Content-Type").unwrap().as_str()
        );
        // The producer's JetStream headers are kept under another name.
        for name in ["Nats-Expected-Stream", "Nats-Msg-Id"] {
            let kept = letter
                .headers
                .as_ref()
                .unwrap()
                .get(format!("Claimlint-Original-{name}").as_str())
                .map(|v| v.as_str().to_owned());
            assert_eq!(
                kept.as_deref(),
                headers.get(name).map(|v| v.as_str()),
                "{kind}: {name}"
            );
        }
    }
    let (status, body) = http_get(claimlint.http_addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let (_, metrics) = http_get(claimlint.http_addr, "/metrics").await;
    assert!(
        metrics.contains("claimlint_dead_letters_total 33"),
        "{metrics}"
    );
    consumer_drained(&js).await;
}

/// Readiness follows the NATS connection (contract §5: `/readyz` is "NATS connected"): when it
/// is lost, `/readyz` answers 503 and gRPC health NOT_SERVING; when the client has reconnected,
/// both are ready again and the pipeline works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_nats_connection() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let _serial = SERIAL.lock().await;
    let mut nats = NatsServer::start();
    let claimlint = start_claimlint(&nats.url(), &[]);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", claimlint.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel);
    let health_is = |expected: ServingStatus| {
        let mut health = health.clone();
        async move {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "claimlint.v1.ClaimValidator".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            status == expected as i32
        }
    };
    let readyz_is = |expected: u16, says: &'static str| async move {
        let (status, body) = http_get(claimlint.http_addr, "/readyz").await;
        status == expected && body.contains(says)
    };
    wait_until(Duration::from_secs(30), || readyz_is(200, "ready")).await;
    wait_until(Duration::from_secs(5), || health_is(ServingStatus::Serving)).await;

    nats.kill9();
    wait_until(Duration::from_secs(30), || {
        readyz_is(503, "NATS connection lost")
    })
    .await;
    wait_until(Duration::from_secs(5), || {
        health_is(ServingStatus::NotServing)
    })
    .await;

    nats.restart();
    wait_until(Duration::from_secs(60), || readyz_is(200, "ready")).await;
    wait_until(Duration::from_secs(5), || health_is(ServingStatus::Serving)).await;
    let js = connect(&nats.url()).await;
    publish(&js, (0..10).map(encounter)).await;
    wait_for_outcomes(&js, 10, Duration::from_secs(60)).await;
}

/// `claimlint publish` (the real binary): JSON by default, protobuf with `--protobuf`, each
/// stored by JetStream before it reports; an unreadable file is named and exits 2 while the
/// readable ones are still published. claimlint judges what it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimlint_publish_sends_json_and_protobuf() {
    let (_serial, nats, _claimlint, js) = start_pipeline().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let two = write(
        "two.json",
        serde_json::to_string(&[encounter(101), encounter(102)]).unwrap(),
    );
    let one = write("one.json", serde_json::to_string(&encounter(103)).unwrap());
    let broken = write("broken.json", "{\"encounterId\": ".to_owned());
    // The stream exists once claimlint has set up.
    wait_until(Duration::from_secs(30), || async {
        js.get_stream("ENCOUNTERS").await.is_ok()
    })
    .await;
    // A copy of each input as published, to see its form (the stream is a work queue).
    let mut inputs = js
        .client()
        .subscribe(claimlint::nats::INPUT_SUBJECT)
        .await
        .unwrap();
    js.client().flush().await.unwrap();
    let publish_cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_claimlint"))
            .arg("publish")
            .args(["--nats", &nats.url()])
            .args(args)
            .output()
            .unwrap()
    };
    let json = publish_cli(&[&two]);
    let stderr = String::from_utf8_lossy(&json.stderr);
    assert_eq!(json.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("published 2 encounter(s)"), "{stderr}");
    let protobuf = publish_cli(&["--protobuf", &one, &broken]);
    let stderr = String::from_utf8_lossy(&protobuf.stderr);
    assert_eq!(protobuf.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.json"), "{stderr}");
    assert!(stderr.contains("published 1 encounter(s)"), "{stderr}");
    let mut forms = Vec::new();
    for _ in 0..3 {
        let input = tokio::time::timeout(Duration::from_secs(10), inputs.next())
            .await
            .unwrap()
            .unwrap();
        let content_type = input.headers.as_ref().unwrap().get("Content-Type").unwrap();
        let encounter = match content_type.as_str() {
            "application/protobuf" => {
                <pb::Encounter as prost::Message>::decode(input.payload.as_ref()).unwrap()
            }
            _ => serde_json::from_slice(&input.payload).unwrap(),
        };
        forms.push((content_type.to_string(), encounter.encounter_id));
    }
    assert_eq!(
        forms,
        [
            ("application/json".to_owned(), "e-101".to_owned()),
            ("application/json".to_owned(), "e-102".to_owned()),
            ("application/protobuf".to_owned(), "e-103".to_owned()),
        ]
    );

    wait_for_outcomes(&js, 3, Duration::from_secs(30)).await;
    consumer_drained(&js).await;
    assert_exactly_once(&js, 101..104).await;
    assert_eq!(stream_count(&js, "ENCOUNTERS_DEAD").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_at_start_then_up_processes_the_backlog() {
    let _serial = SERIAL.lock().await;
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let claimlint = start_claimlint(&url, &[]);
    let (status, _) = http_get(claimlint.http_addr, "/readyz").await;
    assert_eq!(status, 503, "not ready without NATS");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", claimlint.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );

    let _nats = NatsServer::start_with(port, &[]);
    let js = connect(&url).await;
    publish(&js, (0..200).map(encounter)).await;
    wait_for_outcomes(&js, 200, Duration::from_secs(60)).await;
    consumer_drained(&js).await;
    assert_exactly_once(&js, 0..200).await;
    let (status, _) = http_get(claimlint.http_addr, "/readyz").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_pulling_finishes_in_flight_and_loses_nothing() {
    const COUNT: usize = 3_000;
    let (_serial, nats, mut first, js) = start_pipeline().await;
    publish(&js, (0..COUNT).map(encounter)).await;
    wait_until(Duration::from_secs(60), || async {
        stream_count(&js, "CLAIMS").await >= 500
    })
    .await;
    first.sigterm();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = first.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "exits within the grace period (5 s)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    // What the first instance took on, it finished: every input it acknowledged has its
    // outcome, and every outcome's input was acknowledged (none published and then left for a
    // redelivery). The input stream is a work queue, so what is left in it was not acknowledged.
    wait_until(Duration::from_secs(10), || async {
        let left = stream_count(&js, "ENCOUNTERS").await;
        stream_count(&js, "CLAIMS").await == COUNT as u64 - left
    })
    .await;
    let _second = start_claimlint(&nats.url(), &[]);
    wait_for_outcomes(&js, COUNT as u64, Duration::from_secs(120)).await;
    consumer_drained(&js).await;
    assert_exactly_once(&js, 0..COUNT).await;
}

/// A message whose deliveries run out while no claimlint is alive to see it fail is still
/// dead-lettered: the max-deliveries advisory is kept in a stream and handled on start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_reaches_max_deliver_is_dead_lettered() {
    let _serial = SERIAL.lock().await;
    let nats = NatsServer::start();
    let flags = [
        "--nats-url",
        &nats.url(),
        "--nats-max-deliver",
        "1",
        "--nats-ack-wait",
        "1s",
        "--nats-duplicate-window",
        "10s",
    ];
    let mut first = ClaimlintProcess::start(&flags);
    let js = connect(&nats.url()).await;
    wait_until(Duration::from_secs(30), || async {
        js.get_stream("ENCOUNTERS_EXHAUSTED").await.is_ok()
    })
    .await;
    first.kill9();
    publish(&js, vec![encounter(5)]).await;

    // A consumer that crashes holding the message: it takes it and never acknowledges.
    let stream = js.get_stream("ENCOUNTERS").await.unwrap();
    let held: consumer::PullConsumer = stream.get_consumer("claimlint").await.unwrap();
    let mut batch = held.fetch().max_messages(1).messages().await.unwrap();
    let taken = batch.next().await.unwrap().unwrap();
    assert_eq!(taken.info().unwrap().delivered, 1);
    wait_until(Duration::from_secs(30), || async {
        stream_count(&js, "ENCOUNTERS_EXHAUSTED").await == 1
    })
    .await;

    let _second = ClaimlintProcess::start(&flags);
    wait_until(Duration::from_secs(30), || async {
        stream_count(&js, "ENCOUNTERS_DEAD").await == 1
    })
    .await;
    let dead = read_stream(&js, "ENCOUNTERS_DEAD").await;
    let error = dead[0]
        .headers
        .as_ref()
        .unwrap()
        .get("Claimlint-Error")
        .unwrap()
        .as_str()
        .to_owned();
    assert!(error.contains("max_deliver"), "{error}");
    let original: pb::Encounter = serde_json::from_slice(&dead[0].payload).unwrap();
    assert_eq!(original.encounter_id, "e-5");
    wait_until(Duration::from_secs(10), || async {
        stream_count(&js, "ENCOUNTERS").await == 0
    })
    .await;
}
