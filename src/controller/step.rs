//! The create, observe, recreate and delete protocol as a pure function: from what one
//! reconcile knows so far (the resource, its stored status, what the cloud and the Secrets
//! said) and the time, the one next [`Step`]. `execute` performs it, learns something or
//! writes something, and asks again, until a step ends the reconcile with a [`Wait`].
//!
//! No I/O here, so every row of the protocol is a unit test (see the table at the end).

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::conditions::RECONCILING;
use super::context::Settings;
use super::credentials::{Purpose, SecretProblem};
use super::finalizer::has_finalizer;
use super::observe::{Requeue, Verdict, judge};
use super::request::{TAG_ATTEMPT, client_token, user_data_fits};
use super::secret_use::SecretUse;
use super::update;
use crate::api::{
    CvmInstance, CvmInstanceStatus, DeletionPolicy, ManagementPolicy, TAG_NAMESPACE, TAG_SET_UID,
    TAG_UID,
};
use crate::day2::{self, Change, Field, Observed, Plan, PlanInput};
use crate::set::children::controlling_set;
use tencent_cloud::error::CloudError;
use tencent_cloud::types::Instance;

/// What one reconcile has learned so far. Starts empty; each step the executor performs
/// fills in its answer, so the same step is never asked for twice.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The credentials Secret resolved (`Ok`), or why not.
    pub credentials: Option<Result<(), SecretProblem>>,
    /// The credentials Secret as read (held, being deleted); `None` for the defaults.
    pub credentials_secret: Option<SecretUse>,
    /// The resource was told (or had been told) that its credentials Secret is being deleted.
    pub told_secret_deleting: bool,
    /// The status was read back from the API server (not the watch cache) in this reconcile.
    pub read_back: bool,
    /// The read-back found another object under the name (deleted and created again).
    pub replaced: bool,
    /// The login password Secret resolved: the password's salted digest (the password
    /// itself stays with the executor), or why not.
    pub password: Option<Result<String, SecretProblem>>,
    /// The ClientToken was persisted by this reconcile, after a fresh read: no RunInstances
    /// can have carried it yet.
    pub token_persisted_now: bool,
    /// DescribeInstances by the UID tag.
    pub tagged: Option<Result<Vec<Instance>, CloudError>>,
    /// The instance of this attempt found by tag was taken over (recorded, Event sent).
    pub adopted: bool,
    /// RunInstances' answer: the new IDs.
    pub launched: Option<Result<Vec<String>, CloudError>>,
    /// On deletion, DescribeInstances of the recorded instance already told to terminate.
    pub followed: Option<Result<Option<Instance>, CloudError>>,
    /// DescribeInstances of the recorded instance.
    pub described: Option<Result<Option<Instance>, CloudError>>,
    /// A LAUNCH_FAILED instance was told to terminate (best effort) before a new attempt.
    pub failed_launch_terminated: bool,
    /// TerminateInstances' answer, on deletion.
    pub terminated: Option<Result<(), CloudError>>,
    /// The sweeper saw the recorded instance unchanged within two resync periods.
    pub sweeper_vouches: bool,
    /// The set that controls this resource is removing it (its deletion follows).
    pub removed_by_set: bool,
    /// That set's TerminateInstances naming this resource's machine is in flight.
    pub set_terminating: bool,
    /// The UID tag was put on the instance named by `spec.instanceId` (then described again).
    pub claimed: bool,
    /// The day-2 change this reconcile recorded in `status.operation`, about to be sent.
    pub recorded: Option<(Change, Field)>,
    /// The operation record that `recorded` replaced: the plan reported after the call is
    /// made from it, as the plan that decided was (the new record has no RequestId yet, so
    /// it would take the previous call's effect, e.g. the stop, for someone else's).
    pub superseded: Option<crate::api::Operation>,
    /// The day-2 call's answer: its RequestId (`None` for a Tag service change).
    pub changed: Option<Result<Option<String>, CloudError>>,
}

/// Everything [`next_step`] decides from.
pub struct View<'a> {
    /// The resource as this reconcile got it (spec, generation, finalizers, deletion).
    pub object: &'a CvmInstance,
    /// Its status as last written or read back.
    pub stored: &'a CvmInstanceStatus,
    pub facts: &'a Facts,
}

/// What the day-2 planner saw and decided for a managed instance.
#[derive(Debug, Clone)]
pub struct Day2 {
    pub observed: Observed,
    pub plan: Plan,
    /// The salted digest of the password in the Secret now, if the login uses one.
    pub password_digest: Option<String>,
}

/// When to look at the resource again once a step ends the reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Only when the resource changes.
    AwaitChange,
    /// The shortest poll period.
    PollMin,
    /// Soon, backing off with the time spent Reconciling.
    Soon,
    /// The sweeper follows it; the safety-net timer only.
    Steady,
    /// A person has to act: the slow retry, backing off.
    SlowRetry,
    /// A transient failure: the poll period, backing off.
    Backoff,
    /// A new attempt starts at once.
    Immediately,
}

/// Why the finalizer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// `deletionPolicy: Orphan`: the instance (`what`) is left running.
    Orphaned { what: String },
    /// The API does not serve the region, and no ID was recorded: no instance can exist.
    RegionUnsupported { code: String, message: String },
    /// Nothing carrying the UID is left (`what`: the recorded ID or "no instance").
    Terminated { what: String },
    /// A set's child whose instance (`what`) is terminating, irrevocably.
    Terminating { what: String },
}

/// The one next thing to do. Steps that end the reconcile say so by [`Step::ends`].
#[derive(Debug, Clone)]
pub enum Step {
    /// Add the finalizer before any cloud call, so no instance exists without it.
    AddFinalizer,
    /// Read the credentials Secret (or take the defaults).
    ResolveCredentials,
    /// Put the in-use finalizer on the credentials Secret before any cloud call with it.
    HoldCredentials { secret: String },
    /// Tell (an Event) that the credentials Secret is being deleted while still needed.
    TellSecretDeleting { secret: String },
    /// Read the resource from the API server: the watch cache can lag behind our own writes.
    ReadBack,
    /// Read the login password Secret.
    ResolvePassword,
    /// Persist `status.clientToken` for `attempt` before anything could send it.
    PersistToken { attempt: i32 },
    /// DescribeInstances by the UID tag.
    LookupByTag,
    /// Take over this attempt's instance, created by an earlier run.
    Adopt { instance: Instance },
    /// RunInstances with the persisted token of `attempt`.
    RunInstances { attempt: i32 },
    /// Persist the new ID at once (ends).
    RecordId { id: String, token: String },
    /// RunInstances answered without an ID: look again with the same token (ends).
    NoIdYet,
    /// DescribeInstances of the recorded ID.
    Describe { id: String },
    /// Write what the instance means for the resource (ends); for a managed instance also
    /// what the day-2 plan found (drift, pending changes, the change just sent).
    Report {
        instance: Instance,
        verdict: Verdict,
        day2: Option<Box<Day2>>,
    },
    /// Persist `status.operation`: the day-2 call about to be sent, so that a crash can never
    /// make a reimage or a recreate happen twice.
    RecordOperation { change: Change, field: Field },
    /// Put this resource's UID tag on the instance to adopt, then describe it again.
    Claim { instance: Instance },
    /// Record the adopted instance's ID (ends); from then on it is observed and managed.
    RecordAdopted { instance: Instance },
    /// The one day-2 call of this pass; `corrects_drift` when it sets back a field changed
    /// outside the operator (the Event says so).
    ChangeInstance {
        instance: Instance,
        change: Change,
        corrects_drift: bool,
    },
    /// A recorded instance never seen yet may lag in DescribeInstances (ends).
    WaitAppear { id: String },
    /// Best-effort TerminateInstances of a failed launch before a new attempt.
    TerminateFailedLaunch { instance: Instance },
    /// Forget the instance and persist the next attempt's token (ends).
    StartNewAttempt {
        reason: &'static str,
        message: String,
    },
    /// On deletion, DescribeInstances of the recorded instance known to be terminating.
    FollowTerminating { id: String },
    /// It still is: look again soon, nothing to write (ends).
    StillTerminating,
    /// TerminateInstances; the instances carry their charge types, which pick the batch.
    Terminate { instances: Vec<Instance> },
    /// Record the terminating instances and wait for them to be gone (ends).
    WaitTerminating {
        ids: Vec<String>,
        recorded: Option<String>,
    },
    /// A creation may have been sent whose tags are not searchable yet (ends).
    ConfirmNoInstance,
    /// Remove the finalizer (ends).
    ReleaseFinalizer { why: Release },
    /// A person has to act; nothing else happens (ends).
    Stall {
        reason: &'static str,
        message: String,
        then: Wait,
    },
    /// A cloud call failed: its code becomes the condition (ends).
    CloudFailure {
        action: &'static str,
        error: CloudError,
    },
    /// Nothing to do now (ends).
    Idle { then: Wait },
}

impl Step {
    /// Whether the reconcile ends with this step (it writes its outcome and waits).
    pub fn ends(&self) -> bool {
        !matches!(
            self,
            Step::AddFinalizer
                | Step::ResolveCredentials
                | Step::HoldCredentials { .. }
                | Step::TellSecretDeleting { .. }
                | Step::ReadBack
                | Step::ResolvePassword
                | Step::PersistToken { .. }
                | Step::LookupByTag
                | Step::Adopt { .. }
                | Step::RunInstances { .. }
                | Step::Describe { .. }
                | Step::TerminateFailedLaunch { .. }
                | Step::RecordOperation { .. }
                | Step::Claim { .. }
                | Step::ChangeInstance { .. }
                | Step::FollowTerminating { .. }
                | Step::Terminate { .. }
        )
    }
}

/// The next step of the protocol for `view` at `now`.
pub fn next_step(view: &View<'_>, now: Timestamp, settings: &Settings) -> Step {
    if let Some(deleted_at) = view.object.meta().deletion_timestamp.as_ref() {
        return delete(view, deleted_at.0, now, settings);
    }
    if !has_finalizer(view.object) {
        return Step::AddFinalizer;
    }
    if let Some(step) = adoption_needs_own_credentials(view) {
        return step;
    }
    if let Some(step) = credentials(view.facts, false) {
        return step;
    }
    let facts = view.facts;
    // A set's child never launches (it adopts the instance named in its spec, and adopting
    // twice is harmless), so a lagging cache cannot make it launch twice: no read-back.
    let launches = view.object.spec.instance_id.is_none() || controlling_set(view.object).is_none();
    if view.stored.instance_id.is_none() && !facts.read_back && launches {
        return Step::ReadBack;
    }
    if facts.replaced {
        return Step::Idle {
            then: Wait::AwaitChange,
        };
    }
    match view.stored.instance_id.as_deref() {
        None => create(view, now, settings),
        Some(id) => observe(view, id, now, settings),
    }
}

/// Until the credentials are known, resolving them; a problem with them stalls. Then the
/// Secret they came from is held before the first cloud call (`deleting`: the resource is).
fn credentials(facts: &Facts, deleting: bool) -> Option<Step> {
    match &facts.credentials {
        None => return Some(Step::ResolveCredentials),
        Some(Err(problem)) => return Some(secret_problem(problem, Purpose::Credentials)),
        Some(Ok(())) => {}
    }
    // The operator's defaults: nothing to hold.
    let secret = facts.credentials_secret.as_ref()?;
    let name = secret.name.clone();
    match (secret.held, secret.deleting) {
        (false, false) => Some(Step::HoldCredentials { secret: name }),
        // No finalizer can be added to an object being deleted: nothing new is started with
        // credentials that may vanish at any moment; a deletion still terminates with them.
        (false, true) if !deleting => Some(Step::Stall {
            reason: "CredentialsSecretDeleting",
            message: format!(
                "Secret {name} is being deleted and is not held for this resource; nothing is \
                 created or changed with it. Restore it, or name another Secret"
            ),
            then: Wait::SlowRetry,
        }),
        (true, true) if !facts.told_secret_deleting => {
            Some(Step::TellSecretDeleting { secret: name })
        }
        _ => None,
    }
}

/// The Reconciling reason a deleted resource records before it lets go of its credentials
/// Secret: from then on it needs no cloud call (its instance is gone and no creation starts
/// after deletion), so it must not wait for a Secret it may itself have let be deleted.
pub const RELEASING: &str = "ReleasingCredentials";

/// Whether `stored` records that the resource is letting go (see [`RELEASING`]).
pub fn releasing(stored: &CvmInstanceStatus) -> bool {
    stored
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == RECONCILING && c.status == "True" && c.reason == RELEASING)
}

fn secret_problem(problem: &SecretProblem, purpose: Purpose) -> Step {
    Step::Stall {
        reason: problem.reason(purpose),
        message: problem.to_string(),
        then: Wait::SlowRetry,
    }
}

/// Design §4: token persisted, then lookup by tag, then RunInstances, then the ID persisted.
fn create(view: &View<'_>, now: Timestamp, settings: &Settings) -> Step {
    let spec = &view.object.spec;
    let facts = view.facts;
    if let Some(id) = &spec.instance_id {
        return adopt(view, id, now, settings);
    }
    if spec
        .user_data
        .as_deref()
        .is_some_and(|t| !user_data_fits(t))
    {
        return Step::Stall {
            reason: "UserDataTooLarge",
            message: "spec.userData is larger than 16 KiB once base64-encoded".into(),
            then: Wait::AwaitChange,
        };
    }
    if spec.password_secret_ref().is_some() {
        match &facts.password {
            None => return Step::ResolvePassword,
            Some(Err(problem)) => return secret_problem(problem, Purpose::Password),
            Some(Ok(_)) => {}
        }
    }
    let attempt = view.stored.attempt.unwrap_or(0);
    let token = client_token(&uid(view), attempt);
    if view.stored.client_token.as_deref() != Some(token.as_str()) {
        return Step::PersistToken { attempt };
    }
    // A token persisted only now cannot have been sent: no lookup needed (saves a call).
    if !facts.token_persisted_now {
        match &facts.tagged {
            None => return Step::LookupByTag,
            Some(Err(error)) => return failure("DescribeInstances", error),
            Some(Ok(found)) => {
                let attempt_tag = attempt.to_string();
                if let Some(instance) = found
                    .iter()
                    .find(|i| i.tag(TAG_ATTEMPT) == Some(attempt_tag.as_str()))
                {
                    return if facts.adopted {
                        report(view, instance)
                    } else {
                        Step::Adopt {
                            instance: instance.clone(),
                        }
                    };
                }
            }
        }
    }
    match &facts.launched {
        None => Step::RunInstances { attempt },
        Some(Err(error)) => failure("RunInstances", error),
        Some(Ok(ids)) => match ids.first() {
            Some(id) => Step::RecordId {
                id: id.clone(),
                token,
            },
            None => Step::NoIdYet,
        },
    }
}

/// Taking over an existing instance by `spec.instanceId` (never RunInstances). Only with the
/// namespace's own credentials, so a tenant reaches only what its own cloud account lets it
/// see; and never an instance another CvmInstance manages (its UID tag), so one team cannot
/// take over another's machine even in a shared account. The claim is the UID tag, written
/// and then read back: of two resources claiming at once, the one whose tag did not stick
/// sees the other's and stops.
fn adopt(view: &View<'_>, id: &str, now: Timestamp, settings: &Settings) -> Step {
    let facts = view.facts;
    let instance = match &facts.described {
        None => return Step::Describe { id: id.into() },
        Some(Err(error)) => return failure("DescribeInstances", error),
        Some(Ok(None)) => {
            return Step::Stall {
                reason: "InstanceNotFound",
                message: format!(
                    "spec.instanceId {id} does not exist, or these credentials cannot see it; nothing was created"
                ),
                then: Wait::SlowRetry,
            };
        }
        Some(Ok(Some(instance))) => instance,
    };
    claim(view, instance).unwrap_or_else(|| {
        if controlling_set(view.object).is_some() {
            adopt_for_set(view, instance, now, settings)
        } else {
            Step::RecordAdopted {
                instance: instance.clone(),
            }
        }
    })
}

/// How long a set's child keeps quiet while its machine boots (see [`adopt_for_set`]): a
/// machine not Ready by then shows where it stands.
pub const QUIET_BOOT: Duration = Duration::from_secs(60);

/// A set's child taking over its set's launch: the set told of the launch and counts its
/// machines, so the child's first status is what its machine is once Ready (or in trouble,
/// or slow), one write where "Provisioning", "WaitingForPublicIp" and "Ready" were three.
/// At 1,000 machines those writes are the API server's CPU, and what bounds the set's time
/// to Ready (docs/performance.md). A running machine is managed at once, so its first
/// status carries the day-2 baseline too (one write where "Adopted" and a report were two).
fn adopt_for_set(
    view: &View<'_>,
    instance: &Instance,
    now: Timestamp,
    settings: &Settings,
) -> Step {
    if booting_quietly(view, instance, now) {
        Step::Idle { then: Wait::Soon }
    } else if update::applies(instance) {
        manage(view, instance, now, settings)
    } else {
        report(view, instance)
    }
}

/// The machine is on its way as expected (pending, or running without its public IP yet),
/// and the child is younger than [`QUIET_BOOT`].
fn booting_quietly(view: &View<'_>, instance: &Instance, now: Timestamp) -> bool {
    let booting = match judge(instance, view.object.spec.wants_public_ip()) {
        Verdict::Report {
            health,
            requeue: Requeue::Soon,
        } => matches!(health.reason(), "Provisioning" | "WaitingForPublicIp"),
        _ => false,
    };
    let young = view
        .object
        .meta()
        .creation_timestamp
        .as_ref()
        .is_some_and(|created| elapsed(created.0, now) < QUIET_BOOT);
    booting && young
}

/// Adoption only with the namespace's own credentials: the operator's default credentials
/// (often a broad account) never take over an instance, whoever names it.
fn adoption_needs_own_credentials(view: &View<'_>) -> Option<Step> {
    let spec = &view.object.spec;
    let id = spec.instance_id.as_ref()?;
    // A set's child may adopt its set's launch with any credentials: checked against the
    // set's tags once the instance is described (`claim`).
    let set_child = controlling_set(view.object).is_some();
    (spec.credentials_secret_ref.is_none() && !set_child).then(|| needs_own_credentials(id))
}

fn needs_own_credentials(id: &str) -> Step {
    Step::Stall {
        reason: "AdoptionNeedsOwnCredentials",
        message: format!(
            "spec.instanceId {id}: adopting an instance needs spec.credentialsSecretRef (this namespace's own credentials); the operator's default credentials never take over instances"
        ),
        then: Wait::AwaitChange,
    }
}

/// An instance a set launched carries the set's UID and namespace: it is claimed already,
/// for that set's children only (no Tag call per child); nothing else takes it.
fn launched_by_set(view: &View<'_>, instance: &Instance, set_uid: &str) -> Option<Step> {
    let object = view.object;
    let ours = controlling_set(object) == Some(set_uid)
        && instance.tag(TAG_NAMESPACE) == object.namespace().as_deref();
    (!ours).then(|| Step::Stall {
        reason: "AdoptionConflict",
        message: format!(
            "{} was launched by a CvmInstanceSet (tag {TAG_SET_UID}={set_uid}); only a CvmInstance that set controls takes it over",
            instance.instance_id
        ),
        then: Wait::SlowRetry,
    })
}

/// For an instance named by `spec.instanceId` and managed: the step its ownership needs
/// first, if any. Another resource's instance is refused; an unclaimed one gets this
/// resource's UID tag (read back before anything else). Observing claims nothing: it writes
/// nothing.
fn claim(view: &View<'_>, instance: &Instance) -> Option<Step> {
    let spec = &view.object.spec;
    let id = &instance.instance_id;
    let ours = uid(view);
    if let Some(set_uid) = instance.tag(TAG_SET_UID) {
        return launched_by_set(view, instance, set_uid);
    }
    if spec.credentials_secret_ref.is_none() {
        return Some(needs_own_credentials(id));
    }
    match instance.tag(TAG_UID) {
        Some(owner) if owner != ours => Some(Step::Stall {
            reason: "AdoptionConflict",
            message: format!(
                "{id} is managed by another CvmInstance (tag {TAG_UID}={owner}); it is not taken over"
            ),
            then: Wait::SlowRetry,
        }),
        None if spec.management_policy == ManagementPolicy::Manage => Some(if view.facts.claimed {
            // Claimed, but the tag does not show (yet): look again soon.
            Step::Idle {
                then: Wait::PollMin,
            }
        } else {
            Step::Claim {
                instance: instance.clone(),
            }
        }),
        _ => None,
    }
}

/// Design §5: follow the recorded instance; replace it when it is gone for good.
fn observe(view: &View<'_>, id: &str, now: Timestamp, settings: &Settings) -> Step {
    let stored = view.stored;
    let facts = view.facts;
    // No watch tells of a new password: the Secret is read before anything else, and a new
    // digest is a change even when the instance itself is unchanged.
    let follows_password = follows_password_secret(&view.object.spec);
    if follows_password && facts.password.is_none() {
        return Step::ResolvePassword;
    }
    let password_unchanged = !follows_password
        || password_digest(facts).is_none_or(|d| stored.password_hash.as_deref() == Some(d));
    if stored.is_ready()
        && stored.observed_generation == view.object.metadata.generation
        && facts.sweeper_vouches
        && password_unchanged
    {
        return Step::Idle { then: Wait::Steady };
    }
    match &facts.described {
        None => Step::Describe { id: id.into() },
        Some(Err(error)) => failure("DescribeInstances", error),
        // A set terminates the machines it removes while it deletes their children: a child
        // whose deletion has not arrived yet has nothing to report (its set tells of the
        // scale-down), and a status write per child would queue the set's deletions behind
        // a thousand writes. An instance terminated outside the operator ends
        // InstanceNotFound, and the set replaces the child.
        Some(Ok(Some(instance)))
            if instance.instance_state == "TERMINATING"
                && controlling_set(view.object).is_some() =>
        {
            Step::Idle {
                then: Wait::PollMin,
            }
        }
        Some(Ok(Some(instance))) => {
            let failed = instance.instance_state == "LAUNCH_FAILED";
            if update::applies(instance) {
                manage(view, instance, now, settings)
            } else if !(failed && spec_changed_since_failure(view)) {
                report(view, instance)
            } else if !facts.failed_launch_terminated {
                Step::TerminateFailedLaunch {
                    instance: instance.clone(),
                }
            } else {
                Step::StartNewAttempt {
                    reason: "RetryingLaunch",
                    message: format!(
                        "the spec changed after {id} failed to launch; creating a new instance"
                    ),
                }
            }
        }
        // A set removing this child terminated its machine first: its deletion follows.
        Some(Ok(None)) if facts.removed_by_set => Step::Idle {
            then: Wait::PollMin,
        },
        // An adopted instance is never recreated: a set replaces its child (a lost child is
        // one Stalled with this reason); a single resource waits for a person.
        Some(Ok(None)) if view.object.spec.instance_id.is_some() => Step::Stall {
            reason: "InstanceNotFound",
            message: format!(
                "{id} no longer exists (terminated outside the operator, or a spot reclaim); an adopted instance is never recreated"
            ),
            then: Wait::SlowRetry,
        },
        Some(Ok(None)) => {
            let never_seen = stored.instance_state.is_none();
            if never_seen
                && reconciling_for(stored.conditions.as_deref().unwrap_or_default(), now)
                    < settings.appear_grace
            {
                Step::WaitAppear { id: id.into() }
            } else {
                Step::StartNewAttempt {
                    reason: "InstanceVanished",
                    message: format!(
                        "{id} no longer exists (spot reclaim, or terminated outside the operator); creating a new instance"
                    ),
                }
            }
        }
    }
}

fn report(view: &View<'_>, instance: &Instance) -> Step {
    Step::Report {
        instance: instance.clone(),
        verdict: judge(instance, view.object.spec.wants_public_ip()),
        day2: None,
    }
}

/// Day 2 (docs/design.md): bring a running or stopped instance to its spec, one call a pass,
/// recorded before it is sent; then report what the plan found.
fn manage(view: &View<'_>, instance: &Instance, now: Timestamp, settings: &Settings) -> Step {
    let spec = &view.object.spec;
    let facts = view.facts;
    if spec.instance_id.is_some()
        && let Some(step) = claim(view, instance)
    {
        return step;
    }
    let observed = update::observe(instance, spec, view.stored);
    let unsent =
        update::without_unsent_operation(view.stored, &observed, now, settings.operation_settle);
    let before_record = facts.recorded.as_ref().map(|_| CvmInstanceStatus {
        operation: facts.superseded.clone(),
        ..view.stored.clone()
    });
    let mut plan = day2::plan(&PlanInput {
        spec,
        generation: view.object.metadata.generation.unwrap_or_default(),
        status: before_record
            .as_ref()
            .or(unsent.as_ref())
            .unwrap_or(view.stored),
        observed: &observed,
        password_digest: password_digest(facts),
        now,
    });
    // Once recorded, the decided change is sent as it is: a plan made from the status with
    // its own record in it would wait for the record.
    if let Some((change, field)) = &facts.recorded {
        match &facts.changed {
            None => {
                return Step::ChangeInstance {
                    instance: instance.clone(),
                    change: change.clone(),
                    corrects_drift: plan.drifted.contains(field),
                };
            }
            Some(Err(error)) => return failure(change.action(), error),
            Some(Ok(_)) => {
                plan.change = Some(change.clone());
                plan.change_field = Some(*field);
            }
        }
    } else if let Some(change) = &plan.change {
        if update::needs_password(change, spec) {
            match &facts.password {
                None => return Step::ResolvePassword,
                Some(Err(problem)) => return secret_problem(problem, Purpose::Password),
                Some(Ok(_)) => {}
            }
        }
        if *change == Change::Recreate {
            // Replacement: the old instance goes, then a new attempt with a new token.
            return match &facts.terminated {
                None => Step::Terminate {
                    instances: vec![instance.clone()],
                },
                Some(Err(error)) => failure("TerminateInstances", error),
                Some(Ok(())) => Step::StartNewAttempt {
                    reason: "Replacing",
                    message: format!(
                        "{} is replaced: a field that cannot change in place changed",
                        instance.instance_id
                    ),
                },
            };
        }
        if let Some(field) = plan.change_field {
            return Step::RecordOperation {
                change: change.clone(),
                field,
            };
        }
    }
    Step::Report {
        instance: instance.clone(),
        verdict: update::verdict(&plan, &observed, spec, instance),
        day2: Some(Box::new(Day2 {
            observed,
            plan,
            password_digest: password_digest(facts).map(String::from),
        })),
    }
}

/// Whether the resource's login password comes from a Secret that the operator must read
/// again now and then to notice a new password (it never watches Secrets): only when it may
/// change the instance. Read on every reconcile that is not idle, and at least once a
/// resync period while Ready (`Wait::Steady`).
pub fn follows_password_secret(spec: &crate::api::CvmInstanceSpec) -> bool {
    spec.password_secret_ref().is_some() && spec.management_policy == ManagementPolicy::Manage
}

/// The salted digest of the password in the Secret, if it was read (and could be).
pub fn password_digest(facts: &Facts) -> Option<&str> {
    facts.password.as_ref()?.as_ref().ok().map(String::as_str)
}

/// A launch failure is retried only once the spec changed after it was reported.
fn spec_changed_since_failure(view: &View<'_>) -> bool {
    view.stored.instance_state.as_deref() == Some("LAUNCH_FAILED")
        && view.object.metadata.generation != view.stored.observed_generation
}

/// Design §5: terminate everything that may belong to the resource, wait until it is gone,
/// then let go; or let go at once under `deletionPolicy: Orphan`.
fn delete(view: &View<'_>, deleted_at: Timestamp, now: Timestamp, settings: &Settings) -> Step {
    let stored = view.stored;
    let facts = view.facts;
    // A set's child names its set's launch in its spec and may be deleted before its first
    // status (it keeps quiet while the machine boots): that instance is its own all along.
    let recorded = stored
        .instance_id
        .as_deref()
        .or_else(|| controlling_set(view.object).and(view.object.spec.instance_id.as_deref()));
    let what = recorded.unwrap_or("no instance").to_string();
    if !has_finalizer(view.object) {
        return Step::Idle {
            then: Wait::AwaitChange,
        };
    }
    if view.object.spec.effective_deletion_policy() == DeletionPolicy::Orphan {
        return Step::ReleaseFinalizer {
            why: Release::Orphaned { what },
        };
    }
    // A release interrupted after the Secret was let go: only the finalizer is left.
    if releasing(stored) {
        return Step::ReleaseFinalizer {
            why: Release::Terminated { what },
        };
    }
    // Without credentials nothing can be terminated: the finalizer stays (no leak).
    if let Some(step) = credentials(facts, true) {
        return step;
    }
    // Once the recorded instance was told to terminate, following it takes only its ID
    // (batched 100 a call); the tag lookup (5 resources a call) runs once more at the end.
    if let Some(id) = recorded.filter(|_| stored.instance_state.as_deref() == Some("TERMINATING")) {
        match &facts.followed {
            None => return Step::FollowTerminating { id: id.into() },
            Some(Ok(Some(i))) if i.instance_state == "TERMINATING" => {
                return Step::StillTerminating;
            }
            Some(Err(error)) => return failure("DescribeInstances", error),
            Some(Ok(_)) => {}
        }
    }
    // Everything that may belong to the resource: the recorded instance and anything
    // carrying its UID tag (earlier attempts, or a creation whose ID was never recorded).
    // An adopting resource never launches: only its recorded instance can be its own, and
    // skipping the lookup (5 resources a call) lets a set's children terminate in batches.
    let never_launched = Vec::new();
    let found = match &facts.tagged {
        _ if view.object.spec.instance_id.is_some() => &never_launched,
        None => return Step::LookupByTag,
        // A region the API does not serve holds no instance; keeping the finalizer would
        // make a mistyped region undeletable.
        Some(Err(error)) if error.is_region_unsupported() && recorded.is_none() => {
            return Step::ReleaseFinalizer {
                why: Release::RegionUnsupported {
                    code: error.code().into(),
                    message: error.message(),
                },
            };
        }
        Some(Err(error)) => return failure("DescribeInstances", error),
        Some(Ok(found)) => found,
    };
    let mut seen = BTreeSet::new();
    let mut live: Vec<&Instance> = found
        .iter()
        .filter(|i| seen.insert(i.instance_id.as_str()))
        .collect();
    if let Some(id) = recorded.filter(|id| !seen.contains(id)) {
        match &facts.described {
            None => return Step::Describe { id: id.into() },
            Some(Err(error)) => return failure("DescribeInstances", error),
            Some(Ok(Some(instance))) => live.push(instance),
            Some(Ok(None)) => {}
        }
    }
    if live.is_empty() {
        // An adopting resource never launched anything that could still show up by tag.
        let adopting = view.object.spec.instance_id.is_some();
        return if !adopting && creation_may_be_unseen(stored, deleted_at, now, settings) {
            Step::ConfirmNoInstance
        } else {
            Step::ReleaseFinalizer {
                why: Release::Terminated { what },
            }
        };
    }
    let to_terminate: Vec<Instance> = live
        .iter()
        .filter(|i| i.instance_state != "TERMINATING")
        .map(|i| (*i).clone())
        .collect();
    if !to_terminate.is_empty() {
        match &facts.terminated {
            // A set deletes the children it removes while its own calls terminate their
            // machines (100 a call): one deleted first waits for them rather than make a
            // call of its own, then finds its machine terminating.
            None if facts.set_terminating => {
                return Step::Idle {
                    then: Wait::PollMin,
                };
            }
            // Otherwise a child of a set whose machine still runs was deleted by hand or
            // by the garbage collector: ours to end.
            None => {
                return Step::Terminate {
                    instances: to_terminate,
                };
            }
            Some(Err(error)) if !error.is_already_terminated() => {
                return failure("TerminateInstances", error);
            }
            Some(_) => {}
        }
    }
    // A set's child whose machine is terminating (its set, or this finalizer, told it to):
    // a terminating machine never comes back, and the child adopted it and never launched,
    // so nothing else can be its own. Letting go now rather than once the machine is gone
    // overlaps the finalizers' writes with the termination: a set of 1,000 is gone seconds
    // sooner (docs/performance.md). The set tells of the scale-down.
    if controlling_set(view.object).is_some() {
        return Step::ReleaseFinalizer {
            why: Release::Terminating { what },
        };
    }
    Step::WaitTerminating {
        ids: live.iter().map(|i| i.instance_id.clone()).collect(),
        recorded: live
            .iter()
            .find(|i| Some(i.instance_id.as_str()) == recorded)
            .map(|i| i.instance_id.clone()),
    }
}

/// A token was persisted but no ID: RunInstances may have succeeded without the operator
/// recording it, and Tencent attaches tags asynchronously, so an empty tag lookup right
/// after deletion proves nothing yet. No creation starts after deletion began, so waiting
/// `tag_grace` from the deletion timestamp covers every possible creation.
fn creation_may_be_unseen(
    stored: &CvmInstanceStatus,
    deleted_at: Timestamp,
    now: Timestamp,
    settings: &Settings,
) -> bool {
    if stored.client_token.is_none() || stored.instance_id.is_some() {
        return false;
    }
    elapsed(deleted_at, now) < settings.tag_grace
}

/// How long a resource with `conditions` has been Reconciling without interruption.
pub fn reconciling_for(conditions: &[Condition], now: Timestamp) -> Duration {
    conditions
        .iter()
        .find(|c| c.type_ == RECONCILING && c.status == "True")
        .map(|c| elapsed(c.last_transition_time.0, now))
        .unwrap_or_default()
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or_default()
}

fn failure(action: &'static str, error: &CloudError) -> Step {
    Step::CloudFailure {
        action,
        error: error.clone(),
    }
}

fn uid(view: &View<'_>) -> String {
    view.object.uid().unwrap_or_default()
}

#[cfg(test)]
#[path = "step_table.rs"]
pub(crate) mod table;
