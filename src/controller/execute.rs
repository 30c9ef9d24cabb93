//! Performs the steps [`next_step`] decides, one at a time, until one ends the reconcile.
//!
//! Each step either learns something (a Secret, a cloud answer: into [`Facts`]) or writes
//! something (status, finalizer, an Event, a creating or destroying call). What the protocol
//! requires persisted is persisted by the step itself, before the next one can call the
//! cloud: the token before RunInstances (which takes a [`super::target::PersistedToken`]),
//! the ID at once after it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::{Span, info};

use super::conditions::{Health, reason_from_code};
use super::context::Context;
use super::credentials::{resolve_credentials, resolve_password};
use super::error::Error;
use super::events::EventType;
use super::finalizer;
use super::observe::{Requeue, Verdict, poll_interval};
use super::password;
use super::price;
use super::request::{Owner, client_token, run_instances_request};
use super::secret_use::{self, SecretUse};
use super::step::{
    Day2, Facts, RELEASING, Release, Step, View, Wait, follows_password_secret, next_step,
    password_digest,
};
use super::target::{Managed, Target};
use super::update;
use crate::api::{CREDENTIALS_IN_USE, CvmInstance, Operation, TAG_UID};
use crate::api::{ManagementPolicy, replace_only_digests};
use crate::cloud::{Cloud, Modification};
use crate::day2::Change;
use crate::set::children::controlling_set;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tencent_cloud::credentials::SecretString;
use tencent_cloud::error::CloudError;
use tencent_cloud::types::{Instance, ToTerminate};

/// More steps than the longest path of the protocol (create: 8) means a step that does not
/// change the view: a bug, reported rather than looped on.
const MAX_STEPS: usize = 16;

/// What one reconcile holds besides the view: handles the facts only stand for.
struct Run {
    facts: Facts,
    /// The cloud for the resolved credentials and the region.
    cloud: Option<Arc<dyn Cloud>>,
    /// The resolved login password; never in `Facts`, which are logged in tests.
    password: Option<SecretString>,
    /// The credentials Secret's metadata as read, for the guarded patch that holds it.
    credentials_secret: Option<ObjectMeta>,
}

/// Reconciles `obj` to its next resting point.
pub async fn execute(obj: Arc<CvmInstance>, ctx: &Context) -> Result<Action, Error> {
    let mut t = Target::new(obj, ctx)?;
    if t.obj.metadata.deletion_timestamp.is_some() {
        // A resource on its way out is no longer followed in bulk.
        ctx.sweeper.unregister(&t.owner());
    }
    let mut run = Run {
        facts: Facts::default(),
        cloud: None,
        password: None,
        credentials_secret: None,
    };
    run.facts.sweeper_vouches = sweeper_vouches(&t);
    if controlling_set(&t.obj).is_some() {
        let key = format!("{}/{}", t.namespace, t.name);
        let now = ctx.clock.now();
        run.facts.removed_by_set = ctx.child_writes.being_removed(&key, now);
        run.facts.set_terminating = ctx.child_writes.set_terminating(&key, now);
    }
    for _ in 0..MAX_STEPS {
        let view = View {
            object: &t.obj,
            stored: &t.old,
            facts: &run.facts,
        };
        let step = next_step(&view, ctx.clock.now(), &ctx.settings);
        if let Some(action) = perform(&mut t, &mut run, step).await? {
            return Ok(action);
        }
    }
    Err(Error::StepLimit(MAX_STEPS))
}

/// Performs `step`; `Some` when it ends the reconcile.
async fn perform(
    t: &mut Target<'_, CvmInstance>,
    run: &mut Run,
    step: Step,
) -> Result<Option<Action>, Error> {
    let ends = step.ends();
    let action = match step {
        Step::AddFinalizer => {
            let updated = finalizer::add(&t.api, &t.obj, crate::api::FINALIZER).await?;
            t.reset(Arc::new(updated));
            None
        }
        Step::ResolveCredentials => {
            let defaults = t.ctx.settings.default_credentials.as_ref();
            let reference = t.obj.spec.credentials_secret_ref.as_ref();
            let resolved = resolve_credentials(&t.ctx.kube, reference, &t.namespace, defaults)
                .await?
                .map(|resolved| {
                    run.cloud = Some(t.ctx.clouds.get(&resolved.credentials, &t.obj.spec.region));
                    run.facts.credentials_secret = resolved.secret.as_ref().map(SecretUse::of);
                    run.credentials_secret = resolved.secret;
                });
            run.facts.credentials = Some(resolved);
            None
        }
        Step::HoldCredentials { secret } => {
            let meta = run
                .credentials_secret
                .as_ref()
                .ok_or(Error::StepOrder("holding a Secret before reading it"))?;
            match secret_use::hold(&t.ctx.kube, &t.namespace, meta).await? {
                Ok(()) => {
                    info!(secret = %secret, "holding the credentials Secret while this resource needs it");
                    if let Some(read) = run.facts.credentials_secret.as_mut() {
                        read.held = true;
                    }
                }
                // No cloud call with a Secret that could vanish under the instance.
                Err(problem) => run.facts.credentials = Some(Err(problem)),
            }
            None
        }
        Step::TellSecretDeleting { secret } => {
            if t.ctx.first_told_secret_deleting(&t.uid) {
                let note = format!(
                    "Secret {secret} is being deleted while this resource needs its credentials; \
                     it stays (finalizer {CREDENTIALS_IN_USE}) until this resource is deleted"
                );
                t.event(
                    EventType::Warning,
                    "CredentialsSecretDeleting",
                    &note,
                    "Credentials",
                )
                .await;
            }
            run.facts.told_secret_deleting = true;
            None
        }
        Step::ReadBack => {
            let fresh = t.api.get(&t.name).await?;
            if fresh.uid() == Some(t.uid.clone()) {
                t.refresh(fresh.status.unwrap_or_default());
                // The span has the ID only if the cached object had one.
                if let Some(id) = t.instance_id() {
                    Span::current().record("instance_id", id);
                }
                run.facts.sweeper_vouches = sweeper_vouches(t);
            } else {
                run.facts.replaced = true;
            }
            run.facts.read_back = true;
            None
        }
        Step::ResolvePassword => {
            let reference = t.obj.spec.password_secret_ref().ok_or(Error::StepOrder(
                "reading a password the spec does not name",
            ))?;
            let resolved = resolve_password(&t.ctx.kube, &t.namespace, reference)
                .await?
                .map(|password| {
                    let digest = password::digest(&t.uid, &password);
                    run.password = Some(password);
                    digest
                });
            run.facts.password = Some(resolved);
            None
        }
        Step::PersistToken { attempt } => {
            t.status.client_token = Some(client_token(&t.uid, attempt));
            t.status.attempt = Some(attempt);
            let health = Health::progressing("Creating", "creating the instance");
            t.save(&health, false).await?;
            run.facts.token_persisted_now = true;
            None
        }
        Step::LookupByTag => {
            let found = cloud(run)?.find_instances_by_tag(TAG_UID, &t.uid).await;
            run.facts.tagged = Some(found);
            None
        }
        Step::Adopt { instance } => {
            let id = instance.instance_id.clone();
            Span::current().record("instance_id", id.as_str());
            info!(instance_id = %id, "adopting the instance created by an earlier run");
            t.record(&instance);
            t.event(
                EventType::Normal,
                "InstanceAdopted",
                &format!("found {id}, created for this resource by an earlier run"),
                "Create",
            )
            .await;
            run.facts.adopted = true;
            None
        }
        Step::RunInstances { attempt } => {
            let token = client_token(&t.uid, attempt);
            let Some(persisted) = t.persisted_token(&token) else {
                // Not reached: PersistToken stored it, or the read-back found it. Asking
                // `Target` for it is what lets the compiler hold every RunInstances to that
                // rule; if it ever fails, start over.
                return Ok(Some(Action::requeue(t.ctx.settings.poll_min)));
            };
            let owner = Owner {
                namespace: &t.namespace,
                name: &t.name,
                uid: &t.uid,
                attempt,
            };
            let request =
                run_instances_request(&t.obj.spec, &owner, &persisted, run.password.take());
            run.facts.launched = Some(cloud(run)?.run_instances(&request).await);
            None
        }
        Step::RecordId { id, token } => {
            Span::current().record("instance_id", id.as_str());
            info!(instance_id = %id, %token, "instance created");
            t.status.instance_id = Some(id.clone());
            // The password RunInstances just set is the baseline a new one is compared with.
            t.status.password_hash = password_digest(&run.facts).map(String::from);
            // And the fields no API changes, as this instance is created with them.
            t.status.created_with = Some(replace_only_digests(&t.obj.spec));
            let health = Health::progressing(
                "Provisioning",
                format!("{id} created; waiting for it to run"),
            );
            t.save(&health, false).await?;
            t.event(
                EventType::Normal,
                "InstanceCreated",
                &format!("RunInstances created {id} (ClientToken {token})"),
                "Create",
            )
            .await;
            Some(wait(t, Wait::PollMin))
        }
        Step::NoIdYet => {
            // "InstanceIdSet does not by itself mean success": look again soon, same token.
            let health =
                Health::progressing("Creating", "RunInstances returned no instance ID yet");
            t.save(&health, false).await?;
            Some(wait(t, Wait::PollMin))
        }
        Step::Describe { id } => {
            run.facts.described = Some(cloud(run)?.describe_instance(&id).await);
            None
        }
        Step::Report {
            instance,
            verdict,
            day2: None,
        } => {
            t.record(&instance);
            let cloud = cloud(run)?.clone();
            show_price(t, &cloud, &instance).await;
            Some(report(t, cloud, &instance, verdict).await?)
        }
        Step::Report {
            instance,
            verdict,
            day2: Some(day2),
        } => {
            t.record(&instance);
            let cloud = cloud(run)?.clone();
            show_price(t, &cloud, &instance).await;
            Some(report_managed(t, cloud, &instance, verdict, *day2).await?)
        }
        Step::Claim { instance } => {
            let claim = Modification::Tags {
                set: [(TAG_UID.to_string(), t.uid.clone())].into(),
                delete: Vec::new(),
            };
            let result = cloud(run)?
                .change_instance(&instance.instance_id, &claim)
                .await;
            if let Err(error) = result {
                return Ok(Some(cloud_failure(t, "ModifyResourceTags", &error).await?));
            }
            // Read back: of two claims at once, only the tag that stuck counts.
            run.facts.claimed = true;
            run.facts.described = None;
            None
        }
        Step::RecordAdopted { instance } => {
            let id = instance.instance_id.clone();
            Span::current().record("instance_id", id.as_str());
            info!(instance_id = %id, "adopting an existing instance");
            t.record(&instance);
            let how = match t.obj.spec.management_policy {
                ManagementPolicy::ObserveOnly => "observed only: nothing is changed",
                ManagementPolicy::Manage => "managed from now on",
            };
            if !t.obj.milestones_on_owner() {
                t.event(
                    EventType::Normal,
                    "InstanceAdopted",
                    &format!(
                        "spec.instanceId {id} taken over ({how}); RunInstances is never called"
                    ),
                    "Adopt",
                )
                .await;
            }
            let health = Health::progressing("Adopted", format!("{id} adopted; observing it"));
            t.save(&health, false).await?;
            Some(wait(t, Wait::PollMin))
        }
        Step::RecordOperation { change, field } => {
            let (action, field_name) = (change.action(), field.name());
            run.facts.superseded = t.status.operation.clone();
            let prior_request_id = match &run.facts.described {
                Some(Ok(Some(instance))) => instance.latest_operation_request_id.clone(),
                _ => None,
            };
            t.status.operation = Some(Operation {
                action: action.to_string(),
                field: field_name.to_string(),
                request_id: None,
                prior_request_id,
                generation: t.obj.metadata.generation.unwrap_or_default(),
                started_at: Time(t.ctx.clock.now()),
            });
            let id = t.instance_id().unwrap_or_default().to_string();
            let health =
                Health::progressing("Updating", format!("{id}: {action} for {field_name}"));
            t.save(&health, false).await?;
            run.facts.recorded = Some((change, field));
            None
        }
        Step::ChangeInstance {
            instance,
            change,
            corrects_drift,
        } => {
            let spec = &t.obj.spec;
            let password = run.password.take();
            let Some(modification) = update::modification(&change, &instance, spec, password)
            else {
                return Err(Error::StepOrder("a day-2 change that is not one call"));
            };
            let result = cloud(run)?
                .change_instance(&instance.instance_id, &modification)
                .await;
            if let Ok(request_id) = &result {
                let digest = password_digest(&run.facts).map(String::from);
                changed(t, &change, corrects_drift, request_id.clone(), digest).await;
            }
            run.facts.changed = Some(result);
            None
        }
        Step::WaitAppear { id } => {
            // New instances can take a moment to show up in DescribeInstances.
            let health = Health::progressing("Provisioning", format!("waiting for {id} to appear"));
            t.save(&health, false).await?;
            Some(wait(t, Wait::Soon))
        }
        Step::TerminateFailedLaunch { instance } => {
            // Best effort: a failed launch holds no resources, and some regions refuse to
            // terminate it.
            let _ = cloud(run)?
                .terminate_instances(&[ToTerminate::from(&instance)])
                .await;
            run.facts.failed_launch_terminated = true;
            None
        }
        Step::StartNewAttempt { reason, message } => {
            let attempt = t.status.attempt.unwrap_or(0).saturating_add(1);
            t.forget_instance();
            // What the old instance was created with says nothing of the next one, which is
            // created from the spec as it is then (recorded at RecordId, or, if an earlier
            // run created it and it is adopted by tag, on its first managed observation).
            t.status.created_with = None;
            t.status.password_hash = None;
            t.status.attempt = Some(attempt);
            t.status.client_token = Some(client_token(&t.uid, attempt));
            t.event(EventType::Warning, reason, &message, "Recreate")
                .await;
            t.save(&Health::progressing(reason, message.as_str()), true)
                .await?;
            Some(wait(t, Wait::Immediately))
        }
        Step::FollowTerminating { id } => {
            run.facts.followed = Some(cloud(run)?.describe_instance(&id).await);
            None
        }
        Step::StillTerminating => Some(wait(t, Wait::PollMin)),
        Step::Terminate { instances } => {
            let doomed: Vec<ToTerminate> = instances.iter().map(ToTerminate::from).collect();
            let result = cloud(run)?.terminate_instances(&doomed).await;
            if result.as_ref().is_ok() || result.as_ref().is_err_and(|e| e.is_already_terminated())
            {
                let ids: Vec<&str> = instances.iter().map(|i| i.instance_id.as_str()).collect();
                t.event(
                    EventType::Normal,
                    "TerminatingInstance",
                    &format!("TerminateInstances {}", ids.join(", ")),
                    "Delete",
                )
                .await;
            }
            run.facts.terminated = Some(result);
            None
        }
        Step::WaitTerminating { ids, recorded } => {
            if let Some(id) = recorded {
                t.status.instance_state = Some("TERMINATING".to_string());
                t.status.instance_id = Some(id);
            }
            t.status.hourly_price = None;
            let health = Health::progressing(
                "Terminating",
                format!("waiting for {} to be gone", ids.join(", ")),
            );
            t.save(&health, false).await?;
            Some(wait(t, Wait::PollMin))
        }
        Step::ConfirmNoInstance => {
            let health = Health::progressing(
                "ConfirmingNoInstance",
                "a creation was requested but no instance ID was recorded; waiting for tags to propagate before letting go",
            );
            t.save(&health, false).await?;
            Some(wait(t, Wait::PollMin))
        }
        Step::ReleaseFinalizer { why } => {
            // A set's children: the set tells of the scale-down (Event `ScaledDown`).
            let tell = !(matches!(
                why,
                Release::Terminated { .. } | Release::Terminating { .. }
            ) && t.obj.milestones_on_owner());
            let (reason, note) = match why {
                Release::Orphaned { what } => (
                    "InstanceOrphaned",
                    format!("deletionPolicy is Orphan: {what} is left running"),
                ),
                Release::RegionUnsupported { code, message } => (
                    "RegionUnsupported",
                    format!("no instance can exist: {code}: {message}"),
                ),
                Release::Terminated { what } => {
                    info!(instance = %what, "instance gone; releasing the resource");
                    ("InstanceTerminated", format!("{what} is gone"))
                }
                Release::Terminating { what } => {
                    info!(instance = %what, "instance terminating; releasing the set's child");
                    ("InstanceTerminating", format!("{what} is terminating"))
                }
            };
            if tell {
                t.event(EventType::Normal, reason, &note, "Delete").await;
            }
            let_go_of_credentials(t, &note).await?;
            finalizer::remove(&t.api, &t.obj, crate::api::FINALIZER).await?;
            t.ctx.forget(&t.uid);
            t.ctx.metrics.instance_state(&t.uid, None);
            t.ctx.metrics.hourly_spend(&t.uid, None);
            Some(wait(t, Wait::AwaitChange))
        }
        Step::Stall {
            reason,
            message,
            then,
        } => {
            t.save(&Health::stalled(reason, message), true).await?;
            Some(wait(t, then))
        }
        Step::CloudFailure { action, error } => Some(cloud_failure(t, action, &error).await?),
        Step::Idle { then } => Some(wait(t, then)),
    };
    debug_assert_eq!(
        ends,
        action.is_some(),
        "Step::ends disagrees with the executor"
    );
    Ok(action)
}

/// Takes the in-use finalizer off the credentials Secret if no other CvmInstance of the
/// namespace needs it. Records first that this resource is releasing, so that a crash
/// after the Secret went does not leave it waiting for credentials it no longer needs.
async fn let_go_of_credentials(t: &mut Target<'_, CvmInstance>, note: &str) -> Result<(), Error> {
    let Some(secret) = t
        .obj
        .spec
        .credentials_secret_ref
        .as_ref()
        .map(|r| r.name.clone())
    else {
        return Ok(());
    };
    let health = Health::progressing(RELEASING, format!("{note}; releasing Secret {secret}"));
    t.save(&health, false).await?;
    if secret_use::needed_by_another(t.ctx, &t.namespace, &secret, &t.uid).await? {
        return Ok(());
    }
    secret_use::release(&t.ctx.kube, &t.namespace, &secret).await?;
    info!(secret = %secret, "released the credentials Secret: no other resource needs it");
    Ok(())
}

/// The cloud client; every cloud step comes after ResolveCredentials.
fn cloud(run: &Run) -> Result<&Arc<dyn Cloud>, Error> {
    run.cloud
        .as_ref()
        .ok_or(Error::StepOrder("a cloud call before the credentials"))
}

/// Whether the resource is Ready for its current spec and the sweeper recently saw its
/// instance unchanged: the safety-net timer then costs no cloud call.
fn sweeper_vouches(t: &Target<'_, CvmInstance>) -> bool {
    t.instance_id().is_some_and(|id| {
        t.ctx
            .sweeper
            .vouches_for(&t.owner(), id, t.ctx.settings.resync.saturating_mul(2))
    })
}

/// Shows what the instance costs per hour; when prices cannot be had the field stays as it
/// was and the reconcile goes on.
async fn show_price(t: &mut Target<'_, CvmInstance>, cloud: &Arc<dyn Cloud>, instance: &Instance) {
    let spec = &t.obj.spec;
    if let Some(price) = price::hourly_price(&t.ctx.offerings, cloud, spec, instance).await {
        t.status.hourly_price = price;
    }
}

async fn report(
    t: &mut Target<'_, CvmInstance>,
    cloud: Arc<dyn Cloud>,
    instance: &Instance,
    verdict: Verdict,
) -> Result<Action, Error> {
    let owner = t.owner();
    match verdict {
        Verdict::Report { health, requeue } => {
            t.save(&health, false).await?;
            Ok(match requeue {
                Requeue::Steady => {
                    t.ctx.reset_backoff(&t.uid);
                    t.ctx
                        .sweeper
                        .register(owner, cloud, std::slice::from_ref(instance));
                    wait(t, Wait::Steady)
                }
                Requeue::Soon => {
                    t.ctx.sweeper.unregister(&owner);
                    wait(t, Wait::Soon)
                }
                Requeue::Slow => {
                    t.ctx.sweeper.unregister(&owner);
                    wait(t, Wait::SlowRetry)
                }
            })
        }
        Verdict::Replacing { health } => {
            t.ctx.sweeper.unregister(&owner);
            t.save(&health, true).await?;
            Ok(wait(t, Wait::Soon))
        }
    }
}

/// Records what a day-2 call just did: its RequestId on the recorded operation, what the
/// operator now owns (tag keys, host name), and an Event naming the change.
async fn changed(
    t: &mut Target<'_, CvmInstance>,
    change: &Change,
    corrects_drift: bool,
    request_id: Option<String>,
    password_digest: Option<String>,
) {
    if let Some(operation) = t.status.operation.as_mut() {
        operation.request_id = request_id;
    }
    let spec = &t.obj.spec;
    match change {
        Change::SetTags { .. } => {
            t.status.applied_tag_keys = update::spec_tag_keys(spec);
        }
        Change::SetHostName { host_name } => t.status.applied_host_name = Some(host_name.clone()),
        // Both send the Secret's password (a reimage only if the login uses one).
        Change::ResetPassword | Change::Reimage { .. } if password_digest.is_some() => {
            t.status.password_hash = password_digest;
        }
        _ => {}
    }
    let field = t
        .status
        .operation
        .as_ref()
        .map_or(String::new(), |op| op.field.clone());
    let id = t.instance_id().unwrap_or_default().to_string();
    let (reason, note) = if corrects_drift {
        (
            "DriftCorrected",
            format!(
                "{id}: {field} was changed outside the operator; {} sets it back to the spec",
                change.action()
            ),
        )
    } else {
        (
            "UpdatingInstance",
            format!("{id}: {} for {field}", change.action()),
        )
    };
    t.event(EventType::Normal, reason, &note, "Update").await;
}

/// The report of a managed instance: the plan's findings go into the status (what was
/// observed, drift, what waits and why, its conditions), and the health says whether an
/// update is under way, waits for a person, or is done.
async fn report_managed(
    t: &mut Target<'_, CvmInstance>,
    cloud: Arc<dyn Cloud>,
    instance: &Instance,
    verdict: Verdict,
    day2: Day2,
) -> Result<Action, Error> {
    let Day2 {
        observed,
        plan,
        password_digest,
    } = day2;
    // What RunInstances set is the baseline of what the operator manages: the spec's tag
    // keys and host name (DescribeInstances never shows the host name).
    let spec = &t.obj.spec;
    if t.status.applied_tag_keys.is_none() {
        t.status.applied_tag_keys = update::spec_tag_keys(spec);
    }
    if t.status.applied_host_name.is_none() {
        t.status.applied_host_name = spec.host_name.clone();
    }
    // The first digest seen is the baseline: an adopted instance (or one created before the
    // operator recorded digests) keeps its password until the Secret changes. Its password
    // cannot be observed, and resetting it would stop a machine nobody asked to change.
    if t.status.password_hash.is_none() {
        t.status.password_hash = password_digest;
    }
    // Likewise what no API changes: as the spec is when first managed (adopted, or created
    // before the operator kept this record).
    if t.status.created_with.is_none() {
        t.status.created_with = Some(replace_only_digests(spec));
    }
    t.status.observed = Some(observed);
    t.status.drift = plan.drift;
    t.status.pending_changes = (!plan.pending.is_empty()).then_some(plan.pending);
    t.set_other_conditions(
        plan.conditions
            .into_iter()
            .map(|c| {
                (
                    c.type_.to_string(),
                    c.status,
                    c.reason.to_string(),
                    c.message,
                )
            })
            .collect(),
    );
    report(t, cloud, instance, verdict).await
}

/// A failed cloud call becomes the resource's condition (with the Tencent code as reason)
/// and a Warning Event on transition; the retry delay depends on who has to act.
async fn cloud_failure(
    t: &mut Target<'_, CvmInstance>,
    action: &str,
    error: &CloudError,
) -> Result<Action, Error> {
    let reason = reason_from_code(error.code());
    let message = match error.request_id() {
        Some(request_id) => format!(
            "{action} failed: {}: {} (RequestId {request_id})",
            error.code(),
            error.message()
        ),
        None => format!("{action} failed: {}: {}", error.code(), error.message()),
    };
    tracing::warn!(code = error.code(), action, "cloud call failed");
    if error.needs_person() {
        t.save(&Health::stalled(&reason, message), true).await?;
        Ok(wait(t, Wait::SlowRetry))
    } else {
        t.save(&Health::progressing(&reason, message), true).await?;
        Ok(wait(t, Wait::Backoff))
    }
}

/// The Action for a [`Wait`]; the backoffs count this resource's consecutive failures.
fn wait(t: &Target<'_, CvmInstance>, then: Wait) -> Action {
    let s = &t.ctx.settings;
    match then {
        Wait::AwaitChange => Action::await_change(),
        Wait::PollMin => Action::requeue(s.poll_min),
        // A set's machines boot together and its children's polls share Describe calls.
        Wait::Soon if t.obj.milestones_on_owner() => Action::requeue(s.set_child_poll),
        Wait::Soon => Action::requeue(poll_interval(t.reconciling_for(), s.poll_min, s.poll_max)),
        // The operator never watches Secrets: a new login password is found by reading the
        // Secret again, once a resync period.
        Wait::Steady if follows_password_secret(&t.obj.spec) => Action::requeue(s.resync),
        // A Ready resource is watched by the sweeper; its own timer is only a safety net.
        Wait::Steady => Action::requeue(s.resync.saturating_mul(12)),
        Wait::SlowRetry => Action::requeue(t.ctx.backoff(&t.uid, s.slow_retry, s.slow_retry_max)),
        Wait::Backoff => Action::requeue(t.ctx.backoff(&t.uid, s.poll_min, s.poll_max)),
        Wait::Immediately => Action::requeue(Duration::from_millis(200)),
    }
}
