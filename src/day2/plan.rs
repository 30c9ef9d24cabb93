//! The decision: from the spec, the status as stored and the instance just observed, which
//! fields drifted, the one mutating call to make next (if any), what waits and why, and the
//! conditions to report. One call per pass: the next pass observes its effect first.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::contest;
use super::diff::{self, Applied, Field};
use super::observed::Observed;
use crate::api::{
    ChangeClass, Correction, CvmInstanceSpec, CvmInstanceStatus, Drift, DriftPolicy,
    ManagementPolicy, PendingChange, PowerState, ReimagePolicy, ReplacePolicy, RestartPolicy,
    StoppedMode,
};

/// Everything the planner decides from.
pub struct PlanInput<'a> {
    pub spec: &'a CvmInstanceSpec,
    /// metadata.generation of the resource.
    pub generation: i64,
    pub status: &'a CvmInstanceStatus,
    /// The instance as described in this pass.
    pub observed: &'a Observed,
    /// Salted digest of the Secret's password now, if the login uses one.
    pub password_digest: Option<&'a str>,
    pub now: Timestamp,
}

/// One mutating call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Tag service ModifyResourceTags: set `add`, delete `remove` (keys the operator set).
    SetTags {
        add: BTreeMap<String, String>,
        remove: Vec<String>,
    },
    Rename {
        instance_name: String,
    },
    SetProject {
        project_id: i64,
    },
    /// The full ordered list: order is priority.
    SetSecurityGroups {
        security_group_ids: Vec<String>,
    },
    SetBandwidth {
        max_bandwidth_out_mbps: i32,
    },
    /// The system disk (`None`) or data disk `i`, to the new size in GiB.
    GrowDisks {
        disks: Vec<(Option<usize>, i32)>,
    },
    Stop {
        mode: StoppedMode,
    },
    ResetType {
        instance_type: String,
    },
    SetKeys {
        key_ids: Vec<String>,
    },
    ResetPassword,
    SetHostName {
        host_name: String,
    },
    Reimage {
        image_id: String,
    },
    Recreate,
    Start,
}

impl Change {
    /// The Tencent action, as recorded in `status.operation.action`.
    pub fn action(&self) -> &'static str {
        match self {
            Change::SetTags { .. } => "ModifyResourceTags",
            Change::Rename { .. }
            | Change::SetSecurityGroups { .. }
            | Change::SetHostName { .. } => "ModifyInstancesAttribute",
            Change::SetProject { .. } => "ModifyInstancesProject",
            Change::SetBandwidth { .. } => "ResetInstancesInternetMaxBandwidth",
            Change::GrowDisks { .. } => "ResizeInstanceDisks",
            Change::Stop { .. } => "StopInstances",
            Change::ResetType { .. } => "ResetInstancesType",
            Change::SetKeys { .. } => "AssociateInstancesKeyPairs",
            Change::ResetPassword => "ResetInstancesPassword",
            Change::Reimage { .. } => "ResetInstance",
            Change::Recreate => "TerminateInstances",
            Change::Start => "StartInstances",
        }
    }
}

/// A condition to set, with kstatus' True/False.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Fields changed outside the operator (or, under ObserveOnly, every difference).
    pub drifted: Vec<Field>,
    /// The next mutating call; `None` when nothing is to be done now.
    pub change: Option<Change>,
    /// The field `change` applies (what `status.operation.field` records).
    pub change_field: Option<Field>,
    /// Spec changes that wait, with why.
    pub pending: Vec<PendingChange>,
    /// `Drifted`, `RestartRequired`, `ReimageRequired`, `ReplaceRequired`, each True or False.
    pub conditions: Vec<PlannedCondition>,
    /// `status.drift` to write.
    pub drift: Option<Drift>,
}

pub const RESTART_REQUIRED: &str = "RestartRequired";
pub const REIMAGE_REQUIRED: &str = "ReimageRequired";
pub const REPLACE_REQUIRED: &str = "ReplaceRequired";
pub const OPERATION_IN_PROGRESS: &str = "OperationInProgress";
pub const STOPPED_WITHOUT_CHARGING: &str = "StoppedWithoutCharging";
pub const ALREADY_ISSUED: &str = "AlreadyIssued";
pub const STOPPED_MODE_DIFFERS: &str = "StoppedModeNeedsStartAndStop";

/// Decide the next step for an existing instance.
pub fn plan(input: &PlanInput) -> Plan {
    let PlanInput {
        spec,
        status,
        observed: o,
        ..
    } = *input;
    let applied = Applied {
        status,
        password_digest: input.password_digest,
    };
    let recent = contest::recent(
        status.drift.as_ref().map_or(&[][..], |d| &d.corrections),
        input.now,
    );
    let mut differing: Vec<Field> = Field::ALL
        .into_iter()
        .filter(|f| diff::differs(*f, spec, o, &applied))
        .collect();
    // What no API shows, by the record of what the instance was created with; the zone and
    // the billing mode are seen, and named once.
    let seen = |path: &str| {
        differing
            .iter()
            .any(|f| f.class() == ChangeClass::Replace && f.name().split('.').next() == Some(path))
    };
    let unseen: Vec<Field> = crate::api::REPLACE_ONLY
        .iter()
        .map(|(path, _)| Field::CreatedWith(path))
        .filter(|f| !seen(f.name()) && diff::differs(*f, spec, o, &applied))
        .collect();
    differing.extend(unseen);
    let power_differs = power_differs(spec.power_state, o);
    if power_differs {
        differing.push(Field::PowerState);
    }

    let mut drifted = Vec::new();
    let mut contested = Vec::new();
    let mut actionable = Vec::new();
    for field in differing {
        if spec.management_policy == ManagementPolicy::ObserveOnly {
            drifted.push(field);
        } else if !is_drift(field, input) {
            actionable.push(field);
        } else {
            drifted.push(field);
            // Reinstalling because someone else did is never done on the operator's own.
            if spec.update_policy.drift == DriftPolicy::Correct && field != Field::ImageId {
                if contest::contested(&recent, field.name()) {
                    contested.push(field);
                } else {
                    actionable.push(field);
                }
            }
        }
    }

    let mut decision = Decision::default();
    if spec.management_policy == ManagementPolicy::Manage {
        decide(input, &actionable, &mut decision);
    }
    let change_field = decision.change.as_ref().map(|(f, _)| *f);
    let drift = drift_status(status, &drifted, &recent, change_field, input.now);
    let conditions = conditions(&drifted, &contested, &decision.pending);
    Plan {
        drifted,
        change: decision.change.map(|(_, c)| c),
        change_field,
        pending: decision.pending,
        conditions,
        drift,
    }
}

fn power_differs(want: PowerState, o: &Observed) -> bool {
    match want {
        PowerState::Running => o.is_stopped(),
        PowerState::Stopped => o.is_running(),
        PowerState::Manual => false,
    }
}

/// A difference is drift when the cloud changed the field since the last pass and the
/// operator's own call did not, or when it was drift before and the spec has not changed
/// since. A spec edit (a new generation) is the user's statement of intent, so the
/// differences it leaves are changes to apply.
fn is_drift(field: Field, input: &PlanInput) -> bool {
    if !field.observable() {
        return false;
    }
    let status = input.status;
    let changed_behind_us = status.observed.as_ref().is_some_and(|last| {
        field.observed_value(last) != field.observed_value(input.observed)
            && !ours(field, status, input.observed)
    });
    let spec_unchanged = status.observed_generation == Some(input.generation);
    let known = status
        .drift
        .as_ref()
        .is_some_and(|d| d.fields.iter().any(|f| f == field.name()));
    changed_behind_us || (known && spec_unchanged)
}

/// Whether the instance's latest operation is the operator's own recorded change of `field`
/// (matched by RequestId, so a later console edit of the same field is not taken for ours).
/// Stops, starts and type changes also move the power state.
fn ours(field: Field, status: &CvmInstanceStatus, observed: &Observed) -> bool {
    status.operation.as_ref().is_some_and(|op| {
        let latest_is_ours = op.request_id.is_some()
            && op.request_id.as_deref() == observed.latest_operation_request_id.as_deref();
        latest_is_ours
            && (op.field == field.name()
                || (field == Field::PowerState
                    && matches!(
                        op.action.as_str(),
                        "StopInstances" | "StartInstances" | "ResetInstancesType" | "ResetInstance"
                    )))
    })
}

#[derive(Default)]
struct Decision {
    change: Option<(Field, Change)>,
    pending: Vec<PendingChange>,
}

impl Decision {
    fn wait(&mut self, field: Field, reason: &str) {
        self.pending.push(PendingChange {
            field: field.name().to_string(),
            class: field.class(),
            reason: reason.to_string(),
        });
    }

    fn choose(&mut self, field: Field, change: Change) {
        if self.change.is_none() {
            self.change = Some((field, change));
        }
    }
}

fn decide(input: &PlanInput, actionable: &[Field], d: &mut Decision) {
    let PlanInput {
        spec,
        status,
        observed: o,
        ..
    } = *input;
    let policy = spec.update_policy;
    if o.operation_in_progress() || o.transitioning() {
        actionable
            .iter()
            .for_each(|f| d.wait(*f, OPERATION_IN_PROGRESS));
        return;
    }
    let issued_for_this_generation = |action: &str| {
        status
            .operation
            .as_ref()
            .is_some_and(|op| op.action == action && op.generation == input.generation)
    };
    let restart_fields: Vec<Field> = actionable
        .iter()
        .copied()
        .filter(|f| f.class() == ChangeClass::Restart)
        .collect();
    for &field in actionable {
        match field.class() {
            ChangeClass::Replace => {
                if policy.replace != ReplacePolicy::Recreate {
                    d.wait(field, REPLACE_REQUIRED);
                } else if issued_for_this_generation("TerminateInstances") {
                    d.wait(field, ALREADY_ISSUED);
                } else {
                    d.choose(field, Change::Recreate);
                }
            }
            // Only tags work on an instance stopped without charging.
            ChangeClass::InPlace if field == Field::PowerState => {}
            ChangeClass::InPlace if field != Field::Tags && o.stopped_without_charging() => {
                d.wait(field, STOPPED_WITHOUT_CHARGING)
            }
            ChangeClass::InPlace => d.choose(field, in_place_change(field, input)),
            ChangeClass::Restart if o.stopped_without_charging() => {
                d.wait(field, STOPPED_WITHOUT_CHARGING)
            }
            // Already stopped (keeping its resources): no restart is needed to apply it.
            ChangeClass::Restart if o.is_stopped() => d.choose(field, restart_change(field, input)),
            ChangeClass::Restart if policy.restart == RestartPolicy::Never => {
                d.wait(field, RESTART_REQUIRED)
            }
            // Open the one stop window for every restart-class change; KEEP_CHARGING, since
            // STOP_CHARGING would refuse the calls that follow.
            ChangeClass::Restart => d.choose(
                field,
                Change::Stop {
                    mode: StoppedMode::KeepCharging,
                },
            ),
            ChangeClass::Reimage if o.stopped_without_charging() => {
                d.wait(field, STOPPED_WITHOUT_CHARGING)
            }
            ChangeClass::Reimage if policy.reimage != ReimagePolicy::Allow => {
                d.wait(field, REIMAGE_REQUIRED)
            }
            ChangeClass::Reimage if issued_for_this_generation("ResetInstance") => {
                d.wait(field, ALREADY_ISSUED)
            }
            ChangeClass::Reimage => d.choose(
                field,
                Change::Reimage {
                    image_id: spec.image_id.clone(),
                },
            ),
        }
    }
    // Power state last, and not while a stop window still has work to do in it.
    if actionable.contains(&Field::PowerState) {
        // Stopped without charging, those changes wait for the start instead.
        let window_open =
            o.is_stopped() && !o.stopped_without_charging() && !restart_fields.is_empty();
        match spec.power_state {
            PowerState::Running if !window_open => d.choose(Field::PowerState, Change::Start),
            PowerState::Stopped => d.choose(
                Field::PowerState,
                Change::Stop {
                    mode: spec.stopped_mode,
                },
            ),
            _ => {}
        }
    }
    // There is no call that turns one stopped mode into the other but a start and a stop.
    if spec.power_state == PowerState::Stopped && o.is_stopped() && !stopped_mode_matches(spec, o) {
        d.wait(Field::PowerState, STOPPED_MODE_DIFFERS);
    }
}

fn stopped_mode_matches(spec: &CvmInstanceSpec, o: &Observed) -> bool {
    let want = match spec.stopped_mode {
        StoppedMode::KeepCharging => "KEEP_CHARGING",
        StoppedMode::StopCharging => "STOP_CHARGING",
    };
    // Spot and local-disk instances report NOT_APPLICABLE: nothing to match.
    o.stop_charging_mode
        .as_deref()
        .is_none_or(|have| have == want || have == "NOT_APPLICABLE")
}

fn in_place_change(field: Field, input: &PlanInput) -> Change {
    let PlanInput {
        spec,
        status,
        observed: o,
        ..
    } = *input;
    match field {
        Field::Tags => {
            let add = spec
                .tags
                .iter()
                .flatten()
                .filter(|(k, v)| o.tags.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Change::SetTags {
                add,
                remove: diff::tags_to_remove(spec, o, status),
            }
        }
        Field::InstanceName => Change::Rename {
            instance_name: spec.instance_name.clone().unwrap_or_default(),
        },
        Field::ProjectId => Change::SetProject {
            project_id: spec.project_id.unwrap_or_default(),
        },
        Field::SecurityGroupIds => Change::SetSecurityGroups {
            security_group_ids: spec
                .network
                .as_ref()
                .and_then(|n| n.security_group_ids.clone())
                .unwrap_or_default(),
        },
        Field::Bandwidth => Change::SetBandwidth {
            max_bandwidth_out_mbps: diff::bandwidth(spec).unwrap_or_default(),
        },
        Field::DiskSizes => Change::GrowDisks {
            disks: diff::disks_to_grow(spec, o),
        },
        other => unreachable!("{other:?} is not an in-place field"),
    }
}

fn restart_change(field: Field, input: &PlanInput) -> Change {
    let spec = input.spec;
    match field {
        Field::InstanceType => Change::ResetType {
            instance_type: spec.instance_type.clone(),
        },
        Field::KeyIds => Change::SetKeys {
            key_ids: spec
                .login
                .as_ref()
                .and_then(|l| l.key_ids.clone())
                .unwrap_or_default(),
        },
        Field::Password => Change::ResetPassword,
        Field::HostName => Change::SetHostName {
            host_name: spec.host_name.clone().unwrap_or_default(),
        },
        other => unreachable!("{other:?} is not a restart-class field"),
    }
}

/// `status.drift` after this pass: the drifted fields, since when, and the corrections still
/// inside the contest window (plus this pass's, if it corrects drift). Kept while corrections
/// are remembered, even with no drift now, or a person's next change would start the count anew.
fn drift_status(
    status: &CvmInstanceStatus,
    drifted: &[Field],
    recent: &[Correction],
    change_field: Option<Field>,
    now: Timestamp,
) -> Option<Drift> {
    let mut corrections = recent.to_vec();
    if let Some(field) = change_field.filter(|f| drifted.contains(f)) {
        corrections.push(Correction {
            field: field.name().to_string(),
            at: Time(now),
        });
    }
    if drifted.is_empty() && corrections.is_empty() {
        return None;
    }
    let since = (!drifted.is_empty()).then(|| {
        status
            .drift
            .as_ref()
            .and_then(|d| d.since.clone())
            .unwrap_or(Time(now))
    });
    Some(Drift {
        fields: drifted.iter().map(|f| f.name().to_string()).collect(),
        since,
        corrections,
    })
}

fn conditions(
    drifted: &[Field],
    contested: &[Field],
    pending: &[PendingChange],
) -> Vec<PlannedCondition> {
    let names = |fields: &[Field]| {
        fields
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let drifted_condition = if !contested.is_empty() {
        PlannedCondition {
            type_: "Drifted",
            status: true,
            reason: "Contested",
            message: format!(
                "changed outside the operator again and again; no longer corrected: {}",
                names(contested)
            ),
        }
    } else if !drifted.is_empty() {
        PlannedCondition {
            type_: "Drifted",
            status: true,
            reason: "Drifted",
            message: format!("differs from the spec: {}", names(drifted)),
        }
    } else {
        PlannedCondition {
            type_: "Drifted",
            status: false,
            reason: "InSync",
            message: "the instance matches the spec".to_string(),
        }
    };
    let waiting = |reason: &'static str| {
        let fields: Vec<&str> = pending
            .iter()
            .filter(|p| p.reason == reason)
            .map(|p| p.field.as_str())
            .collect();
        PlannedCondition {
            type_: reason,
            status: !fields.is_empty(),
            reason: if fields.is_empty() {
                "NotRequired"
            } else {
                reason
            },
            message: fields.join(", "),
        }
    };
    vec![
        drifted_condition,
        waiting(RESTART_REQUIRED),
        waiting(REIMAGE_REQUIRED),
        waiting(REPLACE_REQUIRED),
    ]
}
