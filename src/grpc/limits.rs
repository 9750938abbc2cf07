//! tonic answers a request above the decoding limit with OUT_OF_RANGE; the contract (§5) says
//! RESOURCE_EXHAUSTED. This layer rewrites that one status, in response headers (unary calls
//! fail trailers-only) and in trailers (a stream fails mid-way).

use std::task::{Context, Poll};

use http::HeaderMap;
use http_body_util::BodyExt;
use tonic::body::Body;

#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceExhaustedLayer;

impl<S> tower::Layer<S> for ResourceExhaustedLayer {
    type Service = ResourceExhausted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResourceExhausted { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ResourceExhausted<S> {
    inner: S,
}

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

fn rewrite(headers: &mut HeaderMap) {
    let too_large = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| {
            m.contains("message length too large") || m.contains("message%20length%20too%20large")
        });
    if too_large
        && headers
            .get("grpc-status")
            .is_some_and(|s| s == OUT_OF_RANGE)
    {
        headers.insert(
            "grpc-status",
            http::HeaderValue::from_static(RESOURCE_EXHAUSTED),
        );
    }
}

impl<S, Request> tower::Service<Request> for ResourceExhausted<S>
where
    S: tower::Service<Request, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            rewrite(response.headers_mut());
            Ok(response.map(|body| {
                Body::new(body.map_frame(|mut frame| {
                    if let Some(trailers) = frame.trailers_mut() {
                        rewrite(trailers);
                    }
                    frame
                }))
            }))
        })
    }
}
