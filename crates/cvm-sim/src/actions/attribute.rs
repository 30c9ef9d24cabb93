//! Changes that need no restart: ModifyInstancesAttribute (exactly one attribute per call),
//! ModifyInstancesProject and ResetInstancesInternetMaxBandwidth.

use serde::Deserialize;
use serde_json::Value;

use super::Ctx;
use super::guard::{StopCharging, operate};
use super::naming::is_valid_host_name;
use super::params::{is_resource_id, parse, parse_known, reject_unknown, required};
use super::run::check_user_data;
use crate::error::{ApiError, ApiResult};
use crate::state::SimState;
use crate::state::instance::InstanceState;
use crate::state::operation::{Change, Transition};

/// The attributes ModifyInstancesAttribute changes, one per call.
const ATTRIBUTES: &[&str] = &[
    "InstanceName",
    "SecurityGroups",
    "HostName",
    "UserData",
    "DisableApiTermination",
    "CamRoleName",
];
const MAX_NAME_CHARS: usize = 128;
const MAX_SECURITY_GROUPS: usize = 5;
const MAX_BANDWIDTH_MBPS: i64 = 200;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyAttribute {
    #[serde(default)]
    instance_ids: Vec<String>,
    instance_name: Option<String>,
    security_groups: Option<Vec<String>>,
    host_name: Option<String>,
    auto_reboot: Option<bool>,
    user_data: Option<String>,
    disable_api_termination: Option<bool>,
    cam_role_name: Option<String>,
}

pub fn modify_attribute(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let mut known = ATTRIBUTES.to_vec();
    known.extend(["InstanceIds", "AutoReboot", "CamRoleType"]);
    reject_unknown(&params, &known)?;
    let given: Vec<&str> = ATTRIBUTES
        .iter()
        .copied()
        .filter(|name| params.get(name).is_some_and(|v| !v.is_null()))
        .collect();
    let mut request: ModifyAttribute = parse(params)?;
    match given.len() {
        0 => {
            return Err(ApiError::new(
                "MissingParameter",
                format!("One attribute to change is required, one of {ATTRIBUTES:?}."),
            ));
        }
        1 => {}
        _ => {
            return Err(ApiError::invalid_parameter(format!(
                "Only one attribute can be changed per request; got {given:?}."
            )));
        }
    }
    if request.auto_reboot.is_some() && request.host_name.is_none() {
        return Err(ApiError::invalid_combination(
            "`AutoReboot` only goes with `HostName`.",
        ));
    }
    let auto_reboot = request.auto_reboot.unwrap_or(true);
    let instance_ids = std::mem::take(&mut request.instance_ids);
    let (change, reboots) = attribute_change(request)?;
    let reboots = reboots && auto_reboot;
    operate(
        ctx,
        state,
        &instance_ids,
        StopCharging::Refuse,
        |instance, _| {
            // A new host name reboots a running instance at once unless AutoReboot=false.
            let transition = if reboots && instance.state == InstanceState::Running {
                Transition {
                    during: InstanceState::Rebooting,
                    ends_in: InstanceState::Running,
                }
            } else {
                Transition::stays(instance.state)
            };
            Ok((transition, change.clone()))
        },
    )
}

/// The one attribute given, checked, as the change it makes; whether it reboots.
fn attribute_change(attribute: ModifyAttribute) -> ApiResult<(Change, bool)> {
    if let Some(name) = attribute.instance_name {
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::new(
                "InvalidInstanceName.TooLong",
                format!("`InstanceName` exceeds the maximum length of {MAX_NAME_CHARS}."),
            ));
        }
        return Ok((Change::Rename(name), false));
    }
    if let Some(groups) = attribute.security_groups {
        return Ok((Change::SecurityGroups(security_groups(groups)?), false));
    }
    if let Some(host_name) = attribute.host_name {
        if !is_valid_host_name(&host_name) {
            return Err(ApiError::new(
                "InvalidParameterValue.IllegalHostName",
                format!("The host name `{host_name}` is not valid."),
            ));
        }
        return Ok((Change::HostName(host_name), true));
    }
    if let Some(data) = attribute.user_data {
        check_user_data(&data)?;
        return Ok((Change::UserData(data), false));
    }
    if let Some(protected) = attribute.disable_api_termination {
        return Ok((Change::DisableApiTermination(protected), false));
    }
    Ok((
        Change::CamRole(attribute.cam_role_name.unwrap_or_default()),
        false,
    ))
}

/// The new, ordered list (order is priority): 1 to 5 well-formed, distinct ids.
fn security_groups(groups: Vec<String>) -> ApiResult<Vec<String>> {
    if groups.is_empty() {
        return Err(ApiError::invalid_value(
            "`SecurityGroups` needs at least one security group.",
        ));
    }
    if groups.len() > MAX_SECURITY_GROUPS {
        return Err(ApiError::new(
            "LimitExceeded.AssociateUSGLimitExceeded",
            format!("An instance can be bound to at most {MAX_SECURITY_GROUPS} security groups."),
        ));
    }
    if let Some(bad) = groups.iter().find(|id| !is_resource_id(id, "sg")) {
        return Err(ApiError::new(
            "InvalidSgId.Malformed",
            format!("The security group ID `{bad}` is malformed; it should look like sg-xxxxxxxx."),
        ));
    }
    for (i, id) in groups.iter().enumerate() {
        if groups[..i].contains(id) {
            return Err(ApiError::invalid_value(format!(
                "The security group `{id}` is listed twice."
            )));
        }
    }
    Ok(groups)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ModifyProject {
    #[serde(default)]
    instance_ids: Vec<String>,
    project_id: Option<i64>,
}

pub fn modify_project(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: ModifyProject = parse_known(params, &["InstanceIds", "ProjectId"])?;
    let project = required(request.project_id, "ProjectId")?;
    if project < 0 {
        return Err(ApiError::new(
            "InvalidProjectId.NotFound",
            format!("The project `{project}` does not exist."),
        ));
    }
    operate(
        ctx,
        state,
        &request.instance_ids,
        StopCharging::Refuse,
        |instance, _| Ok((Transition::stays(instance.state), Change::Project(project))),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResetBandwidth {
    #[serde(default)]
    instance_ids: Vec<String>,
    internet_accessible: Option<Internet>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Internet {
    internet_max_bandwidth_out: Option<i64>,
}

pub fn reset_bandwidth(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: ResetBandwidth = parse_known(
        params,
        &["InstanceIds", "InternetAccessible", "StartTime", "EndTime"],
    )?;
    let mbps = required(
        request
            .internet_accessible
            .and_then(|i| i.internet_max_bandwidth_out),
        "InternetAccessible.InternetMaxBandwidthOut",
    )?;
    if !(0..=MAX_BANDWIDTH_MBPS).contains(&mbps) {
        return Err(ApiError::range(
            "InternetAccessible.InternetMaxBandwidthOut",
            format!("must be between 0 and {MAX_BANDWIDTH_MBPS}, got {mbps}"),
        ));
    }
    operate(
        ctx,
        state,
        &request.instance_ids,
        StopCharging::Refuse,
        |instance, _| {
            if instance.internet_charge_type.as_deref() == Some("BANDWIDTH_PREPAID") {
                return Err(ApiError::new(
                    "UnsupportedOperation.InstanceChargeType",
                    format!(
                        "The bandwidth of `{}` (BANDWIDTH_PREPAID) needs StartTime and EndTime, \
                         which cvm-sim does not model.",
                        instance.id
                    ),
                ));
            }
            Ok((Transition::stays(instance.state), Change::Bandwidth(mbps)))
        },
    )
}
