//! The admin API under `/_sim/` (no auth; the real API never serves this path): inspect
//! instances and counters, inject faults, change accounts, capacity, timing and limits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Sim;
use super::config::CapacityEntry;
use super::faults::FaultSpec;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/healthz", get(healthz))
        .route(
            "/_sim/instances",
            get(instances).post(super::admin_edits::create),
        )
        .route("/_sim/instances/{id}/reclaim", post(reclaim))
        .route("/_sim/counters", get(counters))
        .route("/_sim/counters/reset", post(reset_counters))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/launch-failures", post(launch_failures))
        .route("/_sim/accounts/{secret_id}/balance", post(set_balance))
        .route("/_sim/accounts/{secret_id}/quota", post(set_quota))
        .route("/_sim/capacity", post(set_capacity))
        .route("/_sim/timing", get(get_timing).post(set_timing))
        .route(
            "/_sim/rate-limits",
            get(get_rate_limits).post(set_rate_limits),
        )
        .merge(super::admin_edits::routes())
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn ok() -> Response {
    Json(json!({})).into_response()
}

/// Parses a JSON body; callers answer 400 with a JSON error instead of axum's plain text.
pub(super) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid body: {e}"))
}

async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn instances(State(sim): State<Arc<Sim>>) -> Response {
    let mut state = sim.lock();
    state.advance(Instant::now());
    let mut all: Vec<_> = state.store.all().collect();
    all.sort_by_key(|i| i.seq);
    let views: Vec<_> = all.into_iter().map(|i| i.admin_view()).collect();
    Json(json!({ "instances": views })).into_response()
}

async fn reclaim(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    let mut state = sim.lock();
    let now = Instant::now();
    state.advance(now);
    if !state.store.contains(&id) {
        return error(StatusCode::NOT_FOUND, format!("no instance {id}"));
    }
    state.begin_termination(&id, None, now);
    tracing::info!(instance = %id, "instance reclaimed");
    ok()
}

async fn counters(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().counters.clone()).into_response()
}

async fn reset_counters(State(sim): State<Arc<Sim>>) -> Response {
    sim.lock().counters.reset();
    ok()
}

async fn list_faults(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({ "faults": sim.lock().faults.rules() })).into_response()
}

async fn add_fault(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Response {
    let spec: FaultSpec = match body(&bytes) {
        Ok(spec) => spec,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if let Err(message) = spec.validate() {
        return error(StatusCode::BAD_REQUEST, message);
    }
    sim.lock().faults.add(spec);
    ok()
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> Response {
    let mut state = sim.lock();
    state.faults.clear();
    state.launch_failures.clear();
    ok()
}

#[derive(Deserialize)]
struct LaunchFailures {
    #[serde(default = "one")]
    count: u32,
    message: Option<String>,
}

fn one() -> u32 {
    1
}

async fn launch_failures(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Response {
    let request: LaunchFailures = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let message = request
        .message
        .unwrap_or_else(|| "Launch failed (injected by cvm-sim).".into());
    let mut state = sim.lock();
    for _ in 0..request.count {
        state.launch_failures.push_back(message.clone());
    }
    ok()
}

#[derive(Deserialize)]
struct Balance {
    balance: f64,
}

async fn set_balance(
    State(sim): State<Arc<Sim>>,
    Path(secret_id): Path<String>,
    bytes: Bytes,
) -> Response {
    let request: Balance = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if !request.balance.is_finite() {
        return error(StatusCode::BAD_REQUEST, "balance must be a finite number");
    }
    match sim.lock().accounts.get_mut(&secret_id) {
        Some(account) => {
            account.balance = request.balance;
            ok()
        }
        None => error(StatusCode::NOT_FOUND, format!("no account {secret_id}")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Quota {
    instance_quota: Option<u32>,
    spot_quota: Option<u32>,
}

async fn set_quota(
    State(sim): State<Arc<Sim>>,
    Path(secret_id): Path<String>,
    bytes: Bytes,
) -> Response {
    let request: Quota = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match sim.lock().accounts.get_mut(&secret_id) {
        Some(account) => {
            if let Some(q) = request.instance_quota {
                account.instance_quota = q;
            }
            if let Some(q) = request.spot_quota {
                account.spot_quota = q;
            }
            ok()
        }
        None => error(StatusCode::NOT_FOUND, format!("no account {secret_id}")),
    }
}

async fn set_capacity(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Response {
    let entry: CapacityEntry = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    sim.lock().capacity.set(&entry);
    ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimingUpdate {
    pending_seconds: Option<f64>,
    public_ip_delay_seconds: Option<f64>,
    terminating_seconds: Option<f64>,
    operation_seconds: Option<f64>,
}

async fn get_timing(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().timing).into_response()
}

async fn set_timing(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Response {
    let update: TimingUpdate = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut state = sim.lock();
    let mut timing = state.timing;
    if let Some(s) = update.pending_seconds {
        timing.pending_seconds = s;
    }
    if let Some(s) = update.public_ip_delay_seconds {
        timing.public_ip_delay_seconds = s;
    }
    if let Some(s) = update.terminating_seconds {
        timing.terminating_seconds = s;
    }
    if let Some(s) = update.operation_seconds {
        timing.operation_seconds = s;
    }
    if let Err(message) = timing.validate() {
        return error(StatusCode::BAD_REQUEST, message);
    }
    state.timing = timing;
    Json(timing).into_response()
}

async fn get_rate_limits(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().rate_limiter.limits().clone()).into_response()
}

async fn set_rate_limits(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Response {
    let limits: HashMap<String, u32> = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut state = sim.lock();
    state.rate_limiter.set_limits(limits);
    Json(state.rate_limiter.limits().clone()).into_response()
}
