//! The HTTP side: `/healthz` (alive), `/readyz` (rules loaded, not shutting down), `/metrics`
//! (Prometheus text), `/dashboard` (the built-in rejection dashboard) and `/dashboard/data`.

pub mod dashboard;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::{App, Readiness};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/dashboard", get(dashboard_page))
        .route("/dashboard/", get(dashboard_page))
        .route("/dashboard/data", get(dashboard_data))
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let version = app.rules().version();
    match app.readiness() {
        Readiness::Ready => (
            StatusCode::OK,
            format!("ready\nruleset_version {version}\n"),
        ),
        not_ready => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", not_ready.describe()),
        ),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}

/// The page may load nothing from elsewhere: its script and styles are inline and it talks
/// only to this server.
const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:";

async fn dashboard_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, DASHBOARD_CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        dashboard::PAGE,
    )
}

async fn dashboard_data(State(app): State<Arc<App>>) -> impl IntoResponse {
    let data = dashboard::data(&app.metrics, &app.rules(), std::time::Instant::now());
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(data))
}
