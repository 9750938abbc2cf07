//! `claimlint serve` configuration: flags and the environment variables of contract §6, read
//! once and checked at start-up. Secrets (tokens, keys) are read here and never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

/// A watch interval: a duration of at least a second (files are not checked more often).
fn parse_watch_interval(raw: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if interval < Duration::from_secs(1) {
        return Err(format!("`{raw}` is under a second"));
    }
    Ok(interval)
}

/// Every setting of the service. `Debug` prints no secret: it holds file paths, not contents.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// gRPC listen address.
    #[arg(long, env = "CLAIMLINT_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,
    /// HTTP listen address (/healthz, /readyz, /metrics).
    #[arg(long, env = "CLAIMLINT_HTTP_ADDR", default_value = "0.0.0.0:9464")]
    pub http_addr: SocketAddr,
    #[command(flatten)]
    pub rules: crate::rules_source::RulesSource,
    /// Also reload the rule data when its files change, checking this often (SIGHUP always
    /// reloads).
    #[arg(long, env = "CLAIMLINT_RULES_WATCH_INTERVAL", value_parser = parse_watch_interval)]
    pub rules_watch_interval: Option<Duration>,
    /// File with one bearer token per line; when set, every RPC but health needs one.
    #[arg(long, env = "CLAIMLINT_AUTH_TOKENS_FILE")]
    pub auth_tokens_file: Option<PathBuf>,
    /// PEM certificate chain of the server (TLS).
    #[arg(long, env = "CLAIMLINT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the server (TLS).
    #[arg(long, env = "CLAIMLINT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA that client certificates must chain to (mutual TLS).
    #[arg(long, env = "CLAIMLINT_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Largest decoded request message, in bytes (the NATS payload limit by default).
    #[arg(long, env = "CLAIMLINT_MAX_MESSAGE_BYTES", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Time limit for one unary call.
    #[arg(long, env = "CLAIMLINT_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Concurrent requests served per connection.
    #[arg(
        long,
        env = "CLAIMLINT_CONCURRENCY_PER_CONNECTION",
        default_value_t = 256
    )]
    pub concurrency_per_connection: usize,
    /// Responses a ValidateStream buffers ahead of a slow reader.
    #[arg(long, env = "CLAIMLINT_STREAM_BUFFER", default_value_t = 64)]
    pub stream_buffer: usize,
    /// HTTP/2 keep-alive ping interval.
    #[arg(long, env = "CLAIMLINT_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_interval: Duration,
    /// How long a keep-alive ping may go unanswered before the connection is closed.
    #[arg(long, env = "CLAIMLINT_HTTP2_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_timeout: Duration,
    /// After SIGTERM: how long health reports NOT_SERVING before new calls are refused (lets
    /// load balancers notice).
    #[arg(long, env = "CLAIMLINT_SHUTDOWN_DRAIN_DELAY", default_value = "2s", value_parser = humantime::parse_duration)]
    pub shutdown_drain_delay: Duration,
    /// After that: the most time in-flight calls get before the process exits anyway.
    #[arg(long, env = "CLAIMLINT_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Runtime worker threads (default: the CPUs this process may use, cgroup quota included).
    #[arg(long, env = "CLAIMLINT_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// NATS JetStream settings (contract §5, §9). NATS is on when `CLAIMLINT_NATS_URL` is set.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated; unset: NATS off.
    #[arg(long = "nats-url", env = "CLAIMLINT_NATS_URL")]
    pub url: Option<String>,
    /// NATS credentials file.
    #[arg(long = "nats-creds", env = "CLAIMLINT_NATS_CREDS")]
    pub creds: Option<PathBuf>,
    /// PEM CA for the NATS server's certificate (implies TLS).
    #[arg(long = "nats-tls-ca", env = "CLAIMLINT_NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate for NATS (with the key).
    #[arg(
        id = "nats_tls_cert",
        long = "nats-tls-cert",
        env = "CLAIMLINT_NATS_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM client key for NATS.
    #[arg(
        id = "nats_tls_key",
        long = "nats-tls-key",
        env = "CLAIMLINT_NATS_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,
    /// Input stream (subject `encounters.submitted`).
    #[arg(
        long = "nats-encounters-stream",
        env = "CLAIMLINT_NATS_ENCOUNTERS_STREAM",
        default_value = "ENCOUNTERS"
    )]
    pub encounters_stream: String,
    /// Output stream (subjects `claims.validated`, `claims.rejected`).
    #[arg(
        long = "nats-claims-stream",
        env = "CLAIMLINT_NATS_CLAIMS_STREAM",
        default_value = "CLAIMS"
    )]
    pub claims_stream: String,
    /// Dead-letter stream (subject `encounters.dead`).
    #[arg(
        long = "nats-dead-stream",
        env = "CLAIMLINT_NATS_DEAD_STREAM",
        default_value = "ENCOUNTERS_DEAD"
    )]
    pub dead_stream: String,
    /// Durable pull consumer shared by every instance.
    #[arg(
        long = "nats-consumer",
        env = "CLAIMLINT_NATS_CONSUMER",
        default_value = "claimlint"
    )]
    pub consumer: String,
    /// Key-value bucket remembering validated services (DUPLICATE_SERVICE).
    #[arg(
        long = "nats-services-bucket",
        env = "CLAIMLINT_NATS_SERVICES_BUCKET",
        default_value = "CLAIMLINT_SERVICES"
    )]
    pub services_bucket: String,
    /// How long a delivered message may stay unacknowledged before redelivery.
    #[arg(long = "nats-ack-wait", env = "CLAIMLINT_NATS_ACK_WAIT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub ack_wait: Duration,
    /// Deliveries of one message before it is dead-lettered.
    #[arg(
        long = "nats-max-deliver",
        env = "CLAIMLINT_NATS_MAX_DELIVER",
        default_value_t = 5
    )]
    pub max_deliver: i64,
    /// Unacknowledged messages the consumer may have out at once (all instances together).
    #[arg(
        long = "nats-max-ack-pending",
        env = "CLAIMLINT_NATS_MAX_ACK_PENDING",
        default_value_t = 1024
    )]
    pub max_ack_pending: i64,
    /// Replicas of the streams, the consumer and the bucket (3 in a cluster).
    #[arg(
        long = "nats-replicas",
        env = "CLAIMLINT_NATS_REPLICAS",
        default_value_t = 1
    )]
    pub replicas: usize,
    /// JetStream dedupe window; must cover ack_wait × max_deliver.
    #[arg(long = "nats-duplicate-window", env = "CLAIMLINT_NATS_DUPLICATE_WINDOW", default_value = "10m", value_parser = humantime::parse_duration)]
    pub duplicate_window: Duration,
    /// How long CLAIMS and ENCOUNTERS_DEAD keep messages.
    #[arg(long = "nats-retention", env = "CLAIMLINT_NATS_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub retention: Duration,
    /// Messages requested per pull.
    #[arg(
        long = "nats-batch",
        env = "CLAIMLINT_NATS_BATCH",
        default_value_t = 64
    )]
    pub batch: usize,
    /// Messages processed at once by this instance.
    #[arg(
        long = "nats-concurrency",
        env = "CLAIMLINT_NATS_CONCURRENCY",
        default_value_t = 64
    )]
    pub concurrency: usize,
}

impl NatsArgs {
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |setting, message: String| ConfigError::Invalid { setting, message };
        if self.url.is_none() {
            return Ok(());
        }
        if self.max_deliver < 1 {
            return Err(invalid(
                "CLAIMLINT_NATS_MAX_DELIVER",
                "must be at least 1".into(),
            ));
        }
        for (setting, at_least_one) in [
            ("CLAIMLINT_NATS_BATCH", self.batch >= 1),
            ("CLAIMLINT_NATS_CONCURRENCY", self.concurrency >= 1),
            ("CLAIMLINT_NATS_MAX_ACK_PENDING", self.max_ack_pending >= 1),
            ("CLAIMLINT_NATS_REPLICAS", self.replicas >= 1),
        ] {
            if !at_least_one {
                return Err(invalid(setting, "must be at least 1".into()));
            }
        }
        let horizon = self
            .ack_wait
            .saturating_mul(u32::try_from(self.max_deliver).unwrap_or(u32::MAX));
        if self.duplicate_window <= horizon {
            return Err(invalid(
                "CLAIMLINT_NATS_DUPLICATE_WINDOW",
                format!(
                    "{} does not cover the redelivery horizon ack_wait × max_deliver = {}: a late redelivery would publish a second outcome",
                    humantime::format_duration(self.duplicate_window),
                    humantime::format_duration(horizon)
                ),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid(
                "CLAIMLINT_NATS_TLS_CERT",
                "set both CLAIMLINT_NATS_TLS_CERT and CLAIMLINT_NATS_TLS_KEY, or neither".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
    #[error("{setting}: cannot read {path}: {source}")]
    Unreadable {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// TLS material read at start-up.
#[derive(Clone)]
pub struct TlsFiles {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// Bearer tokens, compared in constant time; never printed.
#[derive(Clone, Default)]
pub struct Tokens(Vec<Vec<u8>>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

impl Tokens {
    pub fn parse(text: &str) -> Tokens {
        Tokens(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(|line| line.as_bytes().to_vec())
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant time in the token's content: every configured token is compared in full.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |found, token| {
                found | token.as_slice().ct_eq(presented)
            })
            .into()
    }
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Unreadable {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

impl ServeConfig {
    /// Checks the values and reads the files they name.
    pub fn load_secrets(&self) -> Result<(Option<TlsFiles>, Option<Tokens>), ConfigError> {
        let invalid = |setting, message: &str| ConfigError::Invalid {
            setting,
            message: message.to_owned(),
        };
        if self.max_message_bytes < 1024 {
            return Err(invalid(
                "CLAIMLINT_MAX_MESSAGE_BYTES",
                "must be at least 1024",
            ));
        }
        if self.concurrency_per_connection == 0 {
            return Err(invalid(
                "CLAIMLINT_CONCURRENCY_PER_CONNECTION",
                "must be at least 1",
            ));
        }
        if self.stream_buffer == 0 {
            return Err(invalid("CLAIMLINT_STREAM_BUFFER", "must be at least 1"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("CLAIMLINT_REQUEST_TIMEOUT", "must be more than 0"));
        }
        self.nats.check()?;
        if self.worker_threads == Some(0) {
            return Err(invalid("CLAIMLINT_WORKER_THREADS", "must be at least 1"));
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert_pem: read("CLAIMLINT_TLS_CERT", cert)?,
                key_pem: read("CLAIMLINT_TLS_KEY", key)?,
                client_ca_pem: match &self.tls_client_ca {
                    Some(ca) => Some(read("CLAIMLINT_TLS_CLIENT_CA", ca)?),
                    None => None,
                },
            }),
            (None, None) if self.tls_client_ca.is_some() => {
                return Err(invalid(
                    "CLAIMLINT_TLS_CLIENT_CA",
                    "mutual TLS needs CLAIMLINT_TLS_CERT and CLAIMLINT_TLS_KEY",
                ));
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "CLAIMLINT_TLS_CERT",
                    "set both CLAIMLINT_TLS_CERT and CLAIMLINT_TLS_KEY, or neither",
                ));
            }
        };
        let tokens = match &self.auth_tokens_file {
            None => None,
            Some(path) => {
                let bytes = read("CLAIMLINT_AUTH_TOKENS_FILE", path)?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| invalid("CLAIMLINT_AUTH_TOKENS_FILE", "is not UTF-8 text"))?;
                let tokens = Tokens::parse(&text);
                if tokens.is_empty() {
                    return Err(invalid(
                        "CLAIMLINT_AUTH_TOKENS_FILE",
                        "holds no token: auth would refuse every call",
                    ));
                }
                Some(tokens)
            }
        };
        Ok((tls, tokens))
    }

    /// Worker threads: configured, else what the OS lets this process use (the standard
    /// library reads the cgroup CPU quota on Linux), not the host's core count.
    pub fn worker_threads(&self) -> usize {
        self.worker_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dedupe_window_must_cover_the_redelivery_horizon() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            nats: NatsArgs,
        }
        let parse = |args: &[&str]| {
            Wrapper::try_parse_from([&["x"], args].concat())
                .unwrap()
                .nats
        };
        // Defaults: 30 s × 5 = 150 s < 10 min.
        assert!(
            parse(&["--nats-url", "nats://127.0.0.1:4222"])
                .check()
                .is_ok()
        );
        let short = parse(&[
            "--nats-url",
            "nats://h:4222",
            "--nats-duplicate-window",
            "2m",
        ]);
        let error = short.check().unwrap_err().to_string();
        assert!(
            error.contains("CLAIMLINT_NATS_DUPLICATE_WINDOW") && error.contains("2m 30s"),
            "{error}"
        );
        // Off when no URL is set.
        assert!(parse(&["--nats-duplicate-window", "1s"]).check().is_ok());
    }

    /// Each count that must be at least 1 is named by its own variable when it is 0.
    #[test]
    fn a_zero_count_names_its_own_setting() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            nats: NatsArgs,
        }
        for (flag, setting) in [
            ("--nats-batch", "CLAIMLINT_NATS_BATCH"),
            ("--nats-concurrency", "CLAIMLINT_NATS_CONCURRENCY"),
            ("--nats-max-ack-pending", "CLAIMLINT_NATS_MAX_ACK_PENDING"),
            ("--nats-replicas", "CLAIMLINT_NATS_REPLICAS"),
            ("--nats-max-deliver", "CLAIMLINT_NATS_MAX_DELIVER"),
        ] {
            let args = Wrapper::try_parse_from(["x", "--nats-url", "nats://h:4222", flag, "0"])
                .unwrap()
                .nats;
            let error = args.check().unwrap_err().to_string();
            assert!(error.starts_with(setting), "{flag}: {error}");
        }
    }

    #[test]
    fn tokens_compare_whole_values() {
        let tokens = Tokens::parse("# comment\n  alpha-1 \n\nbeta-2\n");
        assert_eq!(tokens.len(), 2);
        assert!(tokens.accepts(b"alpha-1") && tokens.accepts(b"beta-2"));
        assert!(!tokens.accepts(b"alpha") && !tokens.accepts(b"alpha-12") && !tokens.accepts(b""));
        assert!(!format!("{tokens:?}").contains("alpha"));
    }
}
