//! Changes that need a stopped instance, or `ForceStop` to let the API stop it:
//! ResetInstancesType, ResetInstancesPassword, Associate/DisassociateInstancesKeyPairs and
//! ResizeInstanceDisks (which may also grow online).

use serde::Deserialize;
use serde_json::Value;

use super::guard::{StopCharging, one_id, operate, stopped_or_forced};
use super::params::{is_resource_id, parse_known, required};
use super::run::is_valid_linux_password;
use super::{Action, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::pricing::InstanceTypeSpec;
use crate::state::SimState;
use crate::state::instance::InstanceState;
use crate::state::operation::{Change, Transition};

const MAX_KEY_IDS: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResetType {
    #[serde(default)]
    instance_ids: Vec<String>,
    instance_type: Option<String>,
    force_stop: Option<bool>,
}

pub fn reset_type(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: ResetType = parse_known(params, &["InstanceIds", "InstanceType", "ForceStop"])?;
    if request.instance_ids.len() > 1 {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!(
                "ResetInstancesType takes one instance per call, {} were given.",
                request.instance_ids.len()
            ),
        ));
    }
    let instance_type = required(request.instance_type, "InstanceType")?;
    let spec = InstanceTypeSpec::parse(&instance_type)?;
    let force_stop = request.force_stop.unwrap_or(false);
    operate(
        ctx,
        state,
        &request.instance_ids,
        StopCharging::Refuse,
        |instance, state| {
            let transition = stopped_or_forced(instance, force_stop)?;
            let current = InstanceTypeSpec::parse(&instance.instance_type)?;
            if instance.charge.is_spot() && current.family != spec.family {
                return Err(ApiError::new(
                    "UnsupportedOperation.UnsupportedChangeInstanceFamily",
                    format!(
                        "A spot instance cannot change family ({} to {}).",
                        current.family, spec.family
                    ),
                ));
            }
            if state
                .capacity
                .available(&instance.zone, &instance_type, instance.charge.pool(), 1)
                == 0
            {
                return Err(ApiError::new(
                    "ResourceInsufficient.SpecifiedInstanceType",
                    format!(
                        "The specified instance type {instance_type} is insufficient in {}.",
                        instance.zone
                    ),
                ));
            }
            // Configuration changes end with the instance running, stopped before or not.
            let transition = Transition {
                during: if transition.during == InstanceState::Stopped {
                    InstanceState::Starting
                } else {
                    transition.during
                },
                ends_in: InstanceState::Running,
            };
            Ok((
                transition,
                Change::InstanceType {
                    instance_type: instance_type.clone(),
                    cpu: spec.cpu,
                    memory_gib: spec.memory_gib,
                },
            ))
        },
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResetPassword {
    #[serde(default)]
    instance_ids: Vec<String>,
    password: Option<String>,
    force_stop: Option<bool>,
}

pub fn reset_password(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: ResetPassword = parse_known(
        params,
        &["InstanceIds", "Password", "UserName", "ForceStop"],
    )?;
    let password = required(request.password, "Password")?;
    if !is_valid_linux_password(&password) {
        return Err(ApiError::new(
            "InvalidParameterValue.InvalidPassword",
            "Invalid password. The specified password does not meet the complexity requirements.",
        ));
    }
    let force_stop = request.force_stop.unwrap_or(false);
    operate(
        ctx,
        state,
        &request.instance_ids,
        StopCharging::Refuse,
        |instance, _| Ok((stopped_or_forced(instance, force_stop)?, Change::Nothing)),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyPairs {
    #[serde(default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    key_ids: Vec<String>,
    force_stop: Option<bool>,
}

/// Associate- and DisassociateInstancesKeyPairs: the same request, keys added or removed.
pub fn key_pairs(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let change = match ctx.action {
        Action::AssociateInstancesKeyPairs => Change::AssociateKeys,
        _ => Change::DisassociateKeys,
    };
    let request: KeyPairs = parse_known(params, &["InstanceIds", "KeyIds", "ForceStop"])?;
    if request.key_ids.is_empty() {
        return Err(ApiError::missing_parameter("KeyIds"));
    }
    if request.key_ids.len() > MAX_KEY_IDS {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!("At most {MAX_KEY_IDS} key IDs per call."),
        ));
    }
    if let Some(bad) = request
        .key_ids
        .iter()
        .find(|id| !is_resource_id(id, "skey"))
    {
        return Err(ApiError::new(
            "InvalidKeyPairId.Malformed",
            format!("Invalid key pair ID `{bad}`; it should look like skey-xxxxxxxx."),
        ));
    }
    let force_stop = request.force_stop.unwrap_or(false);
    operate(
        ctx,
        state,
        &request.instance_ids,
        StopCharging::Refuse,
        |instance, _| {
            Ok((
                stopped_or_forced(instance, force_stop)?,
                change(request.key_ids.clone()),
            ))
        },
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResizeDisks {
    instance_id: Option<String>,
    #[serde(default)]
    data_disks: Vec<DiskSize>,
    system_disk: Option<DiskSize>,
    force_stop: Option<bool>,
    resize_online: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DiskSize {
    disk_id: Option<String>,
    disk_size: Option<i64>,
}

pub fn resize_disks(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: ResizeDisks = parse_known(
        params,
        &[
            "InstanceId",
            "DataDisks",
            "ForceStop",
            "SystemDisk",
            "ResizeOnline",
        ],
    )?;
    let ids = one_id(request.instance_id)?;
    if request.data_disks.len() > 1 {
        return Err(ApiError::invalid_value(
            "Only one data disk can be resized per call.",
        ));
    }
    if request.data_disks.is_empty() && request.system_disk.is_none() {
        return Err(ApiError::missing_parameter("DataDisks or SystemDisk"));
    }
    let system = match &request.system_disk {
        Some(disk) => Some(required(disk.disk_size, "SystemDisk.DiskSize")?),
        None => None,
    };
    let force_stop = request.force_stop.unwrap_or(false);
    let online = request.resize_online.unwrap_or(false);
    operate(ctx, state, &ids, StopCharging::Refuse, |instance, _| {
        let transition = if online && instance.state == InstanceState::Running {
            Transition::stays(InstanceState::Running)
        } else {
            stopped_or_forced(instance, force_stop)?
        };
        if let Some(size) = system {
            grow_only("SystemDisk.DiskSize", instance.system_disk.disk_size, size)?;
        }
        let mut data = Vec::new();
        for disk in &request.data_disks {
            let id = required(disk.disk_id.clone(), "DataDisks.DiskId")?;
            let size = required(disk.disk_size, "DataDisks.DiskSize")?;
            let current = instance
                .data_disks
                .iter()
                .find(|d| d.disk_id == id)
                .ok_or_else(|| {
                    ApiError::new(
                        "InvalidParameterValue",
                        format!("The disk `{id}` is not a data disk of `{}`.", instance.id),
                    )
                })?;
            grow_only("DataDisks.DiskSize", current.disk_size, size)?;
            data.push((id, size));
        }
        Ok((transition, Change::ResizeDisks { system, data }))
    })
}

fn grow_only(name: &str, current: i64, wanted: i64) -> ApiResult<()> {
    if wanted <= current {
        return Err(ApiError::invalid_value(format!(
            "`{name}` can only grow: the disk has {current} GiB, {wanted} GiB was asked."
        )));
    }
    Ok(())
}
