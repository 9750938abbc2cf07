//! The real `claimlint serve` process: SIGTERM with a stream in flight, SIGHUP rule data
//! reloads under load, and the `submit` and `healthcheck` clients.

mod support;

use std::time::{Duration, Instant};

use claimlint::proto::v1 as pb;
use claimlint::proto::v1::claim_validator_client::ClaimValidatorClient;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_calls_in_flight_and_exits_within_the_grace_period() {
    let mut process =
        ClaimlintProcess::start(&["--shutdown-drain-delay", "500ms", "--shutdown-grace", "3s"]);
    let addr = process.grpc_addr;
    let mut client = ClaimValidatorClient::connect(format!("http://{addr}"))
        .await
        .unwrap();

    // Stream A: requests keep coming across the SIGTERM, then the client closes it.
    let (sender, receiver) = tokio::sync::mpsc::channel::<pb::ValidateRequest>(16);
    let mut answers = client
        .validate_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    // Stream B: opened, never closed (a stuck client).
    let (_stuck_sender, stuck_receiver) = tokio::sync::mpsc::channel::<pb::ValidateRequest>(1);
    let _stuck = client
        .validate_stream(tokio_stream::wrappers::ReceiverStream::new(stuck_receiver))
        .await
        .unwrap();

    let request = |i: usize| {
        let mut encounter = recent_seed_visit();
        encounter.encounter_id = format!("inflight-{i}");
        pb::ValidateRequest {
            encounter: Some(encounter),
            dry_run: true,
        }
    };
    for i in 0..5 {
        sender.send(request(i)).await.unwrap();
    }
    for i in 0..5 {
        let outcome = answers.message().await.unwrap().unwrap().outcome.unwrap();
        assert_eq!(outcome.encounter_id, format!("inflight-{i}"));
    }
    let signalled = Instant::now();
    process.sigterm();
    for i in 5..10 {
        sender.send(request(i)).await.unwrap();
    }
    drop(sender);
    for i in 5..10 {
        let outcome = answers
            .message()
            .await
            .expect("answered after SIGTERM")
            .expect("an answer")
            .outcome
            .unwrap();
        assert_eq!(outcome.encounter_id, format!("inflight-{i}"));
    }
    assert!(
        answers.message().await.unwrap().is_none(),
        "the stream ends cleanly"
    );

    // New connections are refused once the drain delay is over.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        ClaimValidatorClient::connect(format!("http://{addr}")),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "a new connection was accepted during shutdown"
    );

    // The stuck stream does not hold the process past drain delay + grace (0.5 s + 3 s).
    let status = process
        .wait_exit(Duration::from_secs(6))
        .expect("exited within the grace period");
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(6));
}

#[test]
fn submit_prints_the_same_verdicts_as_validate() {
    let mut process = ClaimlintProcess::start(&[]);
    let addr = process.grpc_addr;
    let files: Vec<String> = example_files()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut validate_args = vec!["validate".to_owned(), "--format".into(), "json".into()];
    validate_args.extend(files.iter().cloned());
    let mut submit_args = vec![
        "submit".to_owned(),
        "--addr".into(),
        format!("http://{addr}"),
        "--dry-run".into(),
        "--format".into(),
        "json".into(),
    ];
    submit_args.extend(files.iter().cloned());

    let local = claimlint().args(&validate_args).output().unwrap();
    let remote = claimlint().args(&submit_args).output().unwrap();
    assert_eq!(
        local.status.code(),
        remote.status.code(),
        "{}",
        stderr(&remote)
    );
    let verdicts = |output: &std::process::Output| -> Vec<(String, i32, Vec<String>)> {
        stdout(output)
            .lines()
            .map(|line| {
                let outcome: pb::Outcome = serde_json::from_str(line).unwrap();
                (
                    outcome.encounter_id,
                    outcome.status,
                    outcome
                        .reasons
                        .into_iter()
                        .map(|r| format!("{} {}", r.code, r.field))
                        .collect(),
                )
            })
            .collect()
    };
    let local_verdicts = verdicts(&local);
    assert_eq!(local_verdicts.len(), files.len());
    assert_eq!(local_verdicts, verdicts(&remote));

    // The text form too, and an unreachable server is exit 2 with one line.
    let submit_npi_example = || {
        claimlint()
            .args([
                "submit",
                "--addr",
                &format!("http://{addr}"),
                "examples/rejected-npi-invalid.json",
            ])
            .output()
            .unwrap()
    };
    let text = submit_npi_example();
    assert!(
        stdout(&text).contains("NPI_INVALID at rendering_provider.npi"),
        "{}",
        stdout(&text)
    );
    process.sigterm();
    process.wait_exit(Duration::from_secs(30)).expect("exits");
    let down = submit_npi_example();
    assert_eq!(down.status.code(), Some(2));
    assert!(
        stderr(&down).contains("cannot connect"),
        "{}",
        stderr(&down)
    );
}

// ---------------------------------------------------------------- rule data reload

/// Rejected under the shipped Medicare profile for an invalid rendering NPI only.
fn bad_npi_visit() -> pb::Encounter {
    let mut encounter = recent_seed_visit();
    encounter.encounter_id = "reload-1".into();
    encounter.rendering_provider.as_mut().unwrap().npi = "1234567890".into();
    encounter
}

async fn ruleset_version(addr: std::net::SocketAddr) -> String {
    ClaimValidatorClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .list_rules(pb::ListRulesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .ruleset_version
}

/// (status, ruleset_version) of every answer of one client, in order.
type Verdicts = Vec<(i32, String)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_rule_data_under_load_and_keeps_it_when_the_new_data_is_broken() {
    let rules = tempfile::tempdir().unwrap();
    copy_rules(rules.path());
    let rules_dir = rules.path().to_string_lossy().into_owned();
    let process = ClaimlintProcess::start(&["--rules-dir", &rules_dir]);
    let addr = process.grpc_addr;
    let old_version = ruleset_version(addr).await;

    // Load: four clients validating without pause until told to stop, each counting its
    // answers.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered: Vec<std::sync::Arc<std::sync::atomic::AtomicUsize>> = (0..4)
        .map(|_| std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)))
        .collect();
    // Every client has had `more` answers since `counts` (a snapshot of the answers).
    let each_answered_more = |counts: Vec<usize>, more: usize| {
        let answered = answered.clone();
        async move {
            wait_until(Duration::from_secs(30), || {
                let done = answered.iter().zip(&counts).all(|(count, before)| {
                    count.load(std::sync::atomic::Ordering::SeqCst) >= before + more
                });
                async move { done }
            })
            .await;
        }
    };
    let snapshot = || -> Vec<usize> {
        answered
            .iter()
            .map(|count| count.load(std::sync::atomic::Ordering::SeqCst))
            .collect()
    };
    let mut clients = Vec::new();
    for client_answered in answered.clone() {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut client = ClaimValidatorClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
            let mut verdicts: Verdicts = Vec::new();
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let request = pb::ValidateRequest {
                    encounter: Some(bad_npi_visit()),
                    dry_run: true,
                };
                match client.validate(request).await {
                    Ok(answer) => {
                        let outcome = answer.into_inner().outcome.unwrap();
                        verdicts.push((outcome.status, outcome.ruleset_version));
                        client_answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(status) => failures.push(status),
                }
            }
            (verdicts, failures)
        }));
    }
    // Every client has an answer under the old data before the reload.
    each_answered_more(vec![0; 4], 1).await;

    // The new data grades NPI_INVALID as a warning for Medicare: the visit validates.
    let profiles = rules.path().join("profiles.toml");
    let text = std::fs::read_to_string(&profiles).unwrap();
    let changed = text.replacen(
        "[profile.medicare]\n",
        "[profile.medicare]\nrules = { NPI_INVALID = \"warning\" }\n",
        1,
    );
    assert_ne!(changed, text);
    std::fs::write(&profiles, changed).unwrap();
    process.signal("HUP");
    let started = Instant::now();
    let new_version = loop {
        let version = ruleset_version(addr).await;
        if version != old_version {
            break version;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no reload within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Two more answers each: the second was asked after the new data was in force.
    each_answered_more(snapshot(), 2).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);

    let (mut before, mut after) = (0, 0);
    for client in clients {
        let (verdicts, failures) = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "calls failed during the reload: {failures:?}"
        );
        // Each client sees the old data, then the new, never the old again; each verdict is
        // the one its data gives.
        let switched = verdicts
            .iter()
            .position(|(_, version)| *version == new_version)
            .expect("the new data reached every client");
        for (index, (status, version)) in verdicts.iter().enumerate() {
            if index < switched {
                assert_eq!(*version, old_version);
                assert_eq!(*status, pb::Status::Rejected as i32);
                before += 1;
            } else {
                assert_eq!(
                    *version, new_version,
                    "answer {index} went back to the old data"
                );
                assert_eq!(*status, pb::Status::Validated as i32);
                after += 1;
            }
        }
    }
    assert!(
        before > 0 && after > 0,
        "{before} answers before, {after} after"
    );
    let (_, ready) = http_get(process.http_addr, "/readyz").await;
    assert!(ready.contains(&new_version), "{ready}");
    let (_, metrics) = http_get(process.http_addr, "/metrics").await;
    assert!(metrics.contains(&format!(
        "claimlint_ruleset_info{{version=\"{new_version}\"}} 1"
    )));
    assert!(!metrics.contains(&format!("version=\"{old_version}\"")));
    assert_eq!(
        metric_value(&metrics, "claimlint_rules_reloads_total{result=\"loaded\"}"),
        Some(1.0)
    );
    assert!(
        process
            .logs()
            .iter()
            .any(|l| l.contains("rule data reloaded") && l.contains(&new_version))
    );

    // Broken data is refused with a clear log line; the data in force stays.
    std::fs::write(rules.path().join("reasons.toml"), "[[rule]\ncode = ").unwrap();
    process.signal("HUP");
    let started = Instant::now();
    let refusal = loop {
        if let Some(line) = process
            .logs()
            .into_iter()
            .find(|l| l.contains("reload refused"))
        {
            break line;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no refusal logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(refusal.contains("reasons.toml"), "{refusal}");
    assert!(refusal.contains(&new_version), "{refusal}");
    assert_eq!(ruleset_version(addr).await, new_version);
    let answer = ClaimValidatorClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .validate(pb::ValidateRequest {
            encounter: Some(bad_npi_visit()),
            dry_run: true,
        })
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(answer.status, pb::Status::Validated as i32);
    let (_, metrics) = http_get(process.http_addr, "/metrics").await;
    assert_eq!(
        metric_value(
            &metrics,
            "claimlint_rules_reloads_total{result=\"refused\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_rules_directory_is_reloaded_when_watched() {
    let rules = tempfile::tempdir().unwrap();
    copy_rules(rules.path());
    let rules_dir = rules.path().to_string_lossy().into_owned();
    let process =
        ClaimlintProcess::start(&["--rules-dir", &rules_dir, "--rules-watch-interval", "1s"]);
    let old_version = ruleset_version(process.grpc_addr).await;
    let profiles = rules.path().join("profiles.toml");
    let text = std::fs::read_to_string(&profiles).unwrap();
    std::fs::write(
        &profiles,
        format!("{text}\n# a comment changes the digest\n"),
    )
    .unwrap();
    let started = Instant::now();
    while ruleset_version(process.grpc_addr).await == old_version {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no reload within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------- healthcheck

#[test]
fn healthcheck_exits_zero_only_for_a_serving_server() {
    let process = ClaimlintProcess::start(&[]);
    let serving = run(&[
        "healthcheck",
        "--addr",
        &format!("http://{}", process.grpc_addr),
    ]);
    assert!(serving.status.success(), "{}", stderr(&serving));
    assert_eq!(stdout(&serving).trim(), "SERVING");
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let down = run(&["healthcheck", "--addr", &nobody, "--timeout", "1s"]);
    assert_eq!(down.status.code(), Some(1), "{}", stdout(&down));
    assert!(
        stderr(&down).contains("claimlint healthcheck:"),
        "{}",
        stderr(&down)
    );
}

// ---------------------------------------------------------------- request timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_hangs_ends_at_the_request_timeout_for_calls_and_stream_messages() {
    let nats = NatsServer::start();
    let url = nats.url();
    let process = ClaimlintProcess::start(&["--nats-url", &url, "--request-timeout", "1s"]);
    let addr = process.http_addr;
    wait_until(Duration::from_secs(30), || async move {
        http_get(addr, "/readyz").await.0 == 200
    })
    .await;
    let mut client = ClaimValidatorClient::connect(format!("http://{}", process.grpc_addr))
        .await
        .unwrap();
    let request = |id: &str| {
        let mut encounter = recent_seed_visit();
        encounter.encounter_id = id.to_owned();
        pb::ValidateRequest {
            encounter: Some(encounter),
            dry_run: false,
        }
    };
    // NATS stops answering: the outcome's publish is never acknowledged.
    nats.pause();
    let unary = client.validate(request("hang-1")).await.unwrap_err();
    assert_eq!(unary.code(), tonic::Code::Unavailable);
    assert!(
        unary.message().contains("request timeout"),
        "{}",
        unary.message()
    );
    let mut answers = client
        .validate_stream(tokio_stream::iter([request("hang-2")]))
        .await
        .unwrap()
        .into_inner();
    let streamed = answers.message().await.unwrap_err();
    assert_eq!(streamed.code(), tonic::Code::Unavailable);
    assert!(
        streamed
            .message()
            .contains("request 0 of the stream took longer than the request timeout"),
        "{}",
        streamed.message()
    );
    nats.resume();
    // With NATS back, the same call succeeds.
    let ok = client
        .validate(request("hang-3"))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.published);
}
