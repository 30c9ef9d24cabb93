//! ResetInstance: reinstalls the system disk from an image (the same one by default).
//! Not idempotent on Tencent Cloud: every accepted call reinstalls again, so the simulator
//! counts them per instance for tests that must see exactly one.

use serde::Deserialize;
use serde_json::Value;

use super::Ctx;
use super::guard::{StopCharging, one_id, operate};
use super::naming::is_valid_host_name;
use super::params::{is_resource_id, parse_known, required};
use super::run::{Login, check_user_data, login};
use crate::error::{ApiError, ApiResult};
use crate::state::SimState;
use crate::state::instance::InstanceState;
use crate::state::operation::{Change, Transition};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_id: Option<String>,
    image_id: Option<String>,
    system_disk: Option<SystemDisk>,
    login_settings: Option<Login>,
    host_name: Option<String>,
    user_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SystemDisk {
    disk_size: Option<i64>,
}

pub fn handle(ctx: &Ctx<'_>, state: &mut SimState, params: Value) -> ApiResult<Vec<u8>> {
    let request: Request = parse_known(
        params,
        &[
            "InstanceId",
            "ImageId",
            "SystemDisk",
            "LoginSettings",
            "EnhancedService",
            "HostName",
            "UserData",
        ],
    )?;
    let ids = one_id(request.instance_id)?;
    if let Some(image) = &request.image_id
        && !is_resource_id(image, "img")
    {
        return Err(ApiError::new(
            "InvalidImageId.Malformed",
            format!("The image ID `{image}` is malformed; it should look like img-xxxxxxxx."),
        ));
    }
    // Without LoginSettings the real API mails a random password: the keys are gone either way.
    let key_ids = login(request.login_settings)?;
    if let Some(host_name) = &request.host_name
        && !is_valid_host_name(host_name)
    {
        return Err(ApiError::new(
            "InvalidParameterValue.IllegalHostName",
            format!("The host name `{host_name}` is not valid."),
        ));
    }
    if let Some(data) = &request.user_data {
        check_user_data(data)?;
    }
    let disk_size = match request.system_disk {
        Some(disk) => Some(required(disk.disk_size, "SystemDisk.DiskSize")?),
        None => None,
    };
    let answer = operate(ctx, state, &ids, StopCharging::Refuse, |instance, _| {
        if let Some(size) = disk_size
            && size < instance.system_disk.disk_size
        {
            return Err(ApiError::invalid_value(format!(
                "`SystemDisk.DiskSize` cannot shrink: the disk has {} GiB, {size} GiB was asked.",
                instance.system_disk.disk_size
            )));
        }
        let transition = match instance.state {
            InstanceState::Running => Transition {
                during: InstanceState::Rebooting,
                ends_in: InstanceState::Running,
            },
            state => Transition::stays(state),
        };
        Ok((
            transition,
            Change::Reimage {
                image_id: request
                    .image_id
                    .clone()
                    .unwrap_or_else(|| instance.image_id.clone()),
                system_disk_size: disk_size,
                key_ids: key_ids.clone(),
                host_name: request.host_name.clone(),
                user_data: request.user_data.clone(),
            },
        ))
    })?;
    if let Some(instance) = state.store.get_mut(&ids[0]) {
        instance.reimage_count += 1;
    }
    Ok(answer)
}
