//! The real `claimlint serve` process: SIGTERM with a stream in flight, and `claimlint submit`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use claimlint::proto::v1 as pb;
use claimlint::proto::v1::claim_validator_client::ClaimValidatorClient;
use support::*;

/// `claimlint serve` on free ports; returns the child and its gRPC address (read from its log).
fn serve_process(extra: &[&str]) -> (Child, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_claimlint"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("CLAIMLINT_LOG_FORMAT", "json")
        .env_remove("CLAIMLINT_RULES_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("claimlint serve starts");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("a log line before exit")
            .expect("read log");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if value["message"] == "claimlint serving" {
            break value["grpc_addr"].as_str().unwrap().parse().unwrap();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

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
    let (mut child, addr) =
        serve_process(&["--shutdown-drain-delay", "500ms", "--shutdown-grace", "3s"]);
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
    sigterm(&child);
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
    let status = wait_with_limit(&mut child, Duration::from_secs(6))
        .expect("exited within the grace period");
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(6));
}

#[test]
fn submit_prints_the_same_verdicts_as_validate() {
    let (mut child, addr) = serve_process(&[]);
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
    sigterm(&child);
    wait_with_limit(&mut child, Duration::from_secs(30)).expect("exits");
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
