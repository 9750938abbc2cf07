//! Traces, logs and metrics of the real binary, fed through both transports: a real
//! `nats-server`, the real gRPC server, and an in-process OTLP/gRPC receiver standing in for
//! the collector.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use claimlint::proto::v1 as pb;
use claimlint::proto::v1::claim_validator_client::ClaimValidatorClient;
use futures_util::StreamExt;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use support::*;

async fn grpc_client(
    addr: std::net::SocketAddr,
) -> ClaimValidatorClient<tonic::transport::Channel> {
    ClaimValidatorClient::connect(format!("http://{addr}"))
        .await
        .expect("gRPC connects")
}

fn start(url: &str, env: &[(&str, &str)]) -> ClaimlintProcess {
    let flags = pipeline_flags(url);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    ClaimlintProcess::start_with_env(&flags, env)
}

/// Until `/readyz` answers 200 (NATS connected and set up).
async fn wait_ready(process: &ClaimlintProcess) {
    let addr = process.http_addr;
    wait_until(Duration::from_secs(30), || async move {
        http_get(addr, "/readyz").await.0 == 200
    })
    .await;
}

async fn metrics_text(process: &ClaimlintProcess) -> String {
    let (status, body) = http_get(process.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    body
}

fn json_message(
    encounter: &pb::Encounter,
    traceparent: Option<&str>,
) -> (async_nats::HeaderMap, Vec<u8>) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    if let Some(value) = traceparent {
        headers.insert("traceparent", value);
    }
    (headers, serde_json::to_vec(encounter).unwrap())
}

/// The seed visit with its own patient (the same service for one patient on one day would
/// be a DUPLICATE_SERVICE).
fn with_id(id: &str) -> pb::Encounter {
    let mut encounter = recent_seed_visit();
    encounter.encounter_id = id.to_owned();
    encounter.patient_id = format!("patient-of-{id}");
    encounter
}

/// Rejected for an invalid rendering NPI.
fn rejected(id: &str) -> pb::Encounter {
    let mut encounter = with_id(id);
    encounter.rendering_provider.as_mut().unwrap().npi = "1234567890".into();
    encounter
}

fn validate_request(encounter: pb::Encounter) -> pb::ValidateRequest {
    pb::ValidateRequest {
        encounter: Some(encounter),
        dry_run: false,
    }
}

fn trace_of(spans: &[Span], trace_id: &str) -> Vec<Span> {
    spans
        .iter()
        .filter(|s| hex::encode(&s.trace_id) == trace_id)
        .cloned()
        .collect()
}

// ---------------------------------------------------------------- traces

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_producer_through_claimlint_to_the_consumer() {
    let nats = NatsServer::start();
    let (otlp, endpoint) = OtlpReceiver::start().await;
    let mut process = start(
        &nats.url(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            // Nothing is exported on schedule: what arrives was flushed at shutdown.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
        ],
    );
    wait_ready(&process).await;
    let core = async_nats::connect(nats.url()).await.unwrap();
    let mut outcomes = core.subscribe("claims.>").await.unwrap();
    core.flush().await.unwrap();

    // The producers' traces: W3C example ids.
    let (grpc_trace, grpc_parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let (nats_trace, nats_parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");

    let mut request = tonic::Request::new(validate_request(with_id("trace-grpc")));
    request.metadata_mut().insert(
        "traceparent",
        traceparent(grpc_trace, grpc_parent).parse().unwrap(),
    );
    let answer = grpc_client(process.grpc_addr)
        .await
        .validate(request)
        .await
        .expect("Validate answers")
        .into_inner();
    assert!(answer.published);

    let js = connect(&nats.url()).await;
    publish_raw(
        &js,
        vec![json_message(
            &rejected("trace-nats"),
            Some(&traceparent(nats_trace, nats_parent)),
        )],
    )
    .await;

    // The consumer's side: each outcome carries the producer's trace id, with claimlint's
    // span as the parent.
    let mut outcome_parents = BTreeMap::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(20), outcomes.next())
            .await
            .expect("an outcome within 20 s")
            .unwrap();
        let outcome: pb::Outcome = serde_json::from_slice(&message.payload).unwrap();
        let header = message
            .headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .expect("the outcome has a traceparent")
            .to_string();
        outcome_parents.insert(outcome.encounter_id, parse_traceparent(&header));
    }
    assert_eq!(outcome_parents["trace-grpc"].0, grpc_trace);
    assert_eq!(outcome_parents["trace-nats"].0, nats_trace);
    assert!(
        otlp.spans().is_empty(),
        "the test holds exports back until shutdown"
    );

    process.sigterm();
    let status = process
        .wait_exit(Duration::from_secs(15))
        .expect("claimlint exits after SIGTERM");
    assert!(status.success(), "{status:?}");

    // The exported spans: claimlint's span is a child of the producer's and the parent of
    // the consumer's; the validation span is a child of claimlint's with its attributes.
    let spans = otlp.spans();
    for (trace_id, producer_span, encounter_id, kind, status) in [
        (
            grpc_trace,
            grpc_parent,
            "trace-grpc",
            SpanKind::Server,
            "validated",
        ),
        (
            nats_trace,
            nats_parent,
            "trace-nats",
            SpanKind::Consumer,
            "rejected",
        ),
    ] {
        let trace = trace_of(&spans, trace_id);
        let transport = trace
            .iter()
            .find(|s| hex::encode(&s.parent_span_id) == producer_span)
            .unwrap_or_else(|| panic!("no child of the producer's span in {trace:?}"));
        assert_eq!(transport.kind, kind as i32, "{transport:?}");
        assert_eq!(
            hex::encode(&transport.span_id),
            outcome_parents[encounter_id].1,
            "the outcome's traceparent names claimlint's span"
        );
        let validate = trace
            .iter()
            .find(|s| s.name == "validate")
            .unwrap_or_else(|| panic!("no validate span in {trace:?}"));
        assert_eq!(validate.parent_span_id, transport.span_id);
        assert_eq!(
            span_attribute(validate, "encounter_id").as_deref(),
            Some(encounter_id)
        );
        assert_eq!(
            span_attribute(validate, "payer_kind").as_deref(),
            Some("medicare")
        );
        assert_eq!(span_attribute(validate, "status").as_deref(), Some(status));
        let codes = span_attribute(validate, "reason_codes").unwrap_or_default();
        assert_eq!(
            codes.contains("NPI_INVALID"),
            status == "rejected",
            "{codes}"
        );
    }

    // OTLP metrics were flushed at shutdown too, with the same counts.
    let exports = otlp.metric_exports();
    let exported = format!("{exports:?}");
    for name in [
        "claimlint.reasons",
        "claimlint.validation.duration",
        "claimlint.nats.consumer_pending",
    ] {
        assert!(exported.contains(name), "{name} not exported");
    }
    assert_eq!(otlp_counter_total(&exports, "claimlint.encounters"), 2);
}

/// The total of a cumulative counter in the last export that has it.
fn otlp_counter_total(
    exports: &[opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest],
    name: &str,
) -> i64 {
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
    exports
        .iter()
        .rev()
        .flat_map(|e| &e.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .find(|m| m.name == name)
        .and_then(|m| match &m.data {
            Some(Data::Sum(sum)) => Some(
                sum.data_points
                    .iter()
                    .map(|p| match p.value {
                        Some(Value::AsInt(n)) => n,
                        _ => 0,
                    })
                    .sum(),
            ),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{name} not exported as a sum"))
}

// ---------------------------------------------------------------- no patient data

const SENTINEL: &str = "PHI-SENTINEL";

/// The seed visit with a sentinel in every free-text and identifier field (encounter_id
/// excepted: it is the one identifier logs carry by design).
fn with_sentinels(id: &str) -> pb::Encounter {
    let mut encounter = with_id(id);
    let mark = |field: &str| format!("{SENTINEL}-{field}-q7x");
    encounter.patient_id = mark("patient_id");
    encounter.billing_provider_npi = mark("billing_npi");
    encounter.payer.as_mut().unwrap().payer_id = mark("payer_id");
    encounter.rendering_provider.as_mut().unwrap().npi = mark("rendering_npi");
    let documentation = encounter.documentation.as_mut().unwrap();
    documentation.medical_necessity = mark("medical_necessity");
    documentation.functional_limitations = vec![mark("limitation"), mark("limitation-2")];
    for goal in &mut documentation.goals {
        goal.description = mark("goal");
        goal.target = mark("target");
    }
    let plan = documentation.plan_of_care.as_mut().unwrap();
    plan.certifying_npi = mark("certifying_npi");
    plan.delayed_certification_reason = mark("delay_reason");
    encounter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_in_every_free_text_field_reach_no_log_span_or_metric_label() {
    let nats = NatsServer::start();
    let (otlp, endpoint) = OtlpReceiver::start().await;
    let mut process = start(
        &nats.url(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            // More than production logs.
            ("RUST_LOG", "debug"),
        ],
    );
    wait_ready(&process).await;

    // gRPC: a whole encounter, and one refused for its missing encounter_id.
    let mut client = grpc_client(process.grpc_addr).await;
    let answer = client
        .validate(validate_request(with_sentinels("phi-grpc")))
        .await
        .expect("Validate answers")
        .into_inner();
    let outcome = answer.outcome.unwrap();
    // The sentinels were read: the NPIs holding them are invalid.
    assert!(outcome.reasons.iter().any(|r| r.code == "NPI_INVALID"));
    let refused = client
        .validate(validate_request(with_sentinels("")))
        .await
        .expect_err("no encounter_id");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // NATS: JSON, protobuf, and two dead letters whose errors would quote the sentinels.
    let js = connect(&nats.url()).await;
    let mut protobuf_headers = async_nats::HeaderMap::new();
    protobuf_headers.insert("Content-Type", "application/protobuf");
    let mut unreadable = serde_json::to_value(with_sentinels("phi-dead")).unwrap();
    unreadable["payer"]["kind"] = format!("{SENTINEL}-kind").into();
    publish_raw(
        &js,
        vec![
            json_message(&with_sentinels("phi-nats-json"), None),
            (
                protobuf_headers,
                prost::Message::encode_to_vec(&with_sentinels("phi-nats-protobuf")),
            ),
            (
                async_nats::HeaderMap::new(),
                serde_json::to_vec(&unreadable).unwrap(),
            ),
            json_message(&with_sentinels(""), None),
        ],
    )
    .await;
    wait_until(Duration::from_secs(30), || async {
        stream_count(&js, "CLAIMS").await == 3 && stream_count(&js, "ENCOUNTERS_DEAD").await == 2
    })
    .await;
    // The dead letter's error header quotes the sentinel (the decoder names what it could not
    // read): that is what must not reach the logs.
    let dead = read_stream(&js, "ENCOUNTERS_DEAD").await;
    assert!(dead.iter().any(|m| {
        m.headers
            .as_ref()
            .and_then(|h| h.get("Claimlint-Error"))
            .is_some_and(|e| e.as_str().contains(SENTINEL))
    }));
    let metrics = metrics_text(&process).await;
    let dashboard = http_get(process.http_addr, "/dashboard/data").await.1;
    process.sigterm();
    assert!(process.wait_exit(Duration::from_secs(15)).is_some());

    // The checks are not vacuous: there are logs of the validations, spans and metrics.
    let logs = process.logs();
    for id in ["phi-grpc", "phi-nats-json", "phi-nats-protobuf"] {
        assert!(
            logs.iter()
                .any(|l| l.contains(id) && l.contains("validated encounter")),
            "no debug log of {id}"
        );
        assert!(
            otlp.spans()
                .iter()
                .any(|s| span_attribute(s, "encounter_id").as_deref() == Some(id)),
            "no span of {id}"
        );
    }
    assert!(logs.iter().any(|l| l.contains("dead-lettered a message")));
    assert!(metrics.contains("claimlint_reasons_total{"));
    assert!(!otlp.metric_exports().is_empty());

    for line in &logs {
        assert!(
            !line.contains(SENTINEL),
            "patient data in a log line: {line}"
        );
    }
    let spans = format!("{:?}", otlp.trace_exports());
    assert!(!spans.contains(SENTINEL), "patient data in a span");
    let exported_metrics = format!("{:?}", otlp.metric_exports());
    assert!(
        !exported_metrics.contains(SENTINEL),
        "patient data in OTLP metrics"
    );
    assert!(!metrics.contains(SENTINEL), "patient data in /metrics");
    assert!(
        !dashboard.contains(SENTINEL),
        "patient data on the dashboard"
    );
}

// ---------------------------------------------------------------- metrics

/// The outcomes stored on CLAIMS, by encounter id.
async fn stored_outcomes(js: &async_nats::jetstream::Context) -> Vec<pb::Outcome> {
    read_stream(js, "CLAIMS")
        .await
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_the_histogram_move_by_a_known_mix_from_both_feeds() {
    let nats = NatsServer::start();
    prepare_redelivery(&nats.url(), &with_id("nats-redelivered")).await;

    let process = start(&nats.url(), &[]);
    wait_ready(&process).await;
    let js = connect(&nats.url()).await;
    let before = metrics_text(&process).await;
    assert_eq!(
        metric_value(&before, "claimlint_dead_letters_total"),
        Some(0.0)
    );

    // Tracing is off here: a producer's traceparent passes through to the outcome unchanged.
    let grpc_traceparent = traceparent("11111111111111111111111111111111", "2222222222222222");
    let nats_traceparent = traceparent("33333333333333333333333333333333", "4444444444444444");
    let mut client = grpc_client(process.grpc_addr).await;
    for encounter in [with_id("grpc-1"), with_id("grpc-2"), rejected("grpc-3")] {
        let traced = encounter.encounter_id == "grpc-1";
        let mut request = tonic::Request::new(validate_request(encounter));
        if traced {
            request
                .metadata_mut()
                .insert("traceparent", grpc_traceparent.parse().unwrap());
        }
        client.validate(request).await.unwrap();
    }
    let (json_headers, json) = json_message(&with_id("nats-1"), Some(&nats_traceparent));
    let (rejected_headers, rejected_json) = json_message(&rejected("nats-2"), None);
    let (rejected_headers_2, rejected_json_2) = json_message(&rejected("nats-3"), None);
    publish_raw(
        &js,
        vec![
            (json_headers, json),
            (rejected_headers, rejected_json),
            (rejected_headers_2, rejected_json_2),
            (async_nats::HeaderMap::new(), b"not json".to_vec()),
        ],
    )
    .await;
    wait_until(Duration::from_secs(30), || async {
        stream_count(&js, "CLAIMS").await == 7 && stream_count(&js, "ENCOUNTERS_DEAD").await == 1
    })
    .await;

    let text = metrics_text(&process).await;
    let value = |series: &str| metric_value(&text, series).unwrap_or(0.0);
    for (series, expected) in [
        (
            "claimlint_encounters_total{source=\"grpc\",status=\"validated\"}",
            2.0,
        ),
        (
            "claimlint_encounters_total{source=\"grpc\",status=\"rejected\"}",
            1.0,
        ),
        (
            "claimlint_encounters_total{source=\"nats\",status=\"validated\"}",
            2.0,
        ),
        (
            "claimlint_encounters_total{source=\"nats\",status=\"rejected\"}",
            2.0,
        ),
        (
            "claimlint_validation_duration_seconds_count{source=\"grpc\"}",
            3.0,
        ),
        (
            "claimlint_validation_duration_seconds_count{source=\"nats\"}",
            4.0,
        ),
        (
            "claimlint_validation_duration_seconds_bucket{le=\"+Inf\",source=\"grpc\"}",
            3.0,
        ),
        ("claimlint_nats_redeliveries_total", 1.0),
        ("claimlint_dead_letters_total", 1.0),
    ] {
        assert_eq!(
            value(series),
            expected,
            "{series} in\n{text}\n{:#?}",
            process.logs()
        );
    }
    let grpc_seconds = value("claimlint_validation_duration_seconds_sum{source=\"grpc\"}");
    assert!(grpc_seconds > 0.0 && grpc_seconds < 3.0, "{grpc_seconds}");
    // Every observation falls in a bucket at or below 10 s; none above.
    assert_eq!(
        value("claimlint_validation_duration_seconds_bucket{le=\"10.48576\",source=\"nats\"}"),
        4.0
    );

    let stored = read_stream(&js, "CLAIMS").await;
    for (id, sent) in [("grpc-1", &grpc_traceparent), ("nats-1", &nats_traceparent)] {
        let message = stored
            .iter()
            .find(|m| {
                serde_json::from_slice::<pb::Outcome>(&m.payload)
                    .unwrap()
                    .encounter_id
                    == id
            })
            .unwrap_or_else(|| panic!("no outcome for {id}"));
        let header = message.headers.as_ref().and_then(|h| h.get("traceparent"));
        assert_eq!(header.map(|v| v.as_str()), Some(sent.as_str()), "{id}");
    }

    // Each reason of each stored outcome is counted once, with its severity and payer kind.
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    for outcome in stored_outcomes(&js).await {
        for reason in outcome.reasons {
            let severity = if reason.severity == pb::Severity::Error as i32 {
                "error"
            } else {
                "warning"
            };
            let series = format!(
                "claimlint_reasons_total{{code=\"{}\",severity=\"{severity}\",payer_kind=\"medicare\"}}",
                reason.code
            );
            *expected.entry(series).or_default() += 1.0;
        }
    }
    assert!(expected.keys().any(|s| s.contains("NPI_INVALID")));
    for (series, count) in &expected {
        assert_eq!(value(series), *count, "{series}");
    }
    let counted: f64 = text
        .lines()
        .filter(|l| l.starts_with("claimlint_reasons_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        counted,
        expected.values().sum::<f64>(),
        "no reason counted twice"
    );

    // The dashboard's JSON holds the same totals.
    let (status, body) = http_get(process.http_addr, "/dashboard/data").await;
    assert_eq!(status, 200);
    let data: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(data["totals"]["validated"], 4);
    assert_eq!(data["totals"]["rejected"], 3);
    assert_eq!(data["nats"]["dead_letters_total"], 1);
    assert_eq!(data["nats"]["redeliveries_total"], 1);
    assert_eq!(data["latency"][0]["observations"], 7);
    assert_eq!(data["top_reasons"][0]["code"], "NPI_INVALID");
    assert_eq!(data["top_reasons"][0]["total"], 3);
}

// ---------------------------------------------------------------- the built-in dashboard

/// The text of every element with an id, and the cells of every table body, once the page
/// has refreshed from its data endpoint.
const READ_PAGE: &str = r#"
    const ids = Object.fromEntries([...document.querySelectorAll("[id]")]
        .map((e) => [e.id, e.textContent.trim()]));
    const tables = Object.fromEntries([...document.querySelectorAll("table")]
        .map((t) => [t.id, [...t.tBodies[0].rows].map((r) => [...r.cells].map((c) => c.textContent))]));
    return { state: document.getElementById("updated").dataset.state, ids, tables };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_page_shows_the_numbers_the_metrics_hold() {
    let nats = NatsServer::start();
    prepare_redelivery(&nats.url(), &with_id("dash-redelivered")).await;
    let process = start(&nats.url(), &[]);
    wait_ready(&process).await;

    let mut client = grpc_client(process.grpc_addr).await;
    for encounter in [
        with_id("dash-grpc-1"),
        with_id("dash-grpc-2"),
        with_id("dash-grpc-3"),
        rejected("dash-grpc-4"),
        rejected("dash-grpc-5"),
    ] {
        client.validate(validate_request(encounter)).await.unwrap();
    }
    let js = connect(&nats.url()).await;
    publish_raw(
        &js,
        vec![
            json_message(&rejected("dash-nats-1"), None),
            json_message(&rejected("dash-nats-2"), None),
            (async_nats::HeaderMap::new(), b"{\"not\": ".to_vec()),
        ],
    )
    .await;
    wait_until(Duration::from_secs(30), || async {
        stream_count(&js, "CLAIMS").await == 8 && stream_count(&js, "ENCOUNTERS_DEAD").await == 1
    })
    .await;
    let text = metrics_text(&process).await;
    let value = |series: &str| metric_value(&text, series).unwrap_or(0.0);
    let validated = value("claimlint_encounters_total{source=\"grpc\",status=\"validated\"}")
        + value("claimlint_encounters_total{source=\"nats\",status=\"validated\"}");
    let rejected_total = value("claimlint_encounters_total{source=\"grpc\",status=\"rejected\"}")
        + value("claimlint_encounters_total{source=\"nats\",status=\"rejected\"}");
    assert_eq!((validated, rejected_total), (4.0, 4.0), "{text}");
    let npi_carc = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("claimlint_rule_info{code=\"NPI_INVALID\",carc=\"")?
                .split('"')
                .next()
        })
        .expect("claimlint_rule_info names NPI_INVALID's CARC")
        .to_owned();
    assert!(!npi_carc.is_empty());

    let url = format!("http://{}/dashboard?refresh=1", process.http_addr);
    let artifact = repo_root().join("target/test-artifacts/dashboard.png");
    let page = tokio::task::spawn_blocking(move || {
        let browser = Browser::start();
        browser.goto(&url);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let page = loop {
            let page = browser.execute(READ_PAGE);
            if page["state"] == "ok" {
                break page;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the page never refreshed: {page}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        browser.screenshot(&artifact);
        page
    })
    .await
    .unwrap();
    let shown = |id: &str| page["ids"][id].as_str().unwrap_or_default().to_owned();
    let table = |id: &str| -> Vec<Vec<String>> {
        serde_json::from_value(page["tables"][id].clone()).unwrap_or_default()
    };

    assert_eq!(shown("total-encounters"), "8");
    assert_eq!(shown("total-validated"), format!("{validated}"));
    assert_eq!(shown("total-rejected"), format!("{rejected_total}"));
    assert_eq!(shown("rejection-rate-overall"), "50.0 %");
    assert_eq!(
        shown("dead-letters"),
        format!("{}", value("claimlint_dead_letters_total"))
    );
    assert_eq!(shown("dead-letters"), "1");
    assert_eq!(
        shown("nats-redeliveries"),
        format!("{}", value("claimlint_nats_redeliveries_total"))
    );
    assert_eq!(shown("nats-redeliveries"), "1");
    assert_eq!(
        shown("nats-pending"),
        format!("{}", value("claimlint_nats_consumer_pending"))
    );
    let p50 = shown("latency-p50");
    assert!(p50.ends_with("µs") || p50.ends_with("ms"), "{p50}");
    assert!(
        shown("ruleset-version").starts_with("2026Q4+"),
        "{}",
        shown("ruleset-version")
    );

    // The reason table: NPI_INVALID with its CARC and the count the metric holds.
    let npi = table("reasons-table")
        .into_iter()
        .find(|row| row[0] == "NPI_INVALID")
        .expect("NPI_INVALID among the top reasons");
    assert_eq!(npi[1], npi_carc);
    assert_eq!(
        npi[3],
        format!(
            "{}",
            value(
                "claimlint_reasons_total{code=\"NPI_INVALID\",severity=\"error\",payer_kind=\"medicare\"}"
            )
        )
    );
    assert_eq!(npi[3], "4");
    // Encounters by source and status: each row is the counter's value.
    let rows = table("encounters-table");
    assert_eq!(rows.len(), 4, "{rows:?}");
    for row in rows {
        let series = format!(
            "claimlint_encounters_total{{source=\"{}\",status=\"{}\"}}",
            row[0], row[1]
        );
        assert_eq!(row[3], format!("{}", value(&series)), "{series}");
        assert_ne!(row[3], "0");
    }
    let payer = table("payer-table");
    assert_eq!(payer[0][0], "medicare");
    let medicare_errors: f64 = text
        .lines()
        .filter(|l| l.starts_with("claimlint_reasons_total{"))
        .filter(|l| l.contains("severity=\"error\",payer_kind=\"medicare\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(payer[0][2], format!("{medicare_errors}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_is_logged_and_does_not_hold_up_the_service() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut process = ClaimlintProcess::start_with_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &closed),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let answer = grpc_client(process.grpc_addr)
        .await
        .validate(pb::ValidateRequest {
            encounter: Some(with_id("collector-down")),
            dry_run: true,
        })
        .await
        .expect("validation does not wait for the collector");
    assert!(answer.into_inner().outcome.is_some());
    let started = std::time::Instant::now();
    let logs = loop {
        let logs = process.logs();
        if logs
            .iter()
            .any(|l| l.contains("BatchSpanProcessor.ExportError"))
        {
            break logs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no export error logged: {logs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(logs.iter().any(|l| l.contains("Connection refused")));
    process.sigterm();
    let status = process
        .wait_exit(Duration::from_secs(15))
        .expect("exits although the last export fails");
    assert!(status.success(), "{status:?}");
}
