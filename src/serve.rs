//! `claimlint serve`: load the rules, bind gRPC and HTTP, serve until told to stop, then drain
//! within a bounded grace period (tonic's own drain can wait forever on a stuck client).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

use crate::app::{App, Readiness};
use crate::config::{ConfigError, ServeConfig};
use crate::grpc::{self, GrpcError};
use crate::rules_source::{RulesLoadError, RulesSource};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] RulesLoadError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Grpc(#[from] GrpcError),
    #[error("HTTP server: {0}")]
    Http(#[source] std::io::Error),
    #[error("a server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
}

/// A started service: its bound addresses and a handle to stop it.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Starts the shutdown: health NOT_SERVING, then after the drain delay no new calls, then
    /// in-flight calls get at most the grace period.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until the service has stopped.
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task.await?
    }
}

/// Accepted gRPC connections, with TCP_NODELAY: without it a small answer waits for the
/// client's delayed ACK (Nagle), about 40 ms per call on Linux; `serve_with_incoming` does
/// not set it for us.
fn grpc_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Binds `addr`; returns the listener and the address it got (the port when `addr` asks for 0).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let bind_error = |source| ServeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

pub async fn start(config: ServeConfig) -> Result<Running, ServeError> {
    let (tls, tokens) = config.load_secrets()?;
    let rules_source = config.rules.clone();
    // Taken before the load: a change while loading is seen by the first watch check.
    let loaded_fingerprint = rules_source.fingerprint();
    let rules = rules_source.load()?;
    let ruleset_version = rules.version();
    let app = Arc::new(App::new(rules, config.nats.url.is_some()));
    let (grpc_listener, grpc_addr) = bind(config.grpc_addr).await?;
    let (http_listener, http_addr) = bind(config.http_addr).await?;
    let auth_tokens = tokens.as_ref().map_or(0, |t| t.len());
    let (router, health) = grpc::router(app.clone(), &config, tls.as_ref(), tokens).await?;
    tracing::info!(
        %grpc_addr,
        %http_addr,
        tls = tls.is_some(),
        mutual_tls = tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some()),
        auth_tokens,
        %ruleset_version,
        "claimlint serving"
    );

    let (grpc_stop, grpc_stopped) = oneshot::channel::<()>();
    let grpc_task = tokio::spawn(router.serve_with_incoming_shutdown(
        grpc_incoming(grpc_listener),
        async {
            let _ = grpc_stopped.await;
        },
    ));
    let (http_stop, http_stopped) = oneshot::channel::<()>();
    let http_server = axum::serve(http_listener, crate::http::router(app.clone()))
        .with_graceful_shutdown(async {
            let _ = http_stopped.await;
        });
    let http_task = tokio::spawn(async move { http_server.await });

    let sampler = tokio::spawn(sample_metrics(app.clone()));
    let reloader = tokio::spawn(reload_rules(
        app.clone(),
        rules_source,
        loaded_fingerprint,
        config.rules_watch_interval,
        listen_for_hangup(),
    ));

    let (consumer_stop, consumer_stopped) = tokio::sync::watch::channel(false);
    let nats_task = match config.nats.url.clone() {
        None => None,
        Some(url) => {
            let client = crate::nats::connect(&config.nats).await?;
            tracing::info!(nats_url = %crate::nats::redact_url(&url), "NATS configured; not ready until connected and set up");
            Some(tokio::spawn(run_nats(
                app.clone(),
                health.clone(),
                client,
                config.nats.clone(),
                consumer_stopped,
            )))
        }
    };

    let (stop, stopped) = oneshot::channel::<()>();
    let drain_delay = config.shutdown_drain_delay;
    let grace = config.shutdown_grace;
    let shutdown_app = app.clone();
    let task = tokio::spawn(async move {
        let _ = stopped.await;
        sampler.abort();
        reloader.abort();
        shutdown_app.begin_shutdown();
        health.set(false).await;
        tracing::info!(drain_delay = ?drain_delay, grace = ?grace, "shutting down: health is NOT_SERVING");
        tokio::time::sleep(drain_delay).await;
        let _ = grpc_stop.send(());
        let _ = http_stop.send(());
        let _ = consumer_stop.send(true);
        let nats = async {
            if let Some(task) = nats_task {
                let _ = task.await;
            }
        };
        match tokio::time::timeout(grace, async {
            (grpc_task.await, http_task.await, nats.await)
        })
        .await
        {
            Ok((grpc, http, ())) => {
                grpc?.map_err(|e| ServeError::Grpc(GrpcError::Serve(e)))?;
                http?.map_err(ServeError::Http)?;
                tracing::info!("stopped: every in-flight call was answered");
            }
            Err(_) => {
                tracing::warn!(grace = ?grace, "grace period over: exiting with calls still in flight")
            }
        }
        Ok(())
    });
    Ok(Running {
        grpc_addr,
        http_addr,
        app,
        stop: Some(stop),
        task,
    })
}

#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = tokio::sync::mpsc::Receiver<()>;

/// Listens for SIGHUP from now on (unhandled, SIGHUP would end the process).
fn listen_for_hangup() -> Option<Hangup> {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; rule data reloads only on file changes");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Reloads the rule data on SIGHUP and, with a watch interval, when its files change. The new
/// data is loaded and checked off the async workers, then swapped in atomically; on any error
/// the data in force stays.
async fn reload_rules(
    app: Arc<App>,
    source: RulesSource,
    loaded_fingerprint: Option<u64>,
    watch: Option<std::time::Duration>,
    mut hangup: Option<Hangup>,
) {
    let mut ticks = watch.map(|every| {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let mut seen = loaded_fingerprint;
    loop {
        let trigger = tokio::select! {
            Some(()) = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            } => "SIGHUP",
            () = async {
                match ticks.as_mut() {
                    Some(ticks) => { ticks.tick().await; }
                    None => std::future::pending().await,
                }
            } => "files changed",
        };
        let now = fingerprint(&source).await;
        if trigger == "files changed" && now == seen {
            continue;
        }
        seen = now;
        reload_once(&app, &source, trigger).await;
    }
}

/// The rule files' fingerprint, read off the async workers (a volume may be slow).
async fn fingerprint(source: &RulesSource) -> Option<u64> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || source.fingerprint())
        .await
        .unwrap_or(None)
}

async fn reload_once(app: &App, source: &RulesSource, trigger: &'static str) {
    let loading = source.clone();
    let kept = app.rules().version();
    match tokio::task::spawn_blocking(move || loading.load()).await {
        Ok(Ok(rules)) => {
            let (old_version, ruleset_version) = app.replace_rules(rules);
            app.metrics.rules_reloaded("loaded");
            tracing::info!(trigger, rules = %source.describe(), %old_version, %ruleset_version, "rule data reloaded");
        }
        Ok(Err(error)) => {
            app.metrics.rules_reloaded("refused");
            tracing::error!(
                trigger,
                rules = %source.describe(),
                error = %crate::telemetry::error_chain(&error),
                ruleset_version = %kept,
                "rule data reload refused; the data in force stays"
            );
        }
        Err(error) => {
            app.metrics.rules_reloaded("refused");
            tracing::error!(trigger, %error, ruleset_version = %kept, "rule data reload failed; the data in force stays");
        }
    }
}

/// How often the dashboard's totals are sampled for its rates.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

async fn sample_metrics(app: Arc<App>) {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    loop {
        ticks.tick().await;
        app.metrics.sample(std::time::Instant::now());
    }
}

/// Sets NATS up (retrying until the server answers), marks the service ready, consumes until
/// told to stop, and keeps the pending gauge current.
async fn run_nats(
    app: Arc<App>,
    health: grpc::Health,
    client: async_nats::Client,
    args: crate::config::NatsArgs,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut delay = std::time::Duration::from_millis(200);
    let setup = loop {
        match crate::nats::ensure(&client, &args).await {
            Ok(ready) => break ready,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "NATS not ready");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    };
    let crate::nats::Setup {
        consumer,
        services,
        exhausted,
        encounters,
    } = setup;
    let services_layout = services.layout();
    let pipeline = Arc::new(crate::nats::Pipeline::new(app.clone(), client, services));
    app.set_pipeline(pipeline.clone());
    // Health follows readiness from now on: SERVING once set up, NOT_SERVING while NATS is lost
    // (a publishing call would fail), SERVING again once the client has reconnected.
    let readiness = tokio::spawn(follow_readiness(app.clone(), health.clone()));
    tracing::info!(stream = %args.encounters_stream, consumer = %args.consumer, services_layout = ?services_layout, "NATS ready: consuming");
    let gauge_app = app.clone();
    let mut gauge_consumer = consumer.clone();
    let gauge = tokio::spawn(async move {
        loop {
            if let Ok(info) = gauge_consumer.info().await {
                gauge_app.metrics.set_consumer_pending(info.num_pending);
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
    let exhausted = tokio::spawn(crate::nats::run_exhausted(
        app.clone(),
        pipeline.clone(),
        exhausted,
        encounters,
        stop.clone(),
    ));
    crate::nats::run_consumer(app, pipeline, consumer, args, stop).await;
    let _ = exhausted.await;
    gauge.abort();
    readiness.abort();
}

/// Sets gRPC health from [`App::readiness`] now and whenever it changes (checked every second).
async fn follow_readiness(app: Arc<App>, health: grpc::Health) {
    let mut last = None;
    loop {
        let now = app.readiness();
        if last != Some(now) {
            if last.is_some() {
                match now {
                    Readiness::Ready => tracing::info!("ready again"),
                    not_ready => tracing::warn!(why = not_ready.describe(), "not ready"),
                }
            }
            // Shutting down sets NOT_SERVING itself, before its drain.
            if now != Readiness::ShuttingDown {
                health.set(now == Readiness::Ready).await;
            }
            last = Some(now);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run_until_signal(config: ServeConfig) -> Result<(), ServeError> {
    let mut running = start(config).await?;
    wait_for_signal().await;
    running.shutdown();
    running.wait().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn accepted_grpc_connections_do_not_wait_for_delayed_acks() {
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut incoming = grpc_incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap(), "TCP_NODELAY is set");
    }
}
