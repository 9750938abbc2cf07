//! The real `claimlint serve` process: SIGTERM with a stream in flight, and `claimlint submit`.

mod support;

use std::process::Child;
use std::time::{Duration, Instant};

use claimlint::proto::v1 as pb;
use claimlint::proto::v1::claim_validator_client::ClaimValidatorClient;
use support::*;

fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

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
    let status = wait_with_limit(&mut process.child, Duration::from_secs(6))
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
    let text = claimlint()
        .args([
            "submit",
            "--addr",
            &format!("http://{addr}"),
            "examples/rejected-npi-invalid.json",
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&text).contains("NPI_INVALID at rendering_provider.npi"),
        "{}",
        stdout(&text)
    );
    process.sigterm();
    wait_with_limit(&mut process.child, Duration::from_secs(30)).expect("exits");
    let down = claimlint()
        .args([
            "submit",
            "--addr",
            &format!("http://{addr}"),
            "examples/rejected-npi-invalid.json",
        ])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(2));
    assert!(
        stderr(&down).contains("cannot connect"),
        "{}",
        stderr(&down)
    );
}
