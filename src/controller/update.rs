//! Day 2 inside the reconcile: what the planner (`crate::day2`) is given, and what its answer
//! means for the cloud call and for the resource's health. Pure, like the step function.

use std::collections::BTreeSet;

use tencent_cloud::credentials::SecretString;
use tencent_cloud::types::{Instance, LoginSettings};

use super::conditions::Health;
use super::observe::{Requeue, Verdict, judge};
use crate::api::{CvmInstanceSpec, CvmInstanceStatus, PowerState};
use crate::cloud::{
    DiskSize, InstanceAttribute, Modification, ResetInstanceRequest, ResizeInstanceDisksRequest,
    StopType, StoppedMode,
};
use crate::day2::{self, Change, Observed, Plan};

/// States in which the create protocol is over and the instance is the spec's to manage.
const MANAGED_STATES: &[&str] = &["RUNNING", "STOPPED", "STOPPING", "STARTING", "REBOOTING"];

/// Whether day-2 planning applies to this instance (not while it launches, fails or goes).
pub fn applies(instance: &Instance) -> bool {
    MANAGED_STATES.contains(&instance.instance_state.as_str())
}

/// What the planner sees of `instance`: the fields the spec governs, and of the tags only
/// those the spec names or the operator set before (foreign tags are none of its business).
pub fn observe(
    instance: &Instance,
    spec: &CvmInstanceSpec,
    status: &CvmInstanceStatus,
) -> Observed {
    let mut managed_keys: BTreeSet<&str> = status
        .applied_tag_keys
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    managed_keys.extend(spec.tags.iter().flatten().map(|(k, _)| k.as_str()));
    Observed {
        instance_name: instance.instance_name.clone(),
        security_group_ids: instance.security_group_ids.clone(),
        instance_type: instance.instance_type.clone(),
        tags: instance
            .tags
            .iter()
            .filter(|t| managed_keys.contains(t.key.as_str()))
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
        instance_state: Some(instance.instance_state.clone()),
        stop_charging_mode: instance.stop_charging_mode.clone(),
        internet_max_bandwidth_out: instance
            .internet_accessible
            .as_ref()
            .and_then(|a| a.internet_max_bandwidth_out)
            .and_then(|mbps| i32::try_from(mbps).ok()),
        project_id: instance.placement.as_ref().and_then(|p| p.project_id),
        key_ids: instance
            .login_settings
            .as_ref()
            .map(|l| l.key_ids.clone())
            .unwrap_or_default(),
        image_id: instance.image_id.clone(),
        placement_zone: instance.placement.as_ref().map(|p| p.zone.clone()),
        instance_charge_type: instance.instance_charge_type.clone(),
        system_disk_size: instance
            .system_disk
            .as_ref()
            .and_then(|d| d.disk_size)
            .and_then(|gib| i32::try_from(gib).ok()),
        data_disk_sizes: instance
            .data_disks
            .iter()
            .filter_map(|d| i32::try_from(d.disk_size).ok())
            .collect(),
        latest_operation: instance.latest_operation.clone(),
        latest_operation_state: instance.latest_operation_state.clone(),
        latest_operation_request_id: instance.latest_operation_request_id.clone(),
    }
}

/// How long a recorded call may take to show in DescribeInstances as the latest operation, by
/// default (`Settings::operation_settle`). Tencent shows it within seconds (Terraform waits
/// 10 s before it looks); it must exceed the API client's timeout, within which a request
/// may still arrive.
pub const OPERATION_SETTLE: std::time::Duration = std::time::Duration::from_secs(120);

/// The status the planner decides from. A non-idempotent call (a reimage, a recreate) that
/// was recorded but never got its answer is either under way or was never sent (the
/// operator died between recording and sending, or the request was lost). Once
/// `settle` has passed and the instance shows no operation of that action newer
/// than the record, it was never sent: forget the record so the change is made. Otherwise
/// the record stands and the planner does not call again.
pub fn without_unsent_operation(
    status: &CvmInstanceStatus,
    observed: &Observed,
    now: k8s_openapi::jiff::Timestamp,
    settle: std::time::Duration,
) -> Option<CvmInstanceStatus> {
    let operation = status.operation.as_ref()?;
    // A record from the future (clock skew) has not settled: `try_from` refuses it.
    let settled = std::time::Duration::try_from(now.duration_since(operation.started_at.0))
        .is_ok_and(|age| age >= settle);
    // The same action under the RequestId the instance showed when the call was recorded is
    // an earlier call (the previous reimage), not this one.
    let newer = observed.latest_operation_request_id.is_some()
        && observed.latest_operation_request_id != operation.prior_request_id;
    let shown = newer && observed.latest_operation.as_deref() == Some(operation.action.as_str());
    (operation.request_id.is_none() && settled && !shown).then(|| CvmInstanceStatus {
        operation: None,
        ..status.clone()
    })
}

/// The tag keys the spec sets, which the operator owns once applied (`appliedTagKeys`).
pub fn spec_tag_keys(spec: &CvmInstanceSpec) -> Option<Vec<String>> {
    let keys: Vec<String> = spec.tags.iter().flatten().map(|(k, _)| k.clone()).collect();
    (!keys.is_empty()).then_some(keys)
}

/// Whether carrying out `change` needs the login password from its Secret.
pub fn needs_password(change: &Change, spec: &CvmInstanceSpec) -> bool {
    match change {
        Change::ResetPassword => true,
        Change::Reimage { .. } => spec.password_secret_ref().is_some(),
        _ => false,
    }
}

/// The one cloud call for the planner's `change`. `None` for a recreate, which is not one
/// call but a termination and a new creation attempt.
pub fn modification(
    change: &Change,
    instance: &Instance,
    spec: &CvmInstanceSpec,
    password: Option<SecretString>,
) -> Option<Modification> {
    let id = instance.instance_id.clone();
    // Forced stops only inside the stop window the plan opened: the instance is stopped
    // then, and ForceStop only matters for a running one.
    let force_stop = instance.instance_state == "RUNNING";
    Some(match change {
        Change::SetTags { add, remove } => Modification::Tags {
            set: add.clone(),
            delete: remove.clone(),
        },
        Change::Rename { instance_name } => {
            Modification::Attribute(InstanceAttribute::Name(instance_name.clone()))
        }
        Change::SetSecurityGroups { security_group_ids } => Modification::Attribute(
            InstanceAttribute::SecurityGroups(security_group_ids.clone()),
        ),
        Change::SetHostName { host_name } => {
            Modification::Attribute(InstanceAttribute::HostName {
                name: host_name.clone(),
                // The plan applies a host name inside a stop window: nothing to reboot.
                auto_reboot: false,
            })
        }
        Change::SetProject { project_id } => Modification::Project {
            project_id: *project_id,
        },
        Change::SetBandwidth {
            max_bandwidth_out_mbps,
        } => Modification::Bandwidth {
            max_out_mbps: i64::from(*max_bandwidth_out_mbps),
        },
        Change::GrowDisks { disks } => {
            let mut request = ResizeInstanceDisksRequest {
                instance_id: id,
                resize_online: Some(force_stop),
                ..Default::default()
            };
            for (index, size) in disks {
                let disk_size = i64::from(*size);
                match index {
                    None => {
                        request.system_disk = Some(DiskSize {
                            disk_id: None,
                            disk_size,
                        })
                    }
                    Some(i) => request.data_disks.push(DiskSize {
                        disk_id: instance.data_disks.get(*i).and_then(|d| d.disk_id.clone()),
                        disk_size,
                    }),
                }
            }
            Modification::ResizeDisks(request)
        }
        Change::Stop { mode } => Modification::Stop {
            stop_type: StopType::SoftFirst,
            mode: match mode {
                crate::api::StoppedMode::KeepCharging => StoppedMode::KeepCharging,
                crate::api::StoppedMode::StopCharging => StoppedMode::StopCharging,
            },
        },
        Change::Start => Modification::Start,
        Change::ResetType { instance_type } => Modification::ResetType {
            instance_type: instance_type.clone(),
            force_stop,
        },
        // AssociateInstancesKeyPairs adds keys: the ones the spec no longer names go first.
        Change::SetKeys { key_ids } => {
            let bound = instance
                .login_settings
                .as_ref()
                .map(|l| l.key_ids.clone())
                .unwrap_or_default();
            let extra: Vec<String> = bound
                .iter()
                .filter(|k| !key_ids.contains(k))
                .cloned()
                .collect();
            if extra.is_empty() {
                Modification::AssociateKeys {
                    key_ids: key_ids
                        .iter()
                        .filter(|k| !bound.contains(k))
                        .cloned()
                        .collect(),
                    force_stop,
                }
            } else {
                Modification::DisassociateKeys {
                    key_ids: extra,
                    force_stop,
                }
            }
        }
        Change::ResetPassword => Modification::Password {
            password: password?,
            force_stop,
        },
        Change::Reimage { image_id } => Modification::Reimage(ResetInstanceRequest {
            instance_id: id,
            image_id: Some(image_id.clone()),
            // Always sent: without it Tencent sets a random password and mails it.
            login_settings: Some(login_settings(spec, password)),
            host_name: spec.host_name.clone(),
            ..Default::default()
        }),
        Change::Recreate => return None,
    })
}

fn login_settings(spec: &CvmInstanceSpec, password: Option<SecretString>) -> LoginSettings {
    let login = spec.login.as_ref();
    let key_ids = login.and_then(|l| l.key_ids.clone()).unwrap_or_default();
    let keep_image_login = (password.is_none() && key_ids.is_empty()).then(|| "TRUE".to_string());
    LoginSettings {
        password,
        key_ids,
        keep_image_login,
    }
}

/// What a managed instance means for the resource: the plan's health where it says more
/// than the state, else the state's (`observe::judge`).
pub fn verdict(
    plan: &Plan,
    observed: &Observed,
    spec: &CvmInstanceSpec,
    instance: &Instance,
) -> Verdict {
    let Some(health) = health(plan, observed, spec, &instance.instance_id) else {
        return judge(instance, spec.wants_public_ip());
    };
    let requeue = match &health {
        Health::Progressing { .. } => Requeue::Soon,
        // Ready, or waiting for a person while the instance keeps running as it is: the
        // sweeper watches it, and a spec edit reconciles at once.
        Health::Ready { .. } | Health::Stalled { .. } => Requeue::Steady,
    };
    Verdict::Report { health, requeue }
}

/// The health of a managed instance once the plan is known, where it says more than the
/// instance's state alone: an update under way, a change that waits for a person, or a stop
/// that is what the spec asks for. `None`: the state alone decides (`observe::judge`).
pub fn health(
    plan: &Plan,
    observed: &Observed,
    spec: &CvmInstanceSpec,
    id: &str,
) -> Option<Health> {
    if let Some(change) = &plan.change {
        let field = plan.change_field.map_or("", |f| f.name());
        return Some(Health::progressing(
            "Updating",
            format!("{id}: {} for {field}", change.action()),
        ));
    }
    if observed.operation_in_progress() {
        let action = observed
            .latest_operation
            .as_deref()
            .unwrap_or("an operation");
        return Some(Health::progressing(
            "Updating",
            format!("{id}: waiting for {action} to finish"),
        ));
    }
    // A recorded call whose answer never came: the update is under way until the instance
    // shows it or the record settles and the call is made (`without_unsent_operation`).
    if let Some(issued) = plan
        .pending
        .iter()
        .find(|p| p.reason == day2::ALREADY_ISSUED)
    {
        return Some(Health::progressing(
            "Updating",
            format!(
                "{id}: {} was requested without an answer; waiting for it to show",
                issued.field
            ),
        ));
    }
    let needs_person: Vec<&str> = plan
        .pending
        .iter()
        .filter(|p| {
            [
                day2::RESTART_REQUIRED,
                day2::REIMAGE_REQUIRED,
                day2::REPLACE_REQUIRED,
            ]
            .contains(&p.reason.as_str())
        })
        .map(|p| p.field.as_str())
        .collect();
    if let Some(first) = plan
        .pending
        .iter()
        .find(|p| needs_person.contains(&p.field.as_str()))
    {
        let why = match first.reason.as_str() {
            day2::RESTART_REQUIRED => {
                "needs a restart, which updatePolicy.restart: Never does not allow"
            }
            day2::REIMAGE_REQUIRED => {
                "needs a reinstall, which updatePolicy.reimage: Never does not allow"
            }
            _ => "needs a new instance, which updatePolicy.replace: Never does not allow",
        };
        return Some(Health::stalled(
            &first.reason,
            format!(
                "{id}: {} {why}; the instance keeps running as it is",
                needs_person.join(", ")
            ),
        ));
    }
    let stopped = observed.is_stopped();
    // Tencent releases the public IP of an instance stopped without charging and assigns a
    // new one on start: whoever reads the condition (and a DNS record or firewall rule that
    // names the old address) must learn it here, not after the start.
    let released_ip = if observed.stopped_without_charging() {
        "; stopped without charging: its public IP is released and starting it assigns a new one"
    } else {
        ""
    };
    match spec.power_state {
        PowerState::Stopped if stopped => Some(Health::ready(
            "InstanceStopped",
            format!("{id} is STOPPED, as powerState asks{released_ip}"),
        )),
        PowerState::Manual if stopped => Some(Health::ready(
            "InstanceStopped",
            format!("{id} is STOPPED (powerState Manual: left as it is){released_ip}"),
        )),
        _ => None,
    }
}
