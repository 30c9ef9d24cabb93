//! StartInstances, StopInstances and RebootInstances: STOPPED ↔ RUNNING through STARTING,
//! STOPPING and REBOOTING, each an asynchronous operation.

use serde::Deserialize;
use serde_json::Value;

use super::Ctx;
use super::guard::{StopCharging, operate, state_refusal};
use super::params::parse_known;
use crate::error::{ApiError, ApiResult};
use crate::state::SimState;
use crate::state::instance::{InstanceState, StoppedMode};
use crate::state::operation::{Change, Transition};

const STOP_TYPES: &[&str] = &["SOFT", "HARD", "SOFT_FIRST"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ids {
    #[serde(default)]
    instance_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Stop {
    #[serde(default)]
    instance_ids: Vec<String>,
    force_stop: Option<bool>,
    stop_type: Option<String>,
    stopped_mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reboot {
    #[serde(default)]
    instance_ids: Vec<String>,
    force_reboot: Option<bool>,
    stop_type: Option<String>,
}

pub fn start(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: Ids = parse_known(params, &["InstanceIds"])?;
    operate(
        ctx,
        state,
        &request.instance_ids,
        StopCharging::Allow,
        |instance, state| {
            if instance.state != InstanceState::Stopped {
                return Err(state_refusal(instance));
            }
            // STOP_CHARGING gave the CPU and memory back: starting needs them in stock again.
            if instance.is_stopped_without_charging()
                && state.capacity.available(
                    &instance.zone,
                    &instance.instance_type,
                    instance.charge.pool(),
                    1,
                ) == 0
            {
                return Err(ApiError::new(
                    "ResourceInsufficient.SpecifiedInstanceType",
                    format!(
                        "The instance type {} is insufficient in {}: `{}` was stopped without \
                         charging and cannot get its resources back now.",
                        instance.instance_type, instance.zone, instance.id
                    ),
                ));
            }
            Ok((
                Transition {
                    during: InstanceState::Starting,
                    ends_in: InstanceState::Running,
                },
                Change::Start,
            ))
        },
    )
}

pub fn stop(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: Stop = parse_known(
        params,
        &["InstanceIds", "ForceStop", "StopType", "StoppedMode"],
    )?;
    check_stop_type(
        request.force_stop,
        request.stop_type.as_deref(),
        "ForceStop",
    )?;
    let mode = match request.stopped_mode.as_deref() {
        None | Some("KEEP_CHARGING") => StoppedMode::KeepCharging,
        Some("STOP_CHARGING") => StoppedMode::StopCharging,
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "`StoppedMode` must be KEEP_CHARGING or STOP_CHARGING, got `{other}`."
            )));
        }
    };
    operate(
        ctx,
        state,
        &request.instance_ids,
        StopCharging::Refuse,
        |instance, _| {
            if instance.state != InstanceState::Running {
                return Err(state_refusal(instance));
            }
            if mode == StoppedMode::StopCharging {
                // "No charges when shut down" is for pay-as-you-go instances on cloud disks.
                if instance.charge.as_str() != "POSTPAID_BY_HOUR" {
                    return Err(ApiError::new(
                        "UnsupportedOperation.InstanceChargeType",
                        format!(
                            "STOP_CHARGING is only for pay-as-you-go instances; `{}` is {}.",
                            instance.id,
                            instance.charge.as_str()
                        ),
                    ));
                }
                if instance.system_disk.disk_type.starts_with("LOCAL")
                    || instance
                        .data_disks
                        .iter()
                        .any(|d| d.disk_type.starts_with("LOCAL"))
                {
                    return Err(ApiError::new(
                        "UnsupportedOperation.StoppedModeStopCharging",
                        format!(
                            "STOP_CHARGING is not supported for `{}`: it has local disks.",
                            instance.id
                        ),
                    ));
                }
            }
            Ok((
                Transition {
                    during: InstanceState::Stopping,
                    ends_in: InstanceState::Stopped,
                },
                Change::Stop(mode),
            ))
        },
    )
}

pub fn reboot(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: Reboot = parse_known(params, &["InstanceIds", "ForceReboot", "StopType"])?;
    check_stop_type(
        request.force_reboot,
        request.stop_type.as_deref(),
        "ForceReboot",
    )?;
    operate(
        ctx,
        state,
        &request.instance_ids,
        StopCharging::Refuse,
        |instance, _| match instance.state {
            InstanceState::Running => Ok((
                Transition {
                    during: InstanceState::Rebooting,
                    ends_in: InstanceState::Running,
                },
                Change::Nothing,
            )),
            _ => Err(state_refusal(instance)),
        },
    )
}

/// `StopType` is one of three values and replaces the deprecated force flag: not both.
fn check_stop_type(
    force: Option<bool>,
    stop_type: Option<&str>,
    force_name: &str,
) -> ApiResult<()> {
    if let Some(stop_type) = stop_type {
        if force.is_some() {
            return Err(ApiError::invalid_combination(format!(
                "`{force_name}` and `StopType` cannot be specified at the same time."
            )));
        }
        if !STOP_TYPES.contains(&stop_type) {
            return Err(ApiError::invalid_value(format!(
                "`StopType` must be one of {STOP_TYPES:?}, got `{stop_type}`."
            )));
        }
    }
    Ok(())
}
