//! claimlint: a pre-bill validator for outpatient therapy claims.
//!
//! - [`core`]: the pure validation core (types, rule families, rule data).
//! - [`wire`]: proto/JSON ↔ core at the edge, shared by every transport.
//! - [`rules_source`]: rule data from the compiled-in `rules/` or `CLAIMLINT_RULES_DIR`.
//! - [`app`]: what the transports share (rules in force, metrics, readiness).
//! - [`grpc`], [`http`], [`serve`]: the service; [`config`]: its settings.
//! - [`cli`]: the command-line verbs; [`telemetry`]: logs and metrics.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod cli;
pub mod config;
pub mod core;
pub mod grpc;
pub mod http;
pub mod nats;
pub mod proto;
pub mod rules_source;
pub mod serve;
pub mod telemetry;
pub mod wire;
