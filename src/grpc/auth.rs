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
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        match presented {
            Some(token) if self.tokens.accepts(token.as_bytes()) => Ok(request),
            Some(_) => Err(Status::unauthenticated("the bearer token is not valid")),
            None => Err(Status::unauthenticated(
                "authorization: Bearer <token> is required",
            )),
        }
    }
}
