//! claimlint: a pre-bill validator for outpatient therapy claims.
//!
//! - [`core`]: the pure validation core (types, rule families, rule data).
//! - [`wire`]: proto/JSON ↔ core at the edge, shared by every transport.
//! - [`rules_source`]: rule data from the compiled-in `rules/` or `CLAIMLINT_RULES_DIR`.
//! - [`cli`]: the command-line verbs.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod cli;
pub mod core;
pub mod proto;
pub mod rules_source;
pub mod wire;
