//! Connecting (with retry, so the service starts before NATS) and creating the streams, the
//! durable consumer and the key-value bucket when absent.

use async_nats::jetstream::{self, consumer, kv, stream};

use super::{
    DEAD_SUBJECT, INPUT_SUBJECT, NatsError, REJECTED_SUBJECT, ServiceStore, VALIDATED_SUBJECT,
};
use crate::config::NatsArgs;

/// Connects in the background: the client retries until a server answers, and reconnects
/// after losing one.
pub async fn connect(args: &NatsArgs) -> Result<async_nats::Client, NatsError> {
    let url = args.url.clone().unwrap_or_default();
    let mut options = async_nats::ConnectOptions::new()
        .name("claimlint")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(|event| async move {
            tracing::info!(%event, "NATS connection event");
        });
    if let Some(creds) = &args.creds {
        options = options.credentials_file(creds).await.map_err(|e| {
            NatsError::Connect(format!("credentials file {}: {e}", creds.display()))
        })?;
    }
    if let Some(ca) = &args.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    options
        .connect(server_addrs(&url)?)
        .await
        .map_err(|e| NatsError::Connect(e.to_string()))
}

/// `nats://a:4222,nats://b:4222` → the servers to try.
pub fn server_addrs(urls: &str) -> Result<Vec<async_nats::ServerAddr>, NatsError> {
    urls.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse()
                .map_err(|e| NatsError::Connect(format!("`{url}`: {e}")))
        })
        .collect()
}

fn setup_error(what: &str) -> impl Fn(String) -> NatsError + '_ {
    move |message| NatsError::Setup {
        what: what.to_owned(),
        message,
    }
}

/// What `ensure` sets up.
pub struct Setup {
    pub consumer: consumer::PullConsumer,
    pub services: ServiceStore,
    /// Durable consumer of the captured max-deliveries advisories of the input consumer.
    pub exhausted: consumer::PullConsumer,
    pub encounters: stream::Stream,
}

/// The advisory JetStream sends when a message of the input consumer used up its deliveries.
pub fn max_deliveries_subject(args: &NatsArgs) -> String {
    format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
        args.encounters_stream, args.consumer
    )
}

/// Creates (or binds to) the three streams, the durable pull consumer, the bucket, and a
/// stream that keeps the max-deliveries advisories (so a message whose deliveries ran out
/// while no instance was alive is still dead-lettered).
pub async fn ensure(client: &async_nats::Client, args: &NatsArgs) -> Result<Setup, NatsError> {
    let js = jetstream::new(client.clone());
    // The input stream is a work queue: a message leaves it once claimlint has acknowledged it.
    let encounters = js
        .get_or_create_stream(stream::Config {
            name: args.encounters_stream.clone(),
            subjects: vec![INPUT_SUBJECT.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: args.replicas,
            duplicate_window: args.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| setup_error(&args.encounters_stream)(e.to_string()))?;
    // Outputs keep messages by limits so several downstream systems can each consume them.
    for (name, subjects) in [
        (
            &args.claims_stream,
            vec![VALIDATED_SUBJECT.to_owned(), REJECTED_SUBJECT.to_owned()],
        ),
        (&args.dead_stream, vec![DEAD_SUBJECT.to_owned()]),
    ] {
        js.get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects,
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: args.replicas,
            duplicate_window: args.duplicate_window,
            max_age: args.retention,
            ..Default::default()
        })
        .await
        .map_err(|e| setup_error(name)(e.to_string()))?;
    }
    let consumer: consumer::PullConsumer = encounters
        .get_or_create_consumer(
            &args.consumer,
            consumer::pull::Config {
                durable_name: Some(args.consumer.clone()),
                filter_subject: INPUT_SUBJECT.into(),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: args.ack_wait,
                max_deliver: args.max_deliver,
                max_ack_pending: args.max_ack_pending,
                num_replicas: args.replicas,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| setup_error(&args.consumer)(e.to_string()))?;
    let services = match js.get_key_value(&args.services_bucket).await {
        Ok(store) => store,
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: args.services_bucket.clone(),
                history: 1,
                storage: stream::StorageType::File,
                num_replicas: args.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| setup_error(&args.services_bucket)(e.to_string()))?,
    };
    let services = ServiceStore::open(services)
        .await
        .map_err(|e| setup_error(&args.services_bucket)(e.to_string()))?;
    let advisories_name = format!("{}_EXHAUSTED", args.encounters_stream);
    let advisories = js
        .get_or_create_stream(stream::Config {
            name: advisories_name.clone(),
            subjects: vec![max_deliveries_subject(args)],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: args.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| setup_error(&advisories_name)(e.to_string()))?;
    let exhausted: consumer::PullConsumer = advisories
        .get_or_create_consumer(
            &args.consumer,
            consumer::pull::Config {
                durable_name: Some(args.consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: args.ack_wait,
                num_replicas: args.replicas,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| setup_error(&advisories_name)(e.to_string()))?;
    Ok(Setup {
        consumer,
        services,
        exhausted,
        encounters,
    })
}
