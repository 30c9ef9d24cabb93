//! The checks every day-2 action makes of the instances it names, in the API's order:
//! ids well formed and the caller's, no operation in progress, a state the action accepts,
//! not stopped without charging. The whole call is refused when one instance is; otherwise
//! every instance starts its operation.

use super::params::instance_ids;
use super::{Ctx, to_json};
use crate::error::{ApiError, ApiResult};
use crate::state::SimState;
use crate::state::instance::{Instance, InstanceState};
use crate::state::operation::{Change, Transition};

/// `UnsupportedOperation.InstanceState<State>` for an instance the action cannot act on now.
pub fn state_refusal(instance: &Instance) -> ApiError {
    ApiError::new(
        format!(
            "UnsupportedOperation.InstanceState{}",
            instance.state.code_suffix()
        ),
        format!(
            "The instance `{}` is {} and the operation is not supported in this state.",
            instance.id,
            instance.state.as_str()
        ),
    )
}

/// Whether StartInstances is the action: the only one a STOP_CHARGING instance accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCharging {
    Refuse,
    Allow,
}

/// Operation in progress, transitional or dead states, STOP_CHARGING.
fn check_ready(instance: &Instance, stop_charging: StopCharging) -> ApiResult<()> {
    if instance.is_operating() {
        return Err(ApiError::new(
            "OperationDenied.InstanceOperationInProgress",
            format!(
                "The instance `{}` is running another operation ({}); try again later.",
                instance.id,
                instance.latest_operation.as_deref().unwrap_or("unknown")
            ),
        ));
    }
    match instance.state {
        InstanceState::Running | InstanceState::Stopped => {}
        _ => return Err(state_refusal(instance)),
    }
    if stop_charging == StopCharging::Refuse && instance.is_stopped_without_charging() {
        return Err(ApiError::new(
            "UnsupportedOperation.StoppedModeStopCharging",
            format!(
                "The instance `{}` is stopped without charging (STOP_CHARGING): only \
                 StartInstances is supported until it runs again.",
                instance.id
            ),
        ));
    }
    Ok(())
}

/// For the actions that need a stopped instance unless `ForceStop` lets them stop it
/// themselves; a running one comes back RUNNING afterwards.
pub fn stopped_or_forced(instance: &Instance, force_stop: bool) -> ApiResult<Transition> {
    match instance.state {
        InstanceState::Running if force_stop => Ok(Transition {
            during: InstanceState::Stopping,
            ends_in: InstanceState::Running,
        }),
        InstanceState::Running => Err(ApiError::new(
            "UnsupportedOperation.InstanceStateRunning",
            format!(
                "The instance `{}` is running: stop it first or set `ForceStop` to true.",
                instance.id
            ),
        )),
        state => Ok(Transition::stays(state)),
    }
}

/// Checks every instance named, then starts the action on each with what `decide` says
/// (given the instance and the rest of the state, e.g. capacity). Answers the empty
/// response every day-2 action gives.
pub fn operate(
    ctx: &Ctx<'_>,
    state: &mut SimState,
    ids: &[String],
    stop_charging: StopCharging,
    decide: impl Fn(&Instance, &SimState) -> ApiResult<(Transition, Change)>,
) -> ApiResult<Vec<u8>> {
    if ids.is_empty() {
        return Err(ApiError::missing_parameter("InstanceIds"));
    }
    let ids = instance_ids(ids)?;
    let missing: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| owned(ctx, state, id).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::new(
            "InvalidInstanceId.NotFound",
            format!("No instance found: please check that the instance IDs `{missing:?}` exist."),
        ));
    }
    let mut plans = Vec::with_capacity(ids.len());
    for id in ids {
        let instance = owned(ctx, state, id).expect("checked above");
        check_ready(instance, stop_charging)?;
        plans.push((id.to_string(), decide(instance, state)?));
    }
    for (id, (transition, change)) in plans {
        state.begin_operation(
            &id,
            ctx.action.name(),
            ctx.request_id,
            ctx.now,
            transition,
            change,
        );
    }
    to_json(&serde_json::Map::new())
}

/// The caller's instance in the request's region.
pub fn owned<'s>(ctx: &Ctx<'_>, state: &'s SimState, id: &str) -> Option<&'s Instance> {
    state
        .store
        .get_owned(ctx.owner, id)
        .filter(|i| i.region == ctx.region)
}

/// A single `InstanceId` parameter, as ResetInstance and ResizeInstanceDisks take.
pub fn one_id(id: Option<String>) -> ApiResult<Vec<String>> {
    id.map(|id| vec![id])
        .ok_or_else(|| ApiError::missing_parameter("InstanceId"))
}
