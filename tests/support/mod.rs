//! Shared helpers for integration tests: the real `claimlint` binary and the examples.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The validation date the examples are written for.
pub const EXAMPLES_AS_OF: &str = "2025-06-20";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command for the real binary, with no rules override inherited from the environment.
pub fn claimlint() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_claimlint"));
    command
        .env_remove("CLAIMLINT_RULES_DIR")
        .current_dir(repo_root());
    command
}

pub fn run(args: &[&str]) -> Output {
    claimlint().args(args).output().expect("claimlint runs")
}

pub fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = claimlint()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("claimlint starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("claimlint ends")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples/")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// Copies the shipped `rules/` into `dest` (for override tests).
pub fn copy_rules(dest: &Path) {
    copy_tree(&repo_root().join("rules"), dest);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

// ---------------------------------------------------------------- the service

use claimlint::config::ServeConfig;
use claimlint::proto::v1 as pb;
use claimlint::serve::{Running, start};
use clap::Parser;

#[derive(Parser)]
#[command(args_override_self = true)]
struct ServeArgs {
    #[command(flatten)]
    config: ServeConfig,
}

/// A service configuration on free loopback ports with quick shutdown; `extra` are more
/// `claimlint serve` flags.
pub fn serve_config(extra: &[&str]) -> ServeConfig {
    let mut args = vec![
        "claimlint",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--shutdown-drain-delay",
        "0s",
        "--shutdown-grace",
        "5s",
    ];
    args.extend_from_slice(extra);
    ServeArgs::try_parse_from(args).expect("serve flags").config
}

/// Starts the real server in this process (tonic on a real port).
pub async fn spawn_server(extra: &[&str]) -> Running {
    start(serve_config(extra)).await.expect("server starts")
}

/// The seed visit moved to yesterday (UTC), so it validates as of today. Dated once per test
/// process: a test that runs across midnight still sends the same content each time.
pub fn recent_seed_visit() -> pb::Encounter {
    static VISIT: std::sync::OnceLock<pb::Encounter> = std::sync::OnceLock::new();
    VISIT
        .get_or_init(|| claimlint::wire::sample::seed_visit_yesterday().unwrap())
        .clone()
}

/// A plain HTTP/1.1 GET on loopback: (status code, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

// ---------------------------------------------------------------- real processes: NATS, claimlint

use std::process::Child;

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nats_server_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let local = repo_root().join(".tools/bin/nats-server");
    if local.exists() {
        local
    } else {
        PathBuf::from("nats-server")
    }
}

/// A real `nats-server` with JetStream, on a fixed port and store so it can be killed with
/// SIGKILL and restarted where it was.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
    _store: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        Self::start_with(free_port(), &[])
    }

    pub fn start_with(port: u16, extra: &[String]) -> NatsServer {
        let store = tempfile::tempdir().unwrap();
        let mut args = vec![
            "-js".to_owned(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-sd".into(),
            store.path().to_string_lossy().into_owned(),
        ];
        args.extend_from_slice(extra);
        let mut server = NatsServer {
            child: None,
            port,
            args,
            _store: store,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server_bin())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (scripts/test installs it into .tools/)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the server holds its connections but answers nothing.
    pub fn pause(&self) {
        self.send("STOP");
    }

    /// SIGCONT after [`NatsServer::pause`].
    pub fn resume(&self) {
        self.send("CONT");
    }

    fn send(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status();
        }
    }

    /// Starts again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A real `claimlint serve` process; SIGKILLed when dropped. Its log lines are kept.
pub struct ClaimlintProcess {
    pub child: Child,
    pub grpc_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ClaimlintProcess {
    pub fn start(extra: &[&str]) -> ClaimlintProcess {
        Self::start_with_env(extra, &[])
    }

    /// With more environment variables (after the defaults, so they may override them).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> ClaimlintProcess {
        use std::io::{BufRead, BufReader};
        let mut command = Command::new(env!("CARGO_BIN_EXE_claimlint"));
        command.args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ]);
        // A quick drain unless the test sets its own.
        if !extra.contains(&"--shutdown-drain-delay") {
            command.args(["--shutdown-drain-delay", "0s"]);
        }
        let mut child = command
            .args(extra)
            .env("CLAIMLINT_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("CLAIMLINT_RULES_DIR")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("claimlint serve starts");
        let stderr = child.stderr.take().unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut lines = BufReader::new(stderr).lines();
        let (grpc_addr, http_addr) = loop {
            let line = lines
                .next()
                .expect("a log line before exit")
                .expect("read log");
            logs.lock().unwrap().push(line.clone());
            let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if value["message"] == "claimlint serving" {
                break (
                    value["grpc_addr"].as_str().unwrap().parse().unwrap(),
                    value["http_addr"].as_str().unwrap().parse().unwrap(),
                );
            }
        };
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        ClaimlintProcess {
            child,
            grpc_addr,
            http_addr,
            logs,
        }
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits for the process to exit by itself (None when `limit` passes first).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends a signal by name (`TERM`, `HUP`, …).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for ClaimlintProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------- NATS client side

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// Short redelivery for tests (2 s × 5 deliveries), a dedupe window that covers it.
pub fn pipeline_flags(url: &str) -> Vec<String> {
    [
        "--nats-url",
        url,
        "--nats-ack-wait",
        "2s",
        "--nats-max-deliver",
        "5",
        "--nats-duplicate-window",
        "30s",
        "--shutdown-grace",
        "5s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub async fn connect(url: &str) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(claimlint::nats::server_addrs(url).unwrap())
        .await
        .expect("test client connects");
    jetstream::new(client)
}

/// Publishes raw payloads with headers to `encounters.submitted`, waiting for every ack.
pub async fn publish_raw(js: &jetstream::Context, messages: Vec<(async_nats::HeaderMap, Vec<u8>)>) {
    // The stream exists once claimlint has set up; wait for it.
    wait_until(Duration::from_secs(30), || async {
        js.get_stream("ENCOUNTERS").await.is_ok()
    })
    .await;
    for chunk in messages.chunks(1000) {
        let mut acks = Vec::new();
        for (headers, payload) in chunk {
            acks.push(
                js.publish_with_headers(
                    "encounters.submitted",
                    headers.clone(),
                    payload.clone().into(),
                )
                .await
                .unwrap(),
            );
        }
        for ack in acks {
            ack.await.expect("stored");
        }
    }
}

pub async fn publish(js: &jetstream::Context, encounters: impl IntoIterator<Item = pb::Encounter>) {
    let messages = encounters
        .into_iter()
        .map(|e| {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Content-Type", "application/json");
            (headers, serde_json::to_vec(&e).unwrap())
        })
        .collect();
    publish_raw(js, messages).await;
}

/// The first success of `request` within `limit`, asking again every 500 ms: for JetStream API
/// requests, which can time out while a cluster elects new leaders after losing a node.
pub async fn until_ok<T, E, F, Fut>(what: &str, limit: Duration, mut request: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let started = Instant::now();
    loop {
        match request().await {
            Ok(value) => return value,
            Err(error) if started.elapsed() < limit => {
                eprintln!("{what}: {error}; asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => panic!("{what}: {error}"),
        }
    }
}

pub async fn wait_until<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn stream_count(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

pub async fn wait_for_outcomes(js: &jetstream::Context, expected: u64, limit: Duration) {
    let started = Instant::now();
    loop {
        let count = stream_count(js, "CLAIMS").await;
        assert!(
            count <= expected,
            "more outcomes ({count}) than encounters ({expected})"
        );
        if count == expected {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "only {count} of {expected} outcomes within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every message of a stream: (subject, headers, payload).
pub async fn read_stream(js: &jetstream::Context, name: &str) -> Vec<async_nats::Message> {
    let what = format!("reading stream {name}");
    let (total, reader) = until_ok(&what, Duration::from_secs(30), || async {
        let stream = js.get_stream(name).await.map_err(|e| e.to_string())?;
        let total = stream.cached_info().state.messages as usize;
        let reader = stream
            .create_consumer(consumer::pull::Config {
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((total, reader))
    })
    .await;
    let mut out = Vec::with_capacity(total);
    let mut messages = reader.messages().await.unwrap();
    while out.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("reads")
            .unwrap()
            .unwrap();
        out.push(message.message);
    }
    out
}

// ---------------------------------------------------------------- an OTLP receiver

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_server::{MetricsService, MetricsServiceServer},
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use opentelemetry_proto::tonic::trace::v1::Span;

/// An in-process OTLP/gRPC collector keeping every export it receives.
#[derive(Clone, Default)]
pub struct OtlpReceiver {
    traces: std::sync::Arc<std::sync::Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: std::sync::Arc<std::sync::Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for OtlpReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl OtlpReceiver {
    /// Serves on a free loopback port; returns the receiver and its `http://` endpoint.
    pub async fn start() -> (OtlpReceiver, String) {
        let receiver = OtlpReceiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .add_service(MetricsServiceServer::new(receiver.clone()));
        tokio::spawn(
            router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (receiver, format!("http://{addr}"))
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.traces
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    pub fn trace_exports(&self) -> Vec<ExportTraceServiceRequest> {
        self.traces.lock().unwrap().clone()
    }

    pub fn metric_exports(&self) -> Vec<ExportMetricsServiceRequest> {
        self.metrics.lock().unwrap().clone()
    }
}

/// A span attribute's string value.
pub fn span_attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            Some(Value::IntValue(i)) => Some(i.to_string()),
            Some(Value::BoolValue(b)) => Some(b.to_string()),
            _ => None,
        })
}

/// A W3C `traceparent` with the given trace and parent span ids (hex), sampled.
pub fn traceparent(trace_id: &str, span_id: &str) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

/// (trace id, parent span id) of a `traceparent`.
pub fn parse_traceparent(value: &str) -> (String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {value}");
    (parts[1].to_owned(), parts[2].to_owned())
}

/// One sample's value from a Prometheus text exposition (`name{labels}` exactly as written).
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// Makes the next delivery of `encounter` to claimlint a redelivery: a first claimlint run
/// creates the streams and the durable consumer and stops; the encounter is published, taken
/// once by this test through that consumer and handed back.
pub async fn prepare_redelivery(nats_url: &str, encounter: &pb::Encounter) {
    let flags = pipeline_flags(nats_url);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut first = ClaimlintProcess::start(&flags);
    let addr = first.http_addr;
    wait_until(Duration::from_secs(30), || async move {
        http_get(addr, "/readyz").await.0 == 200
    })
    .await;
    first.sigterm();
    assert!(first.wait_exit(Duration::from_secs(15)).is_some());
    let js = connect(nats_url).await;
    publish(&js, [encounter.clone()]).await;
    let consumer: consumer::PullConsumer = js
        .get_stream("ENCOUNTERS")
        .await
        .unwrap()
        .get_consumer("claimlint")
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
    let taken = batch.next().await.expect("one message").unwrap();
    taken
        .ack_with(async_nats::jetstream::AckKind::Nak(None))
        .await
        .unwrap();
}

// ---------------------------------------------------------------- a real browser

/// Headless Debian Chromium driven through ChromeDriver's WebDriver HTTP API.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

fn installed(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var(variable).map_or_else(|_| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: install Debian's chromium and chromium-driver (scripts/test does) or set {variable}",
        path.display()
    );
    path
}

/// The body of an HTTP/1.1 answer once all of it has arrived (Content-Length or chunked).
fn complete_http_body(text: &str) -> Option<String> {
    let (head, body) = text.split_once("\r\n\r\n")?;
    let head = head.to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        let mut decoded = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n")?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                return Some(decoded);
            }
            decoded.push_str(after.get(..size)?);
            rest = after.get(size + 2..)?;
        }
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (body.len() >= length).then(|| body[..length].to_owned())
}

/// One WebDriver call: the `value` of its JSON answer.
fn webdriver(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    use std::io::Read;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // ChromeDriver keeps the connection open: read until the answer is complete.
    let mut response = Vec::new();
    let mut chunk = [0u8; 65536];
    let decoded = loop {
        let read = stream.read(&mut chunk).unwrap();
        response.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&response);
        if let Some(body) = complete_http_body(&text) {
            break body;
        }
        assert!(read > 0, "WebDriver closed mid-answer: {text}");
    };
    let answer: serde_json::Value = serde_json::from_str(&decoded)
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}: {decoded}"));
    answer["value"].clone()
}

impl Browser {
    pub fn start() -> Browser {
        let chromium = installed("CHROMIUM_BIN", "/usr/bin/chromium");
        let chromedriver = installed("CHROMEDRIVER_BIN", "/usr/bin/chromedriver");
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags that keep Chromium from reaching out of this closed network.
        let capabilities = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1400",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let session = webdriver(port, "POST", "/session", Some(&capabilities));
        let session = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
            .to_owned();
        Browser {
            driver,
            port,
            session,
            _profile: profile,
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        webdriver(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(&serde_json::json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub fn execute(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(&serde_json::json!({ "script": script, "args": [] })),
        )
    }

    /// A PNG of the window, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let encoded = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 PNG"))
            .expect("a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            webdriver(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            )
        }));
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
