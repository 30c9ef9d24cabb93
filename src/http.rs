//! The operator's HTTP endpoints: `/metrics` for Prometheus, `/healthz` and `/readyz` for the
//! kubelet.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
pub struct Endpoints {
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
}

pub fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(endpoints)
}

/// Binds `addr` (port 0 picks a free port) and returns the address actually bound, so that
/// callers can log it before serving.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(endpoints))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &endpoints.registry) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The process is alive and serving.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once the controller's watch has synced. A standby replica runs no controller; it is
/// ready as it is, and the `cvm_operator_leader` gauge tells the two apart.
async fn readyz(State(endpoints): State<Endpoints>) -> (StatusCode, &'static str) {
    let metrics = &endpoints.metrics;
    if !metrics.is_leader() {
        (StatusCode::OK, "ready (standby)\n")
    } else if metrics.watch_synced() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the CvmInstance watch has not synced yet\n",
        )
    }
}
