//! Admin hooks that act on instances behind the API's back, for day-2 tests:
//! `POST /_sim/instances` creates an instance that already exists (to adopt),
//! `POST /_sim/instances/{id}/mutate` is a console edit, and
//! `POST /_sim/instances/{id}/operation` holds, fails or ends the operation in progress.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Sim;
use super::actions::{self, Action, Ctx};
use super::admin::{body, error};
use super::catalogue::Language;
use super::config::DEFAULT_SECRET_ID;
use super::state::SimState;
use super::state::instance::{InstanceState, StoppedMode, Tag};
use super::state::operation::{Change, Transition};

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/instances/{id}/mutate", post(mutate))
        .route("/_sim/instances/{id}/operation", post(operation))
}

/// A request id that is nobody's API call, as a console edit leaves behind.
fn foreign_request_id() -> String {
    format!("console-{}", uuid::Uuid::new_v4())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Create {
    secret_id: Option<String>,
    region: Option<String>,
    /// RUNNING (default) or STOPPED.
    state: Option<String>,
    /// RunInstances parameters, validated as the API validates them.
    #[serde(default)]
    request: Value,
}

pub(super) async fn create(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Response {
    let request: Create = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let stopped = match request.state.as_deref() {
        None | Some("RUNNING") => false,
        Some("STOPPED") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state must be RUNNING or STOPPED, not {other}"),
            );
        }
    };
    let owner = request
        .secret_id
        .unwrap_or_else(|| DEFAULT_SECRET_ID.into());
    let region = request.region.unwrap_or_else(|| "ap-guangzhou".into());
    let mut params = match request.request {
        Value::Null => json!({}),
        other => other,
    };
    if let Value::Object(map) = &mut params {
        map.remove("InstanceCount");
        map.remove("MinCount");
        map.entry("ImageId")
            .or_insert_with(|| json!("img-eb30mz89"));
        map.entry("Placement")
            .or_insert_with(|| json!({"Zone": format!("{region}-3")}));
    }
    let request_id = foreign_request_id();
    let now = Instant::now();
    let mut state = sim.lock();
    state.advance(now);
    let ctx = Ctx {
        action: Action::RunInstances,
        owner: &owner,
        region: &region,
        language: Language::from_header(None),
        request_id: &request_id,
        now,
    };
    let answer = match actions::handle(ctx.action, &ctx, &mut state, params) {
        Ok(answer) => answer,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let ids: Value = serde_json::from_slice(&answer).unwrap_or_default();
    let Some(id) = ids["InstanceIdSet"][0].as_str().map(str::to_string) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "no instance was created");
    };
    settle_existing(&mut state, &id, stopped);
    tracing::info!(instance = %id, "pre-existing instance created");
    Json(json!({ "InstanceId": id })).into_response()
}

/// An instance that has been there a while: launched, with its public IP, maybe stopped.
fn settle_existing(state: &mut SimState, id: &str, stopped: bool) {
    let needs_ip = state
        .store
        .get(id)
        .is_some_and(|i| i.wants_public_ip && i.public_ip.is_none());
    let ip = needs_ip.then(|| state.public_ips.allocate());
    if let Some(instance) = state.store.get_mut(id) {
        instance.state = if stopped {
            InstanceState::Stopped
        } else {
            InstanceState::Running
        };
        instance.stopped_mode = stopped.then_some(StoppedMode::KeepCharging);
        instance.latest_operation_state = Some("SUCCESS".into());
        if ip.is_some() {
            instance.public_ip = ip;
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mutate {
    instance_name: Option<String>,
    security_group_ids: Option<Vec<String>>,
    instance_type: Option<String>,
    /// Replaces every tag.
    tags: Option<Vec<Tag>>,
    /// RUNNING or STOPPED (KEEP_CHARGING).
    state: Option<String>,
    internet_max_bandwidth_out: Option<i64>,
    project_id: Option<i64>,
    image_id: Option<String>,
}

/// A console edit: applied at once, bypassing the API's rules, and leaving a foreign
/// `LatestOperationRequestId` (tags alone go through the Tag service and leave none).
async fn mutate(State(sim): State<Arc<Sim>>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let edit: Mutate = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let new_spec = match edit.instance_type.as_deref() {
        Some(t) => match crate::pricing::InstanceTypeSpec::parse(t) {
            Ok(spec) => Some(spec),
            Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
        },
        None => None,
    };
    let mut state = sim.lock();
    state.advance(Instant::now());
    let Some(instance) = state.store.get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no instance {id}"));
    };
    if instance.is_operating() {
        return error(
            StatusCode::CONFLICT,
            format!("{id} has an operation in progress"),
        );
    }
    let wants_ip = instance.wants_public_ip;
    if let Some(tags) = edit.tags {
        state.store.set_tags(&id, tags);
    }
    let ip = match edit.state.as_deref() {
        Some("RUNNING") if wants_ip => Some(state.public_ips.allocate()),
        _ => None,
    };
    let instance = state.store.get_mut(&id).expect("checked above");
    let mut action = None;
    if let Some(name) = edit.instance_name {
        instance.name = name;
        action = Some("ModifyInstancesAttribute");
    }
    if let Some(groups) = edit.security_group_ids {
        instance.security_group_ids = groups;
        action = Some("ModifyInstancesAttribute");
    }
    if let (Some(instance_type), Some(spec)) = (edit.instance_type, new_spec) {
        instance.instance_type = instance_type;
        instance.cpu = spec.cpu;
        instance.memory_gib = spec.memory_gib;
        action = Some("ResetInstancesType");
    }
    if let Some(mbps) = edit.internet_max_bandwidth_out {
        instance.internet_max_bandwidth_out = mbps;
        action = Some("ResetInstancesInternetMaxBandwidth");
    }
    if let Some(project) = edit.project_id {
        instance.project_id = project;
        action = Some("ModifyInstancesProject");
    }
    if let Some(image) = edit.image_id {
        instance.image_id = image;
        action = Some("ResetInstance");
    }
    match edit.state.as_deref() {
        None => {}
        Some("RUNNING") => {
            instance.state = InstanceState::Running;
            instance.stopped_mode = None;
            if instance.public_ip.is_none() {
                instance.public_ip = ip;
            }
            action = Some("StartInstances");
        }
        Some("STOPPED") => {
            instance.state = InstanceState::Stopped;
            instance.stopped_mode = Some(StoppedMode::KeepCharging);
            action = Some("StopInstances");
        }
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state must be RUNNING or STOPPED, not {other}"),
            );
        }
    }
    let request_id = foreign_request_id();
    if let Some(action) = action {
        instance.latest_operation = Some(action.into());
        instance.latest_operation_state = Some("SUCCESS".into());
        instance.latest_operation_request_id = Some(request_id.clone());
        instance.latest_operation_error_msg = None;
    }
    tracing::info!(instance = %id, ?action, "console edit");
    Json(json!({ "RequestId": action.map(|_| request_id) })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationControl {
    /// OPERATING (hold), FAILED or SUCCESS (end now).
    state: String,
    error_msg: Option<String>,
    /// For OPERATING without an operation in progress: the foreign one to start.
    action: Option<String>,
}

async fn operation(State(sim): State<Arc<Sim>>, Path(id): Path<String>, bytes: Bytes) -> Response {
    let control: OperationControl = match body(&bytes) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let now = Instant::now();
    let mut state = sim.lock();
    state.advance(now);
    let Some(instance) = state.store.get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no instance {id}"));
    };
    let in_progress = instance.operation.is_some();
    let current = instance.state;
    let done = match control.state.as_str() {
        "OPERATING" => {
            if !in_progress {
                // Someone else's operation, e.g. started in the console.
                let action = control
                    .action
                    .unwrap_or_else(|| "ModifyInstancesAttribute".into());
                state.begin_operation(
                    &id,
                    &action,
                    &foreign_request_id(),
                    now,
                    Transition::stays(current),
                    Change::Nothing,
                );
            }
            state.hold_operation(&id)
        }
        "FAILED" => state.fail_operation(
            &id,
            control
                .error_msg
                .as_deref()
                .unwrap_or("The operation failed (injected by cvm-sim)."),
        ),
        "SUCCESS" => state.complete_operation(&id),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state must be OPERATING, FAILED or SUCCESS, not {other}"),
            );
        }
    };
    if !done {
        return error(
            StatusCode::CONFLICT,
            format!("{id} has no operation in progress"),
        );
    }
    let instance = state.store.get(&id).expect("checked above");
    Json(json!({
        "LatestOperation": instance.latest_operation,
        "LatestOperationState": instance.latest_operation_state,
        "LatestOperationRequestId": instance.latest_operation_request_id,
    }))
    .into_response()
}
