//! The real tonic server on a real port, talked to with the generated client.

mod support;

use std::time::Duration;

use claimlint::proto::v1 as pb;
use claimlint::proto::v1::claim_validator_client::ClaimValidatorClient;
use support::*;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_types::StatusExt;

async fn client(addr: std::net::SocketAddr) -> ClaimValidatorClient<Channel> {
    ClaimValidatorClient::connect(format!("http://{addr}"))
        .await
        .expect("connects")
}

fn request(encounter: pb::Encounter) -> pb::ValidateRequest {
    pb::ValidateRequest {
        encounter: Some(encounter),
        dry_run: true,
    }
}

async fn health_of(addr: std::net::SocketAddr, service: &str) -> Result<i32, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    let mut health = HealthClient::new(channel);
    health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_answers_validated_and_rejected_claims_ok() {
    let server = spawn_server(&[]).await;
    let mut client = client(server.grpc_addr).await;

    let valid = client
        .validate(request(recent_seed_visit()))
        .await
        .expect("OK")
        .into_inner();
    let outcome = valid.outcome.unwrap();
    assert_eq!(
        outcome.status,
        pb::Status::Validated as i32,
        "{:#?}",
        outcome.reasons
    );
    assert!(
        outcome
            .reasons
            .iter()
            .all(|r| r.severity != pb::Severity::Error as i32)
    );
    assert_eq!(outcome.claim.unwrap().total_units, 3);
    assert_eq!(outcome.units.unwrap().allowed_timed_units, 3);
    assert!(!valid.published);

    let mut rejected = recent_seed_visit();
    rejected.service_lines[1].modifiers = vec!["GP".into()];
    let outcome = client
        .validate(request(rejected))
        .await
        .expect("a rejection is OK")
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(outcome.status, pb::Status::Rejected as i32);
    assert!(
        outcome
            .reasons
            .iter()
            .any(|r| r.code == "NCCI_PTP_MODIFIER_REQUIRED"
                && r.field == "service_lines[1].modifiers")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_through_one_stream_come_back_in_order() {
    let server = spawn_server(&[]).await;
    let mut client = client(server.grpc_addr).await;
    let seed = recent_seed_visit();
    const COUNT: usize = 10_000;
    let requests = tokio_stream::iter((0..COUNT).map(move |i| {
        let mut encounter = seed.clone();
        encounter.encounter_id = format!("stream-{i}");
        if i.is_multiple_of(3) {
            encounter.rendering_provider.as_mut().unwrap().npi = "1234567890".into();
        }
        request(encounter)
    }));
    let mut responses = client
        .validate_stream(requests)
        .await
        .expect("stream opens")
        .into_inner();
    let mut received = 0usize;
    while let Some(response) = responses.message().await.expect("every answer is OK") {
        let outcome = response.outcome.unwrap();
        assert_eq!(
            outcome.encounter_id,
            format!("stream-{received}"),
            "in order"
        );
        let expected = if received.is_multiple_of(3) {
            pb::Status::Rejected
        } else {
            pb::Status::Validated
        };
        assert_eq!(outcome.status, expected as i32, "{received}");
        received += 1;
    }
    assert_eq!(received, COUNT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_rules_returns_the_whole_catalogue() {
    let server = spawn_server(&[]).await;
    let rules = client(server.grpc_addr)
        .await
        .list_rules(pb::ListRulesRequest {})
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<&str> = rules.rules.iter().map(|r| r.code.as_str()).collect();
    let all: Vec<&str> = claimlint::core::reason::ReasonCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(codes, all);
    assert_eq!(rules.ruleset_version, server.app.rules().version());
    assert!(rules.data.iter().any(|t| t.table == "icd10cm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_argument_only_without_encounter_or_id_with_the_field_violation() {
    let server = spawn_server(&[]).await;
    let mut client = client(server.grpc_addr).await;
    let status = client
        .validate(pb::ValidateRequest {
            encounter: None,
            dry_run: true,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "encounter");

    let mut no_id = recent_seed_visit();
    no_id.encounter_id = "  ".into();
    let status = client.validate(request(no_id)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.get_details_bad_request().unwrap().field_violations[0].field,
        "encounter.encounter_id"
    );

    // More service lines than one claim carries (thousands would cost seconds of CPU in the
    // pairwise edits), and an id that cannot go into a header.
    let mut many_lines = recent_seed_visit();
    let line = many_lines.service_lines[0].clone();
    many_lines.service_lines = vec![line; 8_000];
    let mut line_break = recent_seed_visit();
    line_break.encounter_id = "e-1\nX-Injected: 1".into();
    for (visit, field) in [
        (many_lines, "encounter.service_lines"),
        (line_break, "encounter.encounter_id"),
    ] {
        let status = client.validate(request(visit)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(
            status.get_details_bad_request().unwrap().field_violations[0].field,
            field
        );
    }

    // Anything else wrong is an outcome, not an error.
    let outcome = client
        .validate(request(pb::Encounter {
            encounter_id: "bare".into(),
            ..Default::default()
        }))
        .await
        .expect("OK")
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(outcome.status, pb::Status::Rejected as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_mebibyte_request_is_resource_exhausted() {
    let server = spawn_server(&[]).await;
    let mut client = client(server.grpc_addr).await;
    let mut huge = recent_seed_visit();
    huge.patient_id = "p".repeat(2 * 1024 * 1024);
    let status = client.validate(request(huge.clone())).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // In a stream too, after the answers to the requests before it.
    let requests = tokio_stream::iter(vec![request(recent_seed_visit()), request(huge)]);
    let mut responses = client.validate_stream(requests).await.unwrap().into_inner();
    assert!(responses.message().await.expect("first answer").is_some());
    let status = responses.message().await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // The service is still healthy and answering.
    assert!(client.validate(request(recent_seed_visit())).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_guard_every_rpc_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "# billing pipeline\ns3cret-token-1\nother-token-2\n",
    )
    .unwrap();
    let server = spawn_server(&["--auth-tokens-file", tokens.to_str().unwrap()]).await;
    let mut client = client(server.grpc_addr).await;

    let status = client
        .validate(request(recent_seed_visit()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut wrong = tonic::Request::new(request(recent_seed_visit()));
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer s3cret-token-X".parse().unwrap());
    assert_eq!(
        client.validate(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut list = tonic::Request::new(pb::ListRulesRequest {});
    list.metadata_mut()
        .insert("authorization", "Basic s3cret-token-1".parse().unwrap());
    assert_eq!(
        client.list_rules(list).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // The scheme in any case (RFC 9110 §11.1).
    for authorization in [
        "Bearer other-token-2",
        "bearer other-token-2",
        "BEARER s3cret-token-1",
    ] {
        let mut right = tonic::Request::new(request(recent_seed_visit()));
        right
            .metadata_mut()
            .insert("authorization", authorization.parse().unwrap());
        assert!(client.validate(right).await.is_ok(), "{authorization}");
    }

    // Reflection describes the service, so it sits behind the tokens too.
    assert_eq!(
        list_services_by_reflection(server.grpc_addr, None)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let services = list_services_by_reflection(server.grpc_addr, Some("Bearer s3cret-token-1"))
        .await
        .unwrap();
    assert!(
        services.iter().any(|n| n == "claimlint.v1.ClaimValidator"),
        "{services:?}"
    );

    assert_eq!(
        health_of(server.grpc_addr, "").await.unwrap(),
        ServingStatus::Serving as i32
    );
}

/// One reflection exchange: the answers to `asks`, in order, sent with `authorization` when
/// given.
async fn reflect(
    addr: std::net::SocketAddr,
    authorization: Option<&str>,
    asks: Vec<MessageRequest>,
) -> Result<Vec<MessageResponse>, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let count = asks.len();
    let requests: Vec<ServerReflectionRequest> = asks
        .into_iter()
        .map(|message| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message),
        })
        .collect();
    let mut request = tonic::Request::new(tokio_stream::iter(requests));
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(request)
        .await?
        .into_inner();
    let mut answers = Vec::with_capacity(count);
    while answers.len() < count {
        let response = responses
            .message()
            .await?
            .expect("an answer to every request");
        answers.push(response.message_response.expect("a message in the answer"));
    }
    Ok(answers)
}

/// The service names reflection lists, sent with `authorization` when given.
async fn list_services_by_reflection(
    addr: std::net::SocketAddr,
    authorization: Option<&str>,
) -> Result<Vec<String>, tonic::Status> {
    let asks = vec![MessageRequest::ListServices(String::new())];
    match reflect(addr, authorization, asks).await?.as_slice() {
        [MessageResponse::ListServicesResponse(list)] => {
            Ok(list.service.iter().map(|s| s.name.clone()).collect())
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_service_and_serves_its_descriptors() {
    let server = spawn_server(&[]).await;
    let names = list_services_by_reflection(server.grpc_addr, None)
        .await
        .unwrap();
    for expected in ["claimlint.v1.ClaimValidator", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    let asks = vec![MessageRequest::FileContainingSymbol(
        "claimlint.v1.ClaimValidator".into(),
    )];
    match reflect(server.grpc_addr, None, asks)
        .await
        .unwrap()
        .as_slice()
    {
        [MessageResponse::FileDescriptorResponse(files)] => {
            use prost::Message;
            let names: Vec<String> = files
                .file_descriptor_proto
                .iter()
                .map(|bytes| {
                    prost_types::FileDescriptorProto::decode(bytes.as_slice())
                        .unwrap()
                        .name()
                        .to_owned()
                })
                .collect();
            assert!(
                names.iter().any(|n| n == "claimlint/v1/claimlint.proto"),
                "{names:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_then_not_serving_during_shutdown() {
    // A drain delay long enough to look at health during it on a busy machine.
    let mut server = spawn_server(&["--shutdown-drain-delay", "5s"]).await;
    let addr = server.grpc_addr;
    for service in ["", claimlint::grpc::SERVICE_NAME] {
        assert_eq!(
            health_of(addr, service).await.unwrap(),
            ServingStatus::Serving as i32
        );
    }
    assert_eq!(http_get(server.http_addr, "/readyz").await.0, 200);
    server.shutdown();
    for service in ["", claimlint::grpc::SERVICE_NAME] {
        wait_until(Duration::from_secs(4), || async {
            health_of(addr, service).await.ok() == Some(ServingStatus::NotServing as i32)
        })
        .await;
    }
    assert_eq!(http_get(server.http_addr, "/readyz").await.0, 503);
    tokio::time::timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("stops")
        .expect("cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_answer() {
    let server = spawn_server(&[]).await;
    client(server.grpc_addr)
        .await
        .validate(request(recent_seed_visit()))
        .await
        .unwrap();
    let (status, body) = http_get(server.http_addr, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = http_get(server.http_addr, "/readyz").await;
    assert_eq!(status, 200);
    assert!(body.contains(&server.app.rules().version()), "{body}");
    let (status, body) = http_get(server.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"claimlint_encounters_total{source="grpc",status="validated"} 1"#),
        "{body}"
    );
    assert!(
        body.contains("claimlint_validation_duration_seconds_bucket"),
        "{body}"
    );
}

/// A CA, a server certificate for `localhost` and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn generate() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "claimlint test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.extended_key_usages = vec![usage];
            params.distinguished_name.push(DnType::CommonName, name);
            (
                params.signed_by(&key, &issuer).unwrap().pem(),
                key.serialize_pem(),
            )
        };
        let (server_cert, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) =
            leaf("billing-pipeline", ExtendedKeyUsagePurpose::ClientAuth);
        for (name, pem) in [
            ("ca.pem", ca_cert.pem()),
            ("server.pem", server_cert),
            ("server.key", server_key),
            ("client.pem", client_cert),
            ("client.key", client_key),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(name)).unwrap()
    }

    async fn connect(
        &self,
        addr: std::net::SocketAddr,
        with_client_cert: bool,
    ) -> Result<Channel, tonic::transport::Error> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.read("ca.pem")))
            .domain_name("localhost");
        if with_client_cert {
            tls = tls.identity(Identity::from_pem(
                self.read("client.pem"),
                self.read("client.key"),
            ));
        }
        Channel::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_handshakes() {
    let pki = Pki::generate();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );

    let tls = spawn_server(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let channel = pki
        .connect(tls.grpc_addr, false)
        .await
        .expect("TLS handshake");
    let outcome = ClaimValidatorClient::new(channel)
        .validate(request(recent_seed_visit()))
        .await
        .expect("OK over TLS");
    assert!(outcome.into_inner().outcome.is_some());
    // A plaintext client gets nothing from a TLS port.
    let plaintext = client_or_error(tls.grpc_addr).await;
    assert!(plaintext.is_err(), "plaintext call succeeded on a TLS port");

    let mutual = spawn_server(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
    ])
    .await;
    let channel = pki
        .connect(mutual.grpc_addr, true)
        .await
        .expect("mTLS handshake");
    assert!(
        ClaimValidatorClient::new(channel)
            .validate(request(recent_seed_visit()))
            .await
            .is_ok()
    );
    // Without a client certificate the server refuses: at the handshake or the first call.
    let refused = match pki.connect(mutual.grpc_addr, false).await {
        Err(_) => true,
        Ok(channel) => ClaimValidatorClient::new(channel)
            .validate(request(recent_seed_visit()))
            .await
            .is_err(),
    };
    assert!(
        refused,
        "a client without a certificate was served under mTLS"
    );
}

async fn client_or_error(addr: std::net::SocketAddr) -> Result<(), String> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap();
    let channel = tokio::time::timeout(Duration::from_secs(5), channel.connect())
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(
        Duration::from_secs(5),
        ClaimValidatorClient::new(channel).validate(request(recent_seed_visit())),
    )
    .await
    .map_err(|_| "timeout".to_owned())?
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[test]
fn bad_configuration_is_refused_at_start_with_a_clear_message() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--tls-cert", "/nonexistent/cert.pem"],
            "set both CLAIMLINT_TLS_CERT and CLAIMLINT_TLS_KEY",
        ),
        (
            &["--tls-client-ca", "/nonexistent/ca.pem"],
            "mutual TLS needs CLAIMLINT_TLS_CERT",
        ),
        (
            &["--auth-tokens-file", "/nonexistent/tokens"],
            "CLAIMLINT_AUTH_TOKENS_FILE: cannot read /nonexistent/tokens",
        ),
        (
            &["--max-message-bytes", "10"],
            "CLAIMLINT_MAX_MESSAGE_BYTES: must be at least 1024",
        ),
    ];
    for (flags, message) in cases {
        let error = serve_config(flags).load_secrets().unwrap_err();
        assert!(error.to_string().contains(message), "{flags:?}: {error}");
    }
    // A value clap cannot parse names the variable.
    let output = claimlint()
        .args(["serve", "--grpc-addr", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--grpc-addr"),
        "{}",
        stderr(&output)
    );
    // A watch interval under a second would poll the volume without pause.
    let output = claimlint()
        .args(["serve", "--rules-watch-interval", "0s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--rules-watch-interval")
            && stderr(&output).contains("under a second"),
        "{}",
        stderr(&output)
    );
}
