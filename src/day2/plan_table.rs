//! The planner's decision table: a row per decision of the day-2 test matrix (reference
//! day2-operations.md §5.4). Each row starts from an instance in sync with its spec, with the
//! last pass's observation stored, and changes the spec, the instance or the status.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;
use crate::api::{Correction, CvmInstanceSpec, CvmInstanceStatus, Drift, Operation, StoppedMode};

fn now() -> Timestamp {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn minutes_ago(m: i64) -> Time {
    Time(now() - SignedDuration::from_mins(m))
}

/// A situation: the resource (generation 1 unless the spec was edited), its stored status
/// (which observed the instance in sync at generation 1) and the instance now.
struct World {
    spec: Value,
    generation: i64,
    status: CvmInstanceStatus,
    observed: Observed,
    password_digest: Option<&'static str>,
}

fn base_spec() -> Value {
    json!({
        "region": "ap-guangzhou",
        "zone": "ap-guangzhou-3",
        "instanceType": "S5.MEDIUM2",
        "imageId": "img-eb30mz89",
        "billing": {"mode": "PayAsYouGo"},
        "systemDisk": {"sizeGiB": 50},
        "dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 100}],
        "network": {"securityGroupIds": ["sg-aaaaaaaa", "sg-bbbbbbbb"],
                    "publicIp": {"maxBandwidthOutMbps": 10}},
        "login": {"keyIds": ["skey-aaaaaaaa"], "passwordSecretRef": null},
        "instanceName": "web-1",
        "hostName": "web-1",
        "projectId": 0,
        "tags": {"team": "web"},
    })
}

fn in_sync() -> Observed {
    Observed {
        instance_name: Some("web-1".into()),
        security_group_ids: vec!["sg-aaaaaaaa".into(), "sg-bbbbbbbb".into()],
        instance_type: Some("S5.MEDIUM2".into()),
        tags: BTreeMap::from([("team".into(), "web".into())]),
        instance_state: Some("RUNNING".into()),
        stop_charging_mode: Some("NOT_APPLICABLE".into()),
        internet_max_bandwidth_out: Some(10),
        project_id: Some(0),
        key_ids: vec!["skey-aaaaaaaa".into()],
        image_id: Some("img-eb30mz89".into()),
        placement_zone: Some("ap-guangzhou-3".into()),
        instance_charge_type: Some("POSTPAID_BY_HOUR".into()),
        system_disk_size: Some(50),
        data_disk_sizes: vec![100],
        latest_operation: Some("RunInstances".into()),
        latest_operation_state: Some("SUCCESS".into()),
        latest_operation_request_id: Some("req-create".into()),
    }
}

impl World {
    fn new() -> Self {
        World {
            spec: base_spec(),
            generation: 1,
            status: CvmInstanceStatus {
                instance_id: Some("ins-aaaaaaaa".into()),
                observed_generation: Some(1),
                observed: Some(in_sync()),
                applied_tag_keys: Some(vec!["team".into()]),
                applied_host_name: Some("web-1".into()),
                password_hash: Some("digest-1".into()),
                ..CvmInstanceStatus::default()
            },
            observed: in_sync(),
            password_digest: Some("digest-1"),
        }
    }

    /// The user edits the manifest: a new generation.
    fn edit(mut self, patch: Value) -> Self {
        json_patch::merge(&mut self.spec, &patch);
        self.generation += 1;
        self
    }

    /// The user's policy, set at creation (same generation as the stored status).
    fn policy(mut self, patch: Value) -> Self {
        json_patch::merge(&mut self.spec, &patch);
        self
    }

    /// Someone changes the instance outside the operator.
    fn console(mut self, change: impl FnOnce(&mut Observed)) -> Self {
        change(&mut self.observed);
        self
    }

    /// The instance as both the last pass and this one saw it.
    fn instance(mut self, change: impl Fn(&mut Observed)) -> Self {
        change(&mut self.observed);
        change(self.status.observed.as_mut().unwrap());
        self
    }

    fn stored(mut self, change: impl FnOnce(&mut CvmInstanceStatus)) -> Self {
        change(&mut self.status);
        self
    }

    fn plan(&self) -> Plan {
        let spec: CvmInstanceSpec = serde_json::from_value(self.spec.clone()).unwrap();
        plan(&PlanInput {
            spec: &spec,
            generation: self.generation,
            status: &self.status,
            observed: &self.observed,
            password_digest: self.password_digest,
            now: now(),
        })
    }
}

fn stopped(o: &mut Observed) {
    o.instance_state = Some("STOPPED".into());
    o.stop_charging_mode = Some("KEEP_CHARGING".into());
}

fn stopped_without_charging(o: &mut Observed) {
    o.instance_state = Some("STOPPED".into());
    o.stop_charging_mode = Some("STOP_CHARGING".into());
    o.internet_max_bandwidth_out = None;
}

fn operation(action: &str, field: &str, generation: i64) -> Option<Operation> {
    Some(Operation {
        action: action.into(),
        field: field.into(),
        request_id: Some("req-ours".into()),
        prior_request_id: None,
        generation,
        started_at: minutes_ago(1),
    })
}

fn reasons(plan: &Plan) -> Vec<(String, String)> {
    plan.pending
        .iter()
        .map(|p| (p.field.clone(), p.reason.clone()))
        .collect()
}

fn pending(field: &str, reason: &str) -> Vec<(String, String)> {
    vec![(field.to_string(), reason.to_string())]
}

fn condition(plan: &Plan, type_: &str) -> PlannedCondition {
    plan.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

fn restart_if_needed() -> Value {
    json!({"updatePolicy": {"restart": "IfNeeded"}})
}

// ---- 1. steady state -------------------------------------------------------------------

#[test]
fn in_sync_plans_nothing_and_reports_no_drift() {
    let plan = World::new().plan();
    assert_eq!(plan.change, None);
    assert!(plan.pending.is_empty() && plan.drifted.is_empty());
    assert_eq!(plan.drift, None);
    assert!(plan.conditions.iter().all(|c| !c.status), "{plan:?}");
}

// ---- 2. each in-place field: one call ---------------------------------------------------

#[test]
fn each_in_place_field_is_one_call() {
    let rows: Vec<(&str, Value, Change)> = vec![
        (
            "tag value",
            json!({"tags": {"team": "api"}}),
            Change::SetTags {
                add: BTreeMap::from([("team".into(), "api".into())]),
                remove: vec![],
            },
        ),
        (
            "instance name",
            json!({"instanceName": "web-2"}),
            Change::Rename {
                instance_name: "web-2".into(),
            },
        ),
        (
            "project",
            json!({"projectId": 7}),
            Change::SetProject { project_id: 7 },
        ),
        (
            "security groups reordered",
            json!({"network": {"securityGroupIds": ["sg-bbbbbbbb", "sg-aaaaaaaa"]}}),
            Change::SetSecurityGroups {
                security_group_ids: vec!["sg-bbbbbbbb".into(), "sg-aaaaaaaa".into()],
            },
        ),
        (
            "bandwidth",
            json!({"network": {"publicIp": {"maxBandwidthOutMbps": 20}}}),
            Change::SetBandwidth {
                max_bandwidth_out_mbps: 20,
            },
        ),
        (
            "data disk grows",
            json!({"dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 200}]}),
            Change::GrowDisks {
                disks: vec![(Some(0), 200)],
            },
        ),
        (
            "system disk grows",
            json!({"systemDisk": {"sizeGiB": 80}}),
            Change::GrowDisks {
                disks: vec![(None, 80)],
            },
        ),
    ];
    let count = rows.len();
    for (what, patch, expected) in rows {
        let plan = World::new().edit(patch).plan();
        assert_eq!(plan.change, Some(expected), "{what}");
        assert!(plan.pending.is_empty(), "{what}: {:?}", plan.pending);
        assert!(plan.drifted.is_empty(), "{what}: a spec edit is not drift");
    }
    assert_eq!(count, 7);
}

#[test]
fn removing_a_tag_key_deletes_only_keys_the_operator_set() {
    let plan = World::new()
        .instance(|o| {
            o.tags.insert("env".into(), "prod".into());
            o.tags.insert("asg".into(), "foreign".into());
        })
        .stored(|s| s.applied_tag_keys = Some(vec!["team".into(), "env".into()]))
        .edit(json!({"tags": {"team": "web", "env": null}}))
        .plan();
    assert_eq!(
        plan.change,
        Some(Change::SetTags {
            add: BTreeMap::new(),
            remove: vec!["env".into()]
        })
    );
}

// ---- 3. one call per pass, in order -----------------------------------------------------

#[test]
fn several_in_place_changes_go_one_per_pass_in_order() {
    let world = World::new().edit(json!({
        "instanceName": "web-2",
        "network": {"securityGroupIds": ["sg-cccccccc"]},
        "tags": {"team": "api"},
        "projectId": 3,
    }));
    assert!(matches!(world.plan().change, Some(Change::SetTags { .. })));
    let world = world.instance(|o| {
        o.tags
            .insert("team".into(), "api".into())
            .map(|_| ())
            .unwrap_or(())
    });
    assert!(matches!(world.plan().change, Some(Change::Rename { .. })));
    let world = world.instance(|o| o.instance_name = Some("web-2".into()));
    assert_eq!(
        world.plan().change,
        Some(Change::SetProject { project_id: 3 })
    );
    let world = world.instance(|o| o.project_id = Some(3));
    assert!(matches!(
        world.plan().change,
        Some(Change::SetSecurityGroups { .. })
    ));
    let world = world.instance(|o| o.security_group_ids = vec!["sg-cccccccc".into()]);
    assert_eq!(world.plan().change, None);
}

#[test]
fn an_operation_in_progress_changes_nothing() {
    for hold in [
        |o: &mut Observed| o.latest_operation_state = Some("OPERATING".into()),
        |o: &mut Observed| o.instance_state = Some("REBOOTING".into()),
    ] {
        let plan = World::new()
            .edit(json!({"instanceName": "web-2"}))
            .console(hold)
            .plan();
        assert_eq!(plan.change, None);
        assert_eq!(
            reasons(&plan),
            pending("instanceName", "OperationInProgress")
        );
    }
}

// ---- 4. restart class -------------------------------------------------------------------

#[test]
fn instance_type_without_restart_permission_waits_with_restart_required() {
    let plan = World::new()
        .edit(json!({"instanceType": "S5.LARGE8"}))
        .plan();
    assert_eq!(plan.change, None);
    assert_eq!(reasons(&plan), pending("instanceType", "RestartRequired"));
    let c = condition(&plan, "RestartRequired");
    assert!(c.status && c.message.contains("instanceType"));
}

#[test]
fn instance_type_with_restart_is_stop_reset_start() {
    let world = World::new()
        .policy(restart_if_needed())
        .edit(json!({"instanceType": "S5.LARGE8"}));
    assert_eq!(
        world.plan().change,
        Some(Change::Stop {
            mode: StoppedMode::KeepCharging
        })
    );
    let world = world
        .instance(stopped)
        .stored(|s| s.operation = operation("StopInstances", "instanceType", 2));
    assert_eq!(
        world.plan().change,
        Some(Change::ResetType {
            instance_type: "S5.LARGE8".into()
        })
    );
    let world = world.instance(|o| o.instance_type = Some("S5.LARGE8".into()));
    assert_eq!(world.plan().change, Some(Change::Start));
    assert!(world.plan().drifted.is_empty(), "our own stop is not drift");
}

#[test]
fn instance_type_with_power_stopped_stops_again_after_the_auto_start() {
    let world = World::new()
        .policy(restart_if_needed())
        .edit(json!({"instanceType": "S5.LARGE8", "powerState": "Stopped"}))
        .instance(|o| o.instance_type = Some("S5.LARGE8".into()))
        .stored(|s| s.operation = operation("ResetInstancesType", "instanceType", 2));
    assert_eq!(
        world.plan().change,
        Some(Change::Stop {
            mode: StoppedMode::KeepCharging
        })
    );
}

#[test]
fn restart_class_changes_share_one_stop_window() {
    let world = World::new()
        .policy(restart_if_needed())
        .edit(json!({"instanceType": "S5.LARGE8", "login": {"keyIds": ["skey-bbbbbbbb"]}}));
    let mut world = World {
        password_digest: Some("digest-2"),
        ..world
    };
    let mut calls = vec![];
    for _ in 0..6 {
        let Some(change) = world.plan().change else {
            break;
        };
        calls.push(change.action());
        world = match change {
            Change::Stop { .. } => world.instance(stopped),
            // Tencent starts the instance again after a type change.
            Change::ResetType { .. } => world.instance(|o| {
                o.instance_type = Some("S5.LARGE8".into());
                o.instance_state = Some("RUNNING".into());
            }),
            Change::SetKeys { .. } => world.instance(|o| o.key_ids = vec!["skey-bbbbbbbb".into()]),
            Change::ResetPassword => world.stored(|s| s.password_hash = Some("digest-2".into())),
            Change::Start => world.instance(|o| o.instance_state = Some("RUNNING".into())),
            other => panic!("unexpected {other:?}"),
        };
    }
    assert_eq!(
        calls,
        [
            "StopInstances",
            "AssociateInstancesKeyPairs",
            "ResetInstancesPassword",
            "ResetInstancesType"
        ]
    );
}

#[test]
fn a_new_password_in_the_secret_is_a_restart_class_change() {
    let world = World {
        password_digest: Some("digest-2"),
        ..World::new()
    };
    let plan = world.plan();
    assert_eq!(
        reasons(&plan),
        pending("login.passwordSecretRef", "RestartRequired")
    );
    let stopped = world
        .policy(json!({"powerState": "Manual"}))
        .instance(stopped);
    assert_eq!(stopped.plan().change, Some(Change::ResetPassword));
}

// ---- 6. host name -----------------------------------------------------------------------

#[test]
fn host_name_waits_for_a_restart_or_goes_into_the_window() {
    let plan = World::new().edit(json!({"hostName": "web-2"})).plan();
    assert_eq!(reasons(&plan), pending("hostName", "RestartRequired"));
    let world = World::new()
        .policy(restart_if_needed())
        .edit(json!({"hostName": "web-2"}))
        .instance(stopped);
    assert_eq!(
        world.plan().change,
        Some(Change::SetHostName {
            host_name: "web-2".into()
        })
    );
}

// ---- 7. power state and STOP_CHARGING ---------------------------------------------------

#[test]
fn power_state_stopped_with_stop_charging_stops_without_charging() {
    let plan = World::new()
        .edit(json!({"powerState": "Stopped", "stoppedMode": "StopCharging"}))
        .plan();
    assert_eq!(
        plan.change,
        Some(Change::Stop {
            mode: StoppedMode::StopCharging
        })
    );
}

#[test]
fn stopped_without_charging_only_tags_apply_and_a_released_ip_is_not_drift() {
    let world = World::new()
        .policy(json!({"powerState": "Stopped", "stoppedMode": "StopCharging"}))
        .instance(stopped_without_charging);
    let plan = world.plan();
    assert_eq!(plan.change, None);
    assert!(
        plan.drifted.is_empty() && plan.pending.is_empty(),
        "{plan:?}"
    );

    let plan = world
        .edit(json!({"instanceName": "web-2", "tags": {"team": "api"}}))
        .plan();
    assert!(matches!(plan.change, Some(Change::SetTags { .. })));
    assert_eq!(
        reasons(&plan),
        pending("instanceName", "StoppedWithoutCharging")
    );
}

#[test]
fn starting_a_stopped_without_charging_instance_comes_before_its_restart_class_changes() {
    let plan = World::new()
        .policy(json!({"powerState": "Stopped", "stoppedMode": "StopCharging"}))
        .instance(stopped_without_charging)
        .edit(json!({"powerState": "Running", "stoppedMode": "KeepCharging", "instanceType": "S5.LARGE8"}))
        .plan();
    assert_eq!(plan.change, Some(Change::Start));
    assert_eq!(
        reasons(&plan),
        pending("instanceType", "StoppedWithoutCharging")
    );
}

#[test]
fn a_stopped_mode_change_on_a_stopped_instance_is_reported_not_forced() {
    let plan = World::new()
        .instance(stopped)
        .edit(json!({"powerState": "Stopped", "stoppedMode": "StopCharging"}))
        .plan();
    assert_eq!(plan.change, None);
    assert_eq!(
        reasons(&plan),
        pending("powerState", "StoppedModeNeedsStartAndStop")
    );
}

#[test]
fn starting_is_a_spec_change_and_manual_never_starts() {
    let world = World::new()
        .policy(json!({"powerState": "Stopped"}))
        .instance(stopped);
    assert_eq!(world.plan().change, None);
    assert_eq!(
        world.edit(json!({"powerState": "Running"})).plan().change,
        Some(Change::Start)
    );
    let manual = World::new()
        .policy(json!({"powerState": "Manual"}))
        .instance(stopped);
    assert_eq!(manual.plan().change, None);
}

// ---- 8. drift ---------------------------------------------------------------------------

#[test]
fn console_edits_are_reported_under_report() {
    let plan = World::new()
        .console(|o| {
            o.instance_name = Some("renamed".into());
            o.security_group_ids = vec!["sg-eeeeeeee".into()];
        })
        .plan();
    assert_eq!(plan.change, None);
    assert_eq!(plan.drifted, [Field::InstanceName, Field::SecurityGroupIds]);
    let c = condition(&plan, "Drifted");
    assert!(c.status && c.reason == "Drifted");
    assert!(c.message.contains("instanceName") && c.message.contains("network.securityGroupIds"));
    let drift = plan.drift.unwrap();
    assert_eq!(drift.since, Some(Time(now())));
    assert!(drift.corrections.is_empty());
}

#[test]
fn reported_drift_stays_drift_on_the_next_pass() {
    let world = World::new()
        .instance(|o| o.instance_name = Some("renamed".into()))
        .stored(|s| {
            s.drift = Some(Drift {
                fields: vec!["instanceName".into()],
                since: Some(minutes_ago(60)),
                corrections: vec![],
            })
        });
    let plan = world.plan();
    assert_eq!(
        (plan.change.clone(), plan.drifted.clone()),
        (None, vec![Field::InstanceName])
    );
    assert_eq!(
        plan.drift.unwrap().since,
        Some(minutes_ago(60)),
        "since is kept"
    );
    // Editing the manifest is the user's word: the difference it leaves is applied.
    let edited = world.edit(json!({"tags": {"team": "api"}})).plan();
    assert!(matches!(edited.change, Some(Change::SetTags { .. })));
    assert!(edited.drifted.is_empty());
}

#[test]
fn console_edits_are_corrected_under_correct_and_the_correction_recorded() {
    let plan = World::new()
        .policy(json!({"updatePolicy": {"drift": "Correct"}}))
        .console(|o| o.instance_name = Some("renamed".into()))
        .plan();
    assert_eq!(
        plan.change,
        Some(Change::Rename {
            instance_name: "web-1".into()
        })
    );
    assert_eq!(plan.drifted, [Field::InstanceName]);
    let drift = plan.drift.unwrap();
    assert_eq!(
        drift.corrections,
        [Correction {
            field: "instanceName".into(),
            at: Time(now())
        }]
    );
}

#[test]
fn a_stop_behind_our_back_is_drift_started_only_under_correct() {
    let report = World::new().console(stopped).plan();
    assert_eq!(report.change, None);
    assert_eq!(report.drifted, [Field::PowerState]);
    let correct = World::new()
        .policy(json!({"updatePolicy": {"drift": "Correct"}}))
        .console(stopped)
        .plan();
    assert_eq!(correct.change, Some(Change::Start));
    let manual = World::new()
        .policy(json!({"powerState": "Manual", "updatePolicy": {"drift": "Correct"}}))
        .console(stopped)
        .plan();
    assert_eq!(manual.change, None);
    assert!(manual.drifted.is_empty());
}

#[test]
fn a_field_corrected_three_times_in_the_window_is_contested() {
    let with_corrections = |ages: &[i64]| {
        World::new()
            .policy(json!({"updatePolicy": {"drift": "Correct"}}))
            .console(|o| o.instance_name = Some("renamed".into()))
            .stored(|s| {
                s.drift = Some(Drift {
                    fields: vec![],
                    since: None,
                    corrections: ages
                        .iter()
                        .map(|m| Correction {
                            field: "instanceName".into(),
                            at: minutes_ago(*m),
                        })
                        .collect(),
                })
            })
            .plan()
    };
    let contested = with_corrections(&[25, 15, 5]);
    assert_eq!(contested.change, None);
    let c = condition(&contested, "Drifted");
    assert_eq!((c.status, c.reason), (true, "Contested"));
    assert!(c.message.contains("instanceName"));
    // Two recent ones, or old ones: still corrected, and old ones are forgotten.
    let two = with_corrections(&[15, 5]);
    assert!(matches!(two.change, Some(Change::Rename { .. })));
    assert_eq!(two.drift.unwrap().corrections.len(), 3);
    let old = with_corrections(&[50, 40, 31]);
    assert!(matches!(old.change, Some(Change::Rename { .. })));
    assert_eq!(old.drift.unwrap().corrections.len(), 1);
}

#[test]
fn our_own_change_is_not_drift() {
    let plan = World::new()
        .edit(json!({"instanceName": "web-2"}))
        .console(|o| o.instance_name = Some("web-2".into()))
        .stored(|s| s.operation = operation("ModifyInstancesAttribute", "instanceName", 2))
        .plan();
    assert_eq!((plan.change, plan.drifted), (None, vec![]));
}

// ---- 9. reimage -------------------------------------------------------------------------

#[test]
fn reimage_only_when_allowed_and_never_twice_for_a_generation() {
    let never = World::new().edit(json!({"imageId": "img-bbbbbbbb"})).plan();
    assert_eq!(never.change, None);
    assert_eq!(reasons(&never), pending("imageId", "ReimageRequired"));
    assert!(condition(&never, "ReimageRequired").status);

    let allow = World::new()
        .policy(json!({"updatePolicy": {"reimage": "Allow"}}))
        .edit(json!({"imageId": "img-bbbbbbbb"}));
    assert_eq!(
        allow.plan().change,
        Some(Change::Reimage {
            image_id: "img-bbbbbbbb".into()
        })
    );
    // Crash after the call: the record for this generation stops a second one.
    let issued = allow.stored(|s| s.operation = operation("ResetInstance", "imageId", 2));
    let plan = issued.plan();
    assert_eq!(plan.change, None);
    assert_eq!(reasons(&plan), pending("imageId", "AlreadyIssued"));
}

#[test]
fn a_reimage_behind_our_back_is_reported_even_under_correct() {
    let plan = World::new()
        .policy(json!({"updatePolicy": {"drift": "Correct", "reimage": "Allow"}}))
        .console(|o| o.image_id = Some("img-cccccccc".into()))
        .plan();
    assert_eq!((plan.change, plan.drifted), (None, vec![Field::ImageId]));
}

// ---- 10. adoption -----------------------------------------------------------------------

#[test]
fn observe_only_writes_nothing_and_lists_every_difference() {
    let plan = World::new()
        .policy(json!({"managementPolicy": "ObserveOnly", "instanceId": "ins-aaaaaaaa"}))
        .edit(json!({"instanceName": "web-2", "instanceType": "S5.LARGE8"}))
        .plan();
    assert_eq!(plan.change, None);
    assert!(plan.pending.is_empty());
    assert_eq!(plan.drifted, [Field::InstanceName, Field::InstanceType]);
}

// ---- 11. replace ------------------------------------------------------------------------

#[test]
fn a_zone_change_recreates_once_with_recreate_and_waits_without() {
    let never = World::new().edit(json!({"zone": "ap-guangzhou-4"})).plan();
    assert_eq!(reasons(&never), pending("zone", "ReplaceRequired"));
    assert!(condition(&never, "ReplaceRequired").status);
    let recreate = World::new()
        .policy(json!({"updatePolicy": {"replace": "Recreate"}}))
        .edit(json!({"zone": "ap-guangzhou-4", "instanceName": "web-2"}));
    assert_eq!(
        recreate.plan().change,
        Some(Change::Recreate),
        "replacing first"
    );
    let issued = recreate.stored(|s| s.operation = operation("TerminateInstances", "zone", 2));
    assert_ne!(issued.plan().change, Some(Change::Recreate));
}

/// What no API shows (userData, the spot bid, the disk layout, a public IP added or removed)
/// is compared with the record of what the instance was created with.
#[test]
fn an_unobservable_replace_only_field_is_found_by_the_creation_record() {
    let created = |w: World| {
        let spec: CvmInstanceSpec = serde_json::from_value(w.spec.clone()).unwrap();
        w.stored(|s| s.created_with = Some(crate::api::replace_only_digests(&spec)))
    };
    let user_data = json!({"userData": "echo bye"});
    let never = created(World::new()).edit(user_data.clone()).plan();
    assert_eq!(reasons(&never), pending("userData", "ReplaceRequired"));
    let recreate = created(World::new().policy(json!({"updatePolicy": {"replace": "Recreate"}})))
        .edit(user_data.clone())
        .plan();
    assert_eq!(
        (recreate.change, recreate.change_field),
        (Some(Change::Recreate), Some(Field::CreatedWith("userData")))
    );
    let no_public_ip = created(World::new())
        .edit(json!({"network": {"publicIp": null}}))
        .plan();
    assert_eq!(
        reasons(&no_public_ip),
        pending("network.publicIp", "ReplaceRequired")
    );
    // The billing mode is seen in DescribeInstances: named once, as the observed field.
    let spot = created(World::new())
        .edit(json!({"billing": {"mode": "Spot"}}))
        .plan();
    assert_eq!(reasons(&spot), pending("billing.mode", "ReplaceRequired"));
    // No record yet (an instance created before it was kept): no guess.
    assert_eq!(World::new().edit(user_data).plan().change, None);
}
