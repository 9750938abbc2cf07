//! Bearer-token auth: `authorization: Bearer <token>` against the configured tokens, compared
//! in constant time. Health is not behind it (probes carry no token).

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::config::Tokens;

/// Installed only when tokens are configured (without them the router has no interceptor).
#[derive(Clone, Debug)]
pub struct BearerAuth {
    tokens: Arc<Tokens>,
}

impl BearerAuth {
    pub fn new(tokens: Tokens) -> BearerAuth {
        BearerAuth {
            tokens: Arc::new(tokens),
        }
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` are Bearer.
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match presented {
            Some(token) if self.tokens.accepts(token.as_bytes()) => Ok(request),
            Some(_) => Err(Status::unauthenticated("the bearer token is not valid")),
            None => Err(Status::unauthenticated(
                "authorization: Bearer <token> is required",
            )),
        }
    }
}
