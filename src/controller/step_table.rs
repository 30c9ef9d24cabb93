//! The protocol's state table: one row per branch of [`next_step`], for create, observe,
//! recreate (spot reclaim, launch failure, vanished after `appear_grace`) and delete
//! (`tag_grace`, orphan policy, unsupported region). Each row is a situation and the one
//! step it must lead to; a row that is missing is a branch nobody decided on purpose.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::{CvmInstanceSpec, FINALIZER, TAG_UID};
use crate::controller::conditions::Health;
use tencent_cloud::types::Tag;

const UID: &str = "u-1";

/// The reference time: every row's `now` is this plus the row's offset.
fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn at(seconds: u64) -> Timestamp {
    t0() + Duration::from_secs(seconds)
}

/// A valid spec with `extra` merged in (`null` removes a field); other unit tests use it too.
pub(crate) fn spec(extra: serde_json::Value) -> CvmInstanceSpec {
    let mut spec = serde_json::json!({
        "region": "ap-guangzhou",
        "zone": "ap-guangzhou-3",
        "instanceType": "S5.MEDIUM2",
        "imageId": "img-eb30mz89",
        "billing": {"mode": "PayAsYouGo"},
    });
    json_patch::merge(&mut spec, &extra);
    serde_json::from_value(spec).unwrap()
}

/// A situation: the resource, its stored status, what this reconcile learned, and the time.
#[derive(Clone)]
struct Case {
    object: CvmInstance,
    stored: CvmInstanceStatus,
    facts: Facts,
    now: Timestamp,
}

impl Case {
    /// A resource at generation 1 with the finalizer and credentials resolved.
    fn new() -> Self {
        let mut object = CvmInstance::new("machine", spec(serde_json::json!({})));
        object.metadata.namespace = Some("team-a".into());
        object.metadata.uid = Some(UID.into());
        object.metadata.generation = Some(1);
        object.metadata.finalizers = Some(vec![FINALIZER.into()]);
        Case {
            object,
            stored: CvmInstanceStatus::default(),
            facts: Facts {
                credentials: Some(Ok(())),
                ..Facts::default()
            },
            now: at(0),
        }
    }

    fn spec(mut self, extra: serde_json::Value) -> Self {
        let mut value = serde_json::to_value(&self.object.spec).unwrap();
        json_patch::merge(&mut value, &extra);
        self.object.spec = serde_json::from_value(value).unwrap();
        self
    }

    fn facts(mut self, change: impl FnOnce(&mut Facts)) -> Self {
        change(&mut self.facts);
        self
    }

    fn stored(mut self, change: impl FnOnce(&mut CvmInstanceStatus)) -> Self {
        change(&mut self.stored);
        self
    }

    fn generation(mut self, generation: i64) -> Self {
        self.object.metadata.generation = Some(generation);
        self
    }

    fn without_finalizer(mut self) -> Self {
        self.object.metadata.finalizers = None;
        self
    }

    /// Deleted at t0.
    fn deleted(mut self) -> Self {
        self.object.metadata.deletion_timestamp = Some(Time(t0()));
        self
    }

    fn now(mut self, seconds: u64) -> Self {
        self.now = at(seconds);
        self
    }

    /// The token of `attempt` persisted (by an earlier reconcile), no ID.
    fn token(self, attempt: i32) -> Self {
        self.stored(|s| {
            s.attempt = Some(attempt);
            s.client_token = Some(client_token(UID, attempt));
        })
        .facts(|f| f.read_back = true)
    }

    /// Instance `id` recorded as last seen in `state` (`None`: never seen), for generation 1.
    fn recorded(self, id: &str, state: Option<&str>, health: Health) -> Self {
        self.token(0).stored(|s| {
            s.instance_id = Some(id.into());
            s.instance_state = state.map(Into::into);
            s.observed_generation = Some(1);
            s.conditions = Some(health.conditions(&[], Some(1), t0()));
        })
    }

    fn step(&self) -> Step {
        let view = View {
            object: &self.object,
            stored: &self.stored,
            facts: &self.facts,
        };
        next_step(&view, self.now, &Settings::default())
    }
}

fn instance(id: &str, state: &str) -> Instance {
    Instance {
        instance_id: id.into(),
        instance_state: state.into(),
        private_ip_addresses: vec!["10.0.0.5".into()],
        tags: vec![Tag::new(TAG_UID, UID)],
        ..Default::default()
    }
}

fn of_attempt(mut instance: Instance, attempt: i32) -> Instance {
    instance
        .tags
        .push(Tag::new(TAG_ATTEMPT, attempt.to_string()));
    instance
}

fn cloud_error(code: &str) -> CloudError {
    CloudError::Api {
        action: "Test".into(),
        code: code.into(),
        message: "scripted".into(),
        request_id: "req-1".into(),
    }
}

fn not_found() -> SecretProblem {
    SecretProblem::SecretNotFound {
        namespace: "team-a".into(),
        name: "creds".into(),
    }
}

/// The credentials came from Secret `tc`, as read: held by the operator, being deleted.
fn secret(held: bool, deleting: bool) -> impl FnOnce(&mut Facts) {
    move |f: &mut Facts| {
        f.credentials_secret = Some(SecretUse {
            name: "tc".into(),
            held,
            deleting,
        });
    }
}

fn reconciling() -> Health {
    Health::progressing("Provisioning", "on its way")
}

fn ready() -> Health {
    Health::ready("InstanceRunning", "running")
}

/// A short, exact name of a step, for the table.
fn label(step: &Step) -> String {
    let ids = |instances: &[Instance]| {
        instances
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    match step {
        Step::PersistToken { attempt } => format!("PersistToken {attempt}"),
        Step::RunInstances { attempt } => format!("RunInstances {attempt}"),
        Step::Adopt { instance } => format!("Adopt {}", instance.instance_id),
        Step::RecordId { id, token } => format!("RecordId {id} {token}"),
        Step::Describe { id } => format!("Describe {id}"),
        Step::Report {
            verdict: Verdict::Report { health, requeue },
            ..
        } => format!("Report {} {requeue:?}", health.reason()),
        Step::Report {
            verdict: Verdict::Replacing { health },
            ..
        } => format!("Replacing {}", health.reason()),
        Step::WaitAppear { id } => format!("WaitAppear {id}"),
        Step::RecordOperation { change, field } => {
            format!("RecordOperation {} {}", change.action(), field.name())
        }
        Step::ChangeInstance {
            change,
            corrects_drift,
            ..
        } => {
            let why = if *corrects_drift { " (drift)" } else { "" };
            format!("ChangeInstance {}{why}", change.action())
        }
        Step::Claim { instance } => format!("Claim {}", instance.instance_id),
        Step::RecordAdopted { instance } => format!("RecordAdopted {}", instance.instance_id),
        Step::TerminateFailedLaunch { instance } => {
            format!("TerminateFailedLaunch {}", instance.instance_id)
        }
        Step::StartNewAttempt { reason, .. } => format!("StartNewAttempt {reason}"),
        Step::FollowTerminating { id } => format!("FollowTerminating {id}"),
        Step::Terminate { instances } => format!("Terminate {}", ids(instances)),
        Step::WaitTerminating { ids, recorded } => {
            format!("WaitTerminating {} recorded {recorded:?}", ids.join(","))
        }
        Step::ReleaseFinalizer {
            why: Release::Orphaned { what },
        } => format!("Release Orphaned {what}"),
        Step::ReleaseFinalizer {
            why: Release::RegionUnsupported { code, .. },
        } => format!("Release RegionUnsupported {code}"),
        Step::ReleaseFinalizer {
            why: Release::Terminated { what },
        } => format!("Release Terminated {what}"),
        Step::ReleaseFinalizer {
            why: Release::Terminating { what },
        } => format!("Release Terminating {what}"),
        Step::HoldCredentials { secret } => format!("HoldCredentials {secret}"),
        Step::TellSecretDeleting { secret } => format!("TellSecretDeleting {secret}"),
        Step::Stall { reason, then, .. } => format!("Stall {reason} {then:?}"),
        Step::CloudFailure { action, error } => format!("CloudFailure {action} {}", error.code()),
        Step::Idle { then } => format!("Idle {then:?}"),
        Step::AddFinalizer
        | Step::ResolveCredentials
        | Step::ReadBack
        | Step::ResolvePassword
        | Step::LookupByTag
        | Step::NoIdYet
        | Step::StillTerminating
        | Step::ConfirmNoInstance => format!("{step:?}"),
    }
}

fn token0() -> String {
    client_token(UID, 0)
}

fn create_rows() -> Vec<(&'static str, Case, String)> {
    let fresh = || Case::new().facts(|f| f.read_back = true);
    vec![
        ("no finalizer: added before anything", Case::new().without_finalizer(), "AddFinalizer".into()),
        ("credentials not read yet", Case::new().facts(|f| f.credentials = None), "ResolveCredentials".into()),
        ("credentials Secret not held: held before any cloud call", Case::new().facts(secret(false, false)), "HoldCredentials tc".into()),
        (
            "credentials Secret may not be held (RBAC): nothing with it",
            Case::new().facts(secret(false, false)).facts(|f| {
                f.credentials = Some(Err(SecretProblem::HoldForbidden {
                    namespace: "team-a".into(),
                    name: "tc".into(),
                    denial: "forbidden".into(),
                }));
            }),
            "Stall CredentialsSecretForbidden SlowRetry".into(),
        ),
        ("credentials Secret held: on with the protocol", Case::new().facts(secret(true, false)), "ReadBack".into()),
        ("default credentials: nothing to hold", Case::new(), "ReadBack".into()),
        (
            "credentials Secret being deleted, not held: nothing new with it",
            Case::new().facts(secret(false, true)),
            "Stall CredentialsSecretDeleting SlowRetry".into(),
        ),
        ("credentials Secret being deleted while held: told", Case::new().facts(secret(true, true)), "TellSecretDeleting tc".into()),
        (
            "credentials Secret being deleted while held, told: on with the protocol",
            Case::new().facts(secret(true, true)).facts(|f| f.told_secret_deleting = true),
            "ReadBack".into(),
        ),
        (
            "credentials Secret missing: stalled, retried slowly",
            Case::new().facts(|f| f.credentials = Some(Err(not_found()))),
            "Stall CredentialsSecretNotFound SlowRetry".into(),
        ),
        ("no ID in the cache: read back first", Case::new(), "ReadBack".into()),
        (
            "read back found another object under the name",
            fresh().facts(|f| f.replaced = true),
            "Idle AwaitChange".into(),
        ),
        (
            "userData over 16 KiB: stalled until the spec changes",
            fresh().spec(serde_json::json!({"userData": "x".repeat(13_000)})),
            "Stall UserDataTooLarge AwaitChange".into(),
        ),
        (
            "password Secret not read yet",
            fresh().spec(serde_json::json!({"login": {"passwordSecretRef": {"name": "pw", "key": "password"}}})),
            "ResolvePassword".into(),
        ),
        (
            "password Secret missing",
            fresh()
                .spec(serde_json::json!({"login": {"passwordSecretRef": {"name": "pw", "key": "password"}}}))
                .facts(|f| f.password = Some(Err(not_found()))),
            "Stall PasswordSecretNotFound SlowRetry".into(),
        ),
        ("no token: persisted before any call", fresh(), "PersistToken 0".into()),
        (
            "a new attempt's token not persisted yet",
            fresh().stored(|s| {
                s.attempt = Some(2);
                s.client_token = Some(client_token(UID, 1));
            }),
            "PersistToken 2".into(),
        ),
        (
            "token persisted just now: no lookup can find anything",
            Case::new().token(0).facts(|f| f.token_persisted_now = true),
            "RunInstances 0".into(),
        ),
        ("token from an earlier run: look up by tag", Case::new().token(0), "LookupByTag".into()),
        (
            "tag lookup failed",
            Case::new().token(0).facts(|f| f.tagged = Some(Err(cloud_error("InternalError")))),
            "CloudFailure DescribeInstances InternalError".into(),
        ),
        (
            "this attempt's instance exists: adopted",
            Case::new()
                .token(0)
                .facts(|f| f.tagged = Some(Ok(vec![of_attempt(instance("ins-1", "PENDING"), 0)]))),
            "Adopt ins-1".into(),
        ),
        (
            "adopted: reported",
            Case::new().token(0).facts(|f| {
                f.tagged = Some(Ok(vec![of_attempt(instance("ins-1", "RUNNING"), 0)]));
                f.adopted = true;
            }),
            "Report InstanceRunning Steady".into(),
        ),
        (
            "only an earlier attempt's instance carries the UID: launch anyway",
            Case::new()
                .token(1)
                .facts(|f| f.tagged = Some(Ok(vec![of_attempt(instance("ins-0", "TERMINATING"), 0)]))),
            "RunInstances 1".into(),
        ),
        (
            "nothing found: launch",
            Case::new().token(0).facts(|f| f.tagged = Some(Ok(vec![]))),
            "RunInstances 0".into(),
        ),
        (
            "RunInstances failed",
            Case::new().token(0).facts(|f| {
                f.tagged = Some(Ok(vec![]));
                f.launched = Some(Err(cloud_error("LimitExceeded.InstanceQuota")));
            }),
            "CloudFailure RunInstances LimitExceeded.InstanceQuota".into(),
        ),
        (
            "RunInstances returned an ID: persisted at once",
            Case::new().token(0).facts(|f| {
                f.tagged = Some(Ok(vec![]));
                f.launched = Some(Ok(vec!["ins-1".into()]));
            }),
            format!("RecordId ins-1 {}", token0()),
        ),
        (
            "RunInstances returned no ID",
            Case::new().token(0).facts(|f| {
                f.tagged = Some(Ok(vec![]));
                f.launched = Some(Ok(vec![]));
            }),
            "NoIdYet".into(),
        ),
    ]
}

/// ins-1 recorded, last seen PENDING.
fn pending() -> Case {
    Case::new().recorded("ins-1", Some("PENDING"), reconciling())
}

/// ins-1 recorded, last seen RUNNING, Ready.
fn ready_on_ins_1() -> Case {
    Case::new().recorded("ins-1", Some("RUNNING"), ready())
}

fn adopt_rows() -> Vec<(&'static str, Case, String)> {
    let adopting = |extra: serde_json::Value| {
        let mut spec = serde_json::json!({
            "instanceId": "ins-abcd1234",
            "credentialsSecretRef": {"name": "tc"}
        });
        json_patch::merge(&mut spec, &extra);
        Case::new().facts(|f| f.read_back = true).spec(spec)
    };
    let described = |tags: Vec<Tag>| {
        move |f: &mut Facts| {
            let mut found = instance("ins-abcd1234", "RUNNING");
            found.tags = tags;
            f.described = Some(Ok(Some(found)));
        }
    };
    vec![
        (
            "no credentials of its own: refused, no call",
            adopting(serde_json::json!({"credentialsSecretRef": null})),
            "Stall AdoptionNeedsOwnCredentials AwaitChange".into(),
        ),
        (
            "described first, never RunInstances",
            adopting(serde_json::json!({})),
            "Describe ins-abcd1234".into(),
        ),
        (
            "no such instance: stalls, nothing created",
            adopting(serde_json::json!({})).facts(|f| f.described = Some(Ok(None))),
            "Stall InstanceNotFound SlowRetry".into(),
        ),
        (
            "another resource's instance: refused",
            adopting(serde_json::json!({}))
                .facts(described(vec![Tag::new(TAG_UID, "someone-else")])),
            "Stall AdoptionConflict SlowRetry".into(),
        ),
        (
            "unclaimed, managed: claimed with the UID tag",
            adopting(serde_json::json!({})).facts(described(vec![])),
            "Claim ins-abcd1234".into(),
        ),
        (
            "claimed, the tag not showing yet: look again",
            adopting(serde_json::json!({}))
                .facts(described(vec![]))
                .facts(|f| f.claimed = true),
            "Idle PollMin".into(),
        ),
        (
            "claimed by us: recorded",
            adopting(serde_json::json!({})).facts(described(vec![Tag::new(TAG_UID, UID)])),
            "RecordAdopted ins-abcd1234".into(),
        ),
        (
            "observe only: recorded without a claim",
            adopting(serde_json::json!({"managementPolicy": "ObserveOnly"}))
                .facts(described(vec![])),
            "RecordAdopted ins-abcd1234".into(),
        ),
        (
            "a set's child with the operator's credentials: described first",
            set_child(adopting(serde_json::json!({"credentialsSecretRef": null}))),
            "Describe ins-abcd1234".into(),
        ),
        (
            "a set's child, nothing recorded in the cache: no read-back (it never launches)",
            set_child(Case::new().spec(
                serde_json::json!({"instanceId": "ins-abcd1234", "credentialsSecretRef": null}),
            )),
            "Describe ins-abcd1234".into(),
        ),
        (
            "an adopting resource outside a set still reads back first",
            Case::new().spec(
                serde_json::json!({"instanceId": "ins-abcd1234", "credentialsSecretRef": {"name": "tc"}}),
            ),
            "ReadBack".into(),
        ),
        (
            "a set's child, its set's launch running: reported without a claim (no Tag call)",
            set_child(adopting(serde_json::json!({"credentialsSecretRef": null})))
                .facts(described(launched_by("set-1", "team-a"))),
            "Report InstanceRunning Steady".into(),
        ),
        (
            "a set's child, its set's launch still booting: nothing written yet, polled",
            set_child(adopting(serde_json::json!({"credentialsSecretRef": null})))
                .facts(booting("PENDING", vec![])),
            "Idle Soon".into(),
        ),
        (
            "a set's child, its set's launch running without the public IP it wants: nothing written yet",
            set_child(adopting(serde_json::json!({
                "credentialsSecretRef": null,
                "network": {"publicIp": {"maxBandwidthOutMbps": 10}}
            })))
            .facts(booting("RUNNING", vec![])),
            "Idle Soon".into(),
        ),
        (
            "a set's child, its set's launch Ready: managed at once, the first status is Ready",
            set_child(adopting(serde_json::json!({
                "credentialsSecretRef": null,
                "network": {"publicIp": {"maxBandwidthOutMbps": 10}}
            })))
            .facts(booting("RUNNING", vec!["203.0.113.7".into()])),
            "Report InstanceRunning Steady".into(),
        ),
        (
            "a set's child, its set's launch booting for longer than QUIET_BOOT: its state is the first status",
            set_child(adopting(serde_json::json!({"credentialsSecretRef": null})))
                .facts(booting("PENDING", vec![]))
                .now(QUIET_BOOT.as_secs()),
            "Report Provisioning Soon".into(),
        ),
        (
            "a set's child, its set's launch failed: written at once",
            set_child(adopting(serde_json::json!({"credentialsSecretRef": null})))
                .facts(booting("LAUNCH_FAILED", vec![])),
            "Report LaunchFailed Slow".into(),
        ),
        (
            "a set's child, another set's launch: refused",
            set_child(adopting(serde_json::json!({})))
                .facts(described(launched_by("set-2", "team-a"))),
            "Stall AdoptionConflict SlowRetry".into(),
        ),
        (
            "a set's child, its set's UID but another namespace's launch: refused",
            set_child(adopting(serde_json::json!({})))
                .facts(described(launched_by("set-1", "team-b"))),
            "Stall AdoptionConflict SlowRetry".into(),
        ),
        (
            "a set's child with the operator's credentials, an instance no set launched: refused",
            set_child(adopting(serde_json::json!({"credentialsSecretRef": null})))
                .facts(described(vec![])),
            "Stall AdoptionNeedsOwnCredentials AwaitChange".into(),
        ),
        (
            "not a set's child, a set's launch: refused",
            adopting(serde_json::json!({})).facts(described(launched_by("set-1", "team-a"))),
            "Stall AdoptionConflict SlowRetry".into(),
        ),
    ]
}

/// Facts: `ins-abcd1234`, launched by set `set-1`, described in `state` with `public_ips`.
fn booting(state: &'static str, public_ips: Vec<String>) -> impl FnOnce(&mut Facts) {
    move |f: &mut Facts| {
        let mut found = instance("ins-abcd1234", state);
        found.tags = launched_by("set-1", "team-a");
        found.public_ip_addresses = public_ips;
        f.described = Some(Ok(Some(found)));
    }
}

/// `case` controlled by the CvmInstanceSet with UID `set-1`, created at t0.
fn set_child(mut case: Case) -> Case {
    case.object.metadata.creation_timestamp = Some(Time(t0()));
    case.object.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "cvm-operator.io/v1alpha1".into(),
            kind: "CvmInstanceSet".into(),
            name: "workers".into(),
            uid: "set-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    ]);
    case
}

/// The tags a set's launch puts on its instances.
fn launched_by(set_uid: &str, namespace: &str) -> Vec<Tag> {
    vec![
        Tag::new(crate::api::TAG_SET_UID, set_uid),
        Tag::new(crate::api::TAG_NAMESPACE, namespace),
    ]
}

fn observe_rows() -> Vec<(&'static str, Case, String)> {
    let described = |state: &str| {
        let instance = instance("ins-1", state);
        move |f: &mut Facts| f.described = Some(Ok(Some(instance)))
    };
    let gone = |f: &mut Facts| f.described = Some(Ok(None));
    let failed_before = || {
        Case::new().recorded(
            "ins-1",
            Some("LAUNCH_FAILED"),
            Health::stalled("LaunchFailed", "failed"),
        )
    };
    vec![
        (
            "an ID in the cache needs no read-back",
            pending().facts(|f| f.read_back = false),
            "Describe ins-1".into(),
        ),
        (
            "Ready, current, the sweeper saw it: no call",
            ready_on_ins_1().facts(|f| f.sweeper_vouches = true),
            "Idle Steady".into(),
        ),
        (
            "Ready but the spec changed: look",
            ready_on_ins_1()
                .generation(2)
                .facts(|f| f.sweeper_vouches = true),
            "Describe ins-1".into(),
        ),
        (
            "the sweeper saw it but it is not Ready: look",
            pending().facts(|f| f.sweeper_vouches = true),
            "Describe ins-1".into(),
        ),
        (
            "DescribeInstances failed",
            pending().facts(|f| f.described = Some(Err(cloud_error("RequestLimitExceeded")))),
            "CloudFailure DescribeInstances RequestLimitExceeded".into(),
        ),
        (
            "RUNNING: Ready, followed by the sweeper",
            pending().facts(described("RUNNING")),
            "Report InstanceRunning Steady".into(),
        ),
        (
            "RUNNING without the public IP asked for",
            Case::new()
                .spec(serde_json::json!({"network": {"publicIp": {"maxBandwidthOutMbps": 10}}}))
                .recorded("ins-1", Some("PENDING"), reconciling())
                .facts(described("RUNNING")),
            "Report WaitingForPublicIp Soon".into(),
        ),
        (
            "PENDING: polled",
            Case::new()
                .recorded("ins-1", None, reconciling())
                .facts(described("PENDING")),
            "Report Provisioning Soon".into(),
        ),
        (
            "spot reclaim: TERMINATING outside the operator",
            ready_on_ins_1().facts(described("TERMINATING")),
            "Replacing InstanceTerminating".into(),
        ),
        (
            "a set's child whose machine its set terminated, not yet deleted: no write, polled",
            set_child(ready_on_ins_1()).facts(described("TERMINATING")),
            "Idle PollMin".into(),
        ),
        (
            "launch failed: stalled with the cloud's message",
            pending().facts(described("LAUNCH_FAILED")),
            "Report LaunchFailed Slow".into(),
        ),
        (
            "a spec change before the failure was reported does not retry",
            pending().generation(2).facts(described("LAUNCH_FAILED")),
            "Report LaunchFailed Slow".into(),
        ),
        (
            "launch failed, spec unchanged since: still stalled",
            failed_before().facts(described("LAUNCH_FAILED")),
            "Report LaunchFailed Slow".into(),
        ),
        (
            "launch failed, spec changed since: the failed one goes first",
            failed_before()
                .generation(2)
                .facts(described("LAUNCH_FAILED")),
            "TerminateFailedLaunch ins-1".into(),
        ),
        (
            "launch failed, spec changed, told to terminate: new attempt",
            failed_before()
                .generation(2)
                .facts(described("LAUNCH_FAILED"))
                .facts(|f| {
                    f.failed_launch_terminated = true;
                }),
            "StartNewAttempt RetryingLaunch".into(),
        ),
        (
            "never seen, missing within appear_grace: wait",
            Case::new()
                .recorded("ins-1", None, reconciling())
                .facts(gone)
                .now(299),
            "WaitAppear ins-1".into(),
        ),
        (
            "never seen, missing for appear_grace: vanished, new attempt",
            Case::new()
                .recorded("ins-1", None, reconciling())
                .facts(gone)
                .now(300),
            "StartNewAttempt InstanceVanished".into(),
        ),
        (
            "seen before, now missing (reclaimed and gone): new attempt at once",
            ready_on_ins_1().facts(gone),
            "StartNewAttempt InstanceVanished".into(),
        ),
        (
            "adopted and now missing: never recreated, stalled (a set replaces its child)",
            ready_on_ins_1()
                .spec(serde_json::json!({"instanceId": "ins-1", "credentialsSecretRef": {"name": "tc"}}))
                .facts(gone),
            "Stall InstanceNotFound SlowRetry".into(),
        ),
        (
            "a set's child its set is removing, machine gone before the deletion: no write",
            set_child(ready_on_ins_1())
                .spec(serde_json::json!({"instanceId": "ins-1"}))
                .facts(|f| {
                    f.described = Some(Ok(None));
                    f.removed_by_set = true;
                }),
            "Idle PollMin".into(),
        ),
        (
            "never seen and not Reconciling (Stalled): no grace to wait out",
            Case::new()
                .recorded("ins-1", None, Health::stalled("QuotaExceeded", "quota"))
                .facts(gone),
            "WaitAppear ins-1".into(),
        ),
    ]
}

/// The login password from a Secret on a Ready instance: the Secret is read on every
/// reconcile (nothing watches it), and a new digest is a restart-class change.
fn password_rows() -> Vec<(&'static str, Case, String)> {
    let with_password = |extra: serde_json::Value| {
        let mut spec = serde_json::json!({"login": {"passwordSecretRef": {"name": "pw"}}});
        json_patch::merge(&mut spec, &extra);
        ready_on_ins_1()
            .spec(spec)
            .stored(|s| s.password_hash = Some("digest-1".into()))
            .facts(|f| f.sweeper_vouches = true)
    };
    let digest = |d: &str| {
        let d = d.to_string();
        move |f: &mut Facts| f.password = Some(Ok(d))
    };
    let running = |f: &mut Facts| f.described = Some(Ok(Some(instance("ins-1", "RUNNING"))));
    let stopped = |f: &mut Facts| f.described = Some(Ok(Some(instance("ins-1", "STOPPED"))));
    vec![
        (
            "Ready and vouched for, but the Secret is read first",
            with_password(serde_json::json!({})),
            "ResolvePassword".into(),
        ),
        (
            "the same password: no call",
            with_password(serde_json::json!({})).facts(digest("digest-1")),
            "Idle Steady".into(),
        ),
        (
            "a new password: the instance is looked at though the sweeper vouches",
            with_password(serde_json::json!({})).facts(digest("digest-2")),
            "Describe ins-1".into(),
        ),
        (
            "the Secret gone after creation: nothing to compare, nothing blocked",
            with_password(serde_json::json!({})).facts(|f| f.password = Some(Err(not_found()))),
            "Idle Steady".into(),
        ),
        (
            "observe only: the Secret is not read",
            with_password(serde_json::json!({"managementPolicy": "ObserveOnly"})),
            "Idle Steady".into(),
        ),
        (
            "a new password, restarts not allowed: waits, no call",
            with_password(serde_json::json!({}))
                .facts(digest("digest-2"))
                .facts(running),
            "Report RestartRequired Steady".into(),
        ),
        (
            "a new password, restarts allowed: the stop window opens",
            with_password(serde_json::json!({"updatePolicy": {"restart": "IfNeeded"}}))
                .facts(digest("digest-2"))
                .facts(running),
            "RecordOperation StopInstances login.passwordSecretRef".into(),
        ),
        (
            "a new password, stopped: reset",
            with_password(serde_json::json!({"updatePolicy": {"restart": "IfNeeded"}}))
                .facts(digest("digest-2"))
                .facts(stopped),
            "RecordOperation ResetInstancesPassword login.passwordSecretRef".into(),
        ),
        (
            "no digest recorded yet (adopted, or older): the first one is the baseline",
            with_password(serde_json::json!({"updatePolicy": {"restart": "IfNeeded"}}))
                .stored(|s| s.password_hash = None)
                .facts(digest("digest-2"))
                .facts(running),
            "Report InstanceRunning Steady".into(),
        ),
    ]
}

/// A recorded day-2 change is sent; the step says whether it sets back a change made outside
/// the operator (the Event then reads DriftCorrected) or applies the spec.
fn change_rows() -> Vec<(&'static str, Case, String)> {
    let named = |name: &str| {
        let mut instance = instance("ins-1", "RUNNING");
        instance.instance_name = Some(name.into());
        instance
    };
    let rename = |to: &str| {
        let change = Change::Rename {
            instance_name: to.into(),
        };
        move |f: &mut Facts| f.recorded = Some((change, Field::InstanceName))
    };
    let web = named("web");
    let last_seen_as_web = move |s: &mut CvmInstanceStatus| {
        s.observed = Some(update::observe(&web, &spec(serde_json::json!({})), s));
    };
    let correcting =
        serde_json::json!({"instanceName": "web", "updatePolicy": {"drift": "Correct"}});
    vec![
        (
            "renamed in the console, drift corrected",
            ready_on_ins_1()
                .spec(correcting.clone())
                .stored(last_seen_as_web.clone())
                .facts(|f| f.described = Some(Ok(Some(named("console")))))
                .facts(rename("web")),
            "ChangeInstance ModifyInstancesAttribute (drift)".into(),
        ),
        (
            "renamed in the spec: applied, not drift",
            ready_on_ins_1()
                .spec(serde_json::json!({"instanceName": "api"}))
                .generation(2)
                .stored(last_seen_as_web)
                .facts(|f| f.described = Some(Ok(Some(named("web")))))
                .facts(rename("api")),
            "ChangeInstance ModifyInstancesAttribute".into(),
        ),
    ]
}

/// `updatePolicy.replace: Recreate` and a field no API changes (here the zone): the old
/// instance is terminated, then a new attempt with a new token starts; never the other way.
fn replace_rows() -> Vec<(&'static str, Case, String)> {
    let moved = |policy: &str| {
        let mut old = instance("ins-1", "RUNNING");
        old.placement = Some(tencent_cloud::types::Placement {
            zone: "ap-guangzhou-3".into(),
            ..Default::default()
        });
        ready_on_ins_1()
            .generation(2)
            .spec(
                serde_json::json!({"zone": "ap-guangzhou-4", "updatePolicy": {"replace": policy}}),
            )
            .facts(move |f| f.described = Some(Ok(Some(old))))
    };
    vec![
        (
            "replacement not allowed: waits, no call",
            moved("Never"),
            "Report ReplaceRequired Steady".into(),
        ),
        (
            "Recreate: the old instance goes first",
            moved("Recreate"),
            "Terminate ins-1".into(),
        ),
        (
            "Recreate, terminated: a new attempt",
            moved("Recreate").facts(|f| f.terminated = Some(Ok(()))),
            "StartNewAttempt Replacing".into(),
        ),
        (
            "Recreate, the termination refused: its code, no new attempt",
            moved("Recreate")
                .facts(|f| f.terminated = Some(Err(cloud_error("InvalidInstanceState")))),
            "CloudFailure TerminateInstances InvalidInstanceState".into(),
        ),
    ]
}

fn delete_rows() -> Vec<(&'static str, Case, String)> {
    let recorded = |state: &str| {
        Case::new()
            .recorded("ins-1", Some(state), reconciling())
            .deleted()
    };
    let tagged = |instances: Vec<Instance>| move |f: &mut Facts| f.tagged = Some(Ok(instances));
    let running = || of_attempt(instance("ins-1", "RUNNING"), 0);
    vec![
        (
            "finalizer already gone: nothing to do",
            recorded("RUNNING").without_finalizer(),
            "Idle AwaitChange".into(),
        ),
        (
            "adopted without a deletionPolicy: left running",
            recorded("RUNNING").spec(serde_json::json!({"instanceId": "ins-1"})),
            "Release Orphaned ins-1".into(),
        ),
        (
            "adopted with deletionPolicy Delete: no tag lookup (it never launched), described",
            recorded("RUNNING")
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"})),
            "Describe ins-1".into(),
        ),
        (
            "adopted with deletionPolicy Delete: terminated",
            recorded("RUNNING")
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"}))
                .facts(|f| f.described = Some(Ok(Some(instance("ins-1", "RUNNING"))))),
            "Terminate ins-1".into(),
        ),
        (
            "a set's child deleted still running (by hand, or by the garbage collector): terminated",
            set_child(recorded("RUNNING"))
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"}))
                .facts(|f| f.described = Some(Ok(Some(instance("ins-1", "RUNNING"))))),
            "Terminate ins-1".into(),
        ),
        (
            "a set's child deleted by its set while the set's TerminateInstances is in flight: waits, no call of its own",
            set_child(recorded("RUNNING"))
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"}))
                .facts(|f| {
                    f.described = Some(Ok(Some(instance("ins-1", "RUNNING"))));
                    f.removed_by_set = true;
                    f.set_terminating = true;
                }),
            "Idle PollMin".into(),
        ),
        (
            "a set's child removed by its set whose call returned and the machine still runs: terminated by the child",
            set_child(recorded("RUNNING"))
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"}))
                .facts(|f| {
                    f.described = Some(Ok(Some(instance("ins-1", "RUNNING"))));
                    f.removed_by_set = true;
                }),
            "Terminate ins-1".into(),
        ),
        (
            "a set's child the set terminated before deleting it: let go at once, never terminated again",
            set_child(recorded("RUNNING"))
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"}))
                .facts(|f| f.described = Some(Ok(Some(instance("ins-1", "TERMINATING"))))),
            "Release Terminating ins-1".into(),
        ),
        (
            "a set's child deleted still running: let go once its terminate is accepted",
            set_child(recorded("RUNNING"))
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"}))
                .facts(|f| {
                    f.described = Some(Ok(Some(instance("ins-1", "RUNNING"))));
                    f.terminated = Some(Ok(()));
                }),
            "Release Terminating ins-1".into(),
        ),
        (
            "a set's child deleted before its first status: the machine its spec names is described",
            set_child(Case::new().deleted().facts(|f| f.read_back = true))
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"})),
            "Describe ins-1".into(),
        ),
        (
            "a set's child deleted before its first status, machine running: terminated",
            set_child(Case::new().deleted().facts(|f| f.read_back = true))
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"}))
                .facts(|f| f.described = Some(Ok(Some(instance("ins-1", "RUNNING"))))),
            "Terminate ins-1".into(),
        ),
        (
            "an adopting resource outside a set deleted before its adoption was recorded: not terminated",
            Case::new()
                .deleted()
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"})),
            "Release Terminated no instance".into(),
        ),
        (
            "observed only: never terminated, whatever the policy",
            recorded("RUNNING").spec(
                serde_json::json!({"managementPolicy": "ObserveOnly", "deletionPolicy": "Delete"}),
            ),
            "Release Orphaned ins-1".into(),
        ),
        (
            "Orphan: let go, even without credentials",
            recorded("RUNNING")
                .spec(serde_json::json!({"deletionPolicy": "Orphan"}))
                .facts(|f| f.credentials = None),
            "Release Orphaned ins-1".into(),
        ),
        (
            "Orphan with no instance",
            Case::new()
                .deleted()
                .spec(serde_json::json!({"deletionPolicy": "Orphan"})),
            "Release Orphaned no instance".into(),
        ),
        (
            "credentials not read yet",
            recorded("RUNNING").facts(|f| f.credentials = None),
            "ResolveCredentials".into(),
        ),
        (
            "credentials missing: the finalizer stays",
            recorded("RUNNING").facts(|f| f.credentials = Some(Err(not_found()))),
            "Stall CredentialsSecretNotFound SlowRetry".into(),
        ),
        (
            "credentials Secret not held: held before terminating",
            recorded("RUNNING").facts(secret(false, false)),
            "HoldCredentials tc".into(),
        ),
        (
            "credentials Secret being deleted, not held: terminate with it while it lasts",
            recorded("RUNNING").facts(secret(false, true)),
            "LookupByTag".into(),
        ),
        (
            "credentials Secret being deleted while held: told",
            recorded("RUNNING").facts(secret(true, true)),
            "TellSecretDeleting tc".into(),
        ),
        (
            "releasing recorded (a crash after the Secret went): let go without credentials",
            recorded("RUNNING")
                .stored(|s| {
                    s.conditions =
                        Some(Health::progressing(RELEASING, "ins-1 is gone").conditions(
                            &[],
                            Some(1),
                            t0(),
                        ));
                })
                .facts(|f| f.credentials = Some(Err(not_found()))),
            "Release Terminated ins-1".into(),
        ),
        (
            "a running instance: look for everything by tag",
            recorded("RUNNING"),
            "LookupByTag".into(),
        ),
        (
            "already terminating: follow it by ID",
            recorded("TERMINATING"),
            "FollowTerminating ins-1".into(),
        ),
        (
            "still terminating: look again, write nothing",
            recorded("TERMINATING").facts(|f| {
                f.followed = Some(Ok(Some(instance("ins-1", "TERMINATING"))));
            }),
            "StillTerminating".into(),
        ),
        (
            "following it failed",
            recorded("TERMINATING").facts(|f| f.followed = Some(Err(cloud_error("InternalError")))),
            "CloudFailure DescribeInstances InternalError".into(),
        ),
        (
            "it is gone: the tag lookup confirms nothing else is left",
            recorded("TERMINATING").facts(|f| f.followed = Some(Ok(None))),
            "LookupByTag".into(),
        ),
        (
            "unsupported region and no ID: nothing can exist",
            Case::new()
                .token(0)
                .deleted()
                .facts(|f| f.tagged = Some(Err(cloud_error("UnsupportedRegion")))),
            "Release RegionUnsupported UnsupportedRegion".into(),
        ),
        (
            "unsupported region but an ID recorded: an error like any other",
            recorded("RUNNING").facts(|f| f.tagged = Some(Err(cloud_error("UnsupportedRegion")))),
            "CloudFailure DescribeInstances UnsupportedRegion".into(),
        ),
        (
            "tag lookup failed",
            recorded("RUNNING")
                .facts(|f| f.tagged = Some(Err(cloud_error("AuthFailure.SignatureFailure")))),
            "CloudFailure DescribeInstances AuthFailure.SignatureFailure".into(),
        ),
        (
            "the recorded ID is not tagged yet: described by ID",
            recorded("RUNNING").facts(tagged(vec![])),
            "Describe ins-1".into(),
        ),
        (
            "describing the recorded ID failed",
            recorded("RUNNING").facts(tagged(vec![])).facts(|f| {
                f.described = Some(Err(cloud_error("InternalError")));
            }),
            "CloudFailure DescribeInstances InternalError".into(),
        ),
        (
            "nothing left: let go",
            recorded("TERMINATING")
                .facts(|f| f.followed = Some(Ok(None)))
                .facts(tagged(vec![]))
                .facts(|f| f.described = Some(Ok(None))),
            "Release Terminated ins-1".into(),
        ),
        (
            "never created: let go at once",
            Case::new().deleted().facts(tagged(vec![])),
            "Release Terminated no instance".into(),
        ),
        (
            "token but no ID, within tag_grace: tags may lag",
            Case::new().token(0).deleted().facts(tagged(vec![])).now(59),
            "ConfirmNoInstance".into(),
        ),
        (
            "token but no ID, after tag_grace: let go",
            Case::new().token(0).deleted().facts(tagged(vec![])).now(60),
            "Release Terminated no instance".into(),
        ),
        (
            "adopting, a token from an earlier attempt, no ID: nothing can show up by tag, let go",
            Case::new()
                .token(0)
                .spec(serde_json::json!({"instanceId": "ins-1", "deletionPolicy": "Delete"}))
                .deleted()
                .facts(|f| f.described = Some(Ok(None)))
                .now(5),
            "Release Terminated no instance".into(),
        ),
        (
            "token but no ID, found by tag: terminated",
            Case::new()
                .token(0)
                .deleted()
                .facts(tagged(vec![running()])),
            "Terminate ins-1".into(),
        ),
        (
            "the recorded instance runs: terminate",
            recorded("RUNNING").facts(tagged(vec![running()])),
            "Terminate ins-1".into(),
        ),
        (
            "an earlier attempt's instance too, each once",
            recorded("RUNNING")
                .facts(tagged(vec![
                    of_attempt(instance("ins-0", "RUNNING"), 0),
                    of_attempt(instance("ins-0", "RUNNING"), 0),
                ]))
                .facts(|f| f.described = Some(Ok(Some(running())))),
            "Terminate ins-0,ins-1".into(),
        ),
        (
            "terminated: record and wait",
            recorded("RUNNING")
                .facts(tagged(vec![running()]))
                .facts(|f| f.terminated = Some(Ok(()))),
            "WaitTerminating ins-1 recorded Some(\"ins-1\")".into(),
        ),
        (
            "already terminated counts as done",
            recorded("RUNNING")
                .facts(tagged(vec![running()]))
                .facts(|f| {
                    f.terminated = Some(Err(cloud_error("InvalidInstanceId.NotFound")));
                }),
            "WaitTerminating ins-1 recorded Some(\"ins-1\")".into(),
        ),
        (
            "TerminateInstances failed",
            recorded("RUNNING")
                .facts(tagged(vec![running()]))
                .facts(|f| {
                    f.terminated = Some(Err(cloud_error(
                        "UnsupportedOperation.InstanceMixedPricingModel",
                    )));
                }),
            "CloudFailure TerminateInstances UnsupportedOperation.InstanceMixedPricingModel".into(),
        ),
        (
            "everything already terminating: only wait",
            Case::new().token(0).deleted().facts(tagged(vec![of_attempt(
                instance("ins-9", "TERMINATING"),
                0,
            )])),
            "WaitTerminating ins-9 recorded None".into(),
        ),
    ]
}

#[test]
fn every_row_of_the_protocol_leads_to_its_step() {
    let rows: Vec<_> = [
        create_rows(),
        adopt_rows(),
        observe_rows(),
        password_rows(),
        change_rows(),
        replace_rows(),
        delete_rows(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut wrong = Vec::new();
    for (name, case, expected) in &rows {
        let got = label(&case.step());
        if &got != expected {
            wrong.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

#[test]
fn steps_that_learn_or_prepare_continue_and_outcomes_end() {
    let continuing = [
        Step::AddFinalizer,
        Step::ResolveCredentials,
        Step::HoldCredentials {
            secret: "tc".into(),
        },
        Step::TellSecretDeleting {
            secret: "tc".into(),
        },
        Step::ReadBack,
        Step::ResolvePassword,
        Step::PersistToken { attempt: 0 },
        Step::LookupByTag,
        Step::RunInstances { attempt: 0 },
        Step::Describe { id: "ins-1".into() },
        Step::FollowTerminating { id: "ins-1".into() },
        Step::Terminate { instances: vec![] },
    ];
    assert!(continuing.iter().all(|s| !s.ends()));
    let ending = [
        Step::NoIdYet,
        Step::StillTerminating,
        Step::ConfirmNoInstance,
        Step::Idle { then: Wait::Steady },
    ];
    assert!(ending.iter().all(Step::ends));
}

/// Every RunInstances is preceded by a persisted token: no row reaches it otherwise.
#[test]
fn run_instances_only_with_the_token_of_its_attempt_stored() {
    for (name, case, _) in create_rows() {
        if let Step::RunInstances { attempt } = case.step() {
            assert_eq!(
                case.stored.client_token,
                Some(client_token(UID, attempt)),
                "{name}"
            );
        }
    }
}

/// The stop window's second call: the report right after it is judged by the plan that
/// decided it, whose record (the stop, with its RequestId) explains why the instance is
/// stopped. Judged by the new record (no RequestId yet), the stop would look like someone
/// else's: powerState drift, and under `drift: Report` the instance would stay stopped.
#[test]
fn the_report_after_a_call_in_the_stop_window_takes_the_stop_for_the_operators_own() {
    let operation = |action: &str, request_id: Option<&str>| crate::api::Operation {
        action: action.into(),
        field: "login.passwordSecretRef".into(),
        request_id: request_id.map(Into::into),
        prior_request_id: None,
        generation: 1,
        started_at: Time(t0()),
    };
    let mut stopped = instance("ins-1", "STOPPED");
    stopped.latest_operation = Some("StopInstances".into());
    stopped.latest_operation_state = Some("SUCCESS".into());
    stopped.latest_operation_request_id = Some("req-stop".into());
    let case = ready_on_ins_1()
        .spec(serde_json::json!({
            "login": {"passwordSecretRef": {"name": "pw"}},
            "updatePolicy": {"restart": "IfNeeded"}
        }))
        .stored(|s| {
            s.password_hash = Some("digest-1".into());
            // The last pass saw it stopping; this one sees it stopped.
            s.observed = Some(day2::Observed {
                instance_state: Some("STOPPING".into()),
                ..Default::default()
            });
            s.operation = Some(operation("ResetInstancesPassword", None));
        })
        .facts(move |f| {
            f.password = Some(Ok("digest-2".into()));
            f.described = Some(Ok(Some(stopped)));
            f.recorded = Some((Change::ResetPassword, Field::Password));
            f.superseded = Some(operation("StopInstances", Some("req-stop")));
            f.changed = Some(Ok(Some("req-reset".into())));
        });
    let Step::Report {
        day2: Some(day2), ..
    } = case.step()
    else {
        panic!("a managed report");
    };
    assert_eq!(day2.plan.change, Some(Change::ResetPassword));
    assert!(day2.plan.drifted.is_empty(), "{:?}", day2.plan.drifted);
}
