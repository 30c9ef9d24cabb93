//! The reconcile of a `CvmInstance` that is not being deleted: find or create its one
//! instance (design §4), then follow it and report (design §5).

use std::sync::Arc;
use std::time::Duration;

use super::events::EventType;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::{Span, info};

use super::conditions::{Health, reason_from_code};
use super::context::Context;
use super::credentials::{Purpose, SecretProblem, resolve_credentials, resolve_password};
use super::error::Error;
use super::observe::{Requeue, Verdict, judge, poll_interval};
use super::request::{Owner, TAG_ATTEMPT, client_token, run_instances_request, user_data_fits};
use super::target::Target;
use crate::api::{CvmInstance, TAG_UID};
use crate::cloud::Cloud;
use tencent_cloud::error::CloudError;
use tencent_cloud::types::Instance;

pub async fn apply(obj: Arc<CvmInstance>, ctx: &Context) -> Result<Action, Error> {
    let mut t = Target::new(obj, ctx)?;
    let cloud = match cloud_client(&mut t).await? {
        Ok(cloud) => cloud,
        Err(action) => return Ok(action),
    };
    if t.instance_id().is_none() {
        // The watch cache can lag behind our own writes; before anything that could create
        // an instance, read the resource from the API server itself.
        let fresh = t.api.get(&t.name).await?;
        if fresh.uid() != Some(t.uid.clone()) {
            return Ok(Action::await_change());
        }
        t.refresh(fresh.status.unwrap_or_default());
        // The span has the ID only if the cached object had one; the fresh read may add it.
        if let Some(id) = t.instance_id() {
            Span::current().record("instance_id", id);
        }
    }
    match t.instance_id().map(str::to_string) {
        None => create(&mut t, &cloud).await,
        Some(id) => observe(&mut t, &cloud, &id).await,
    }
}

/// The API client for the resource's credentials and region, or the Action to take when the
/// credentials are missing (the resource is then Stalled, saying which Secret or key).
pub async fn cloud_client(t: &mut Target<'_>) -> Result<Result<Arc<dyn Cloud>, Action>, Error> {
    let defaults = t.ctx.settings.default_credentials.as_ref();
    let reference = t.obj.spec.credentials_secret_ref.as_ref();
    match resolve_credentials(&t.ctx.kube, reference, &t.namespace, defaults).await? {
        Ok(credentials) => Ok(Ok(t.ctx.clouds.get(&credentials, &t.obj.spec.region))),
        Err(problem) => Ok(Err(secret_problem(t, &problem, Purpose::Credentials).await?)),
    }
}

pub async fn secret_problem(
    t: &mut Target<'_>,
    problem: &SecretProblem,
    purpose: Purpose,
) -> Result<Action, Error> {
    t.save(
        &Health::stalled(problem.reason(purpose), problem.to_string()),
        true,
    )
    .await?;
    Ok(slow_retry(t))
}

async fn create(t: &mut Target<'_>, cloud: &Arc<dyn Cloud>) -> Result<Action, Error> {
    let obj = t.obj.clone();
    let spec = &obj.spec;
    if let Some(text) = &spec.user_data
        && !user_data_fits(text)
    {
        let health = Health::stalled(
            "UserDataTooLarge",
            "spec.userData is larger than 16 KiB once base64-encoded",
        );
        t.save(&health, true).await?;
        return Ok(Action::await_change());
    }
    let password = match spec
        .login
        .as_ref()
        .and_then(|l| l.password_secret_ref.as_ref())
    {
        None => None,
        Some(reference) => match resolve_password(&t.ctx.kube, &t.namespace, reference).await? {
            Ok(password) => Some(password),
            Err(problem) => return secret_problem(t, &problem, Purpose::Password).await,
        },
    };

    // 1. The token is persisted before any call that could create an instance.
    let attempt = t.status.attempt.unwrap_or(0);
    let token = client_token(&t.uid, attempt);
    let token_is_new = t.status.client_token.as_deref() != Some(token.as_str());
    if token_is_new {
        t.status.client_token = Some(token.clone());
        t.status.attempt = Some(attempt);
        let health = Health::progressing("Creating", "creating the instance");
        t.save(&health, false).await?;
    }

    // 2. An instance of this attempt may exist already (a crash after RunInstances). Not if
    //    the token was persisted only now: no RunInstances carries a token before it is
    //    persisted, so none can have been sent. This saves a DescribeInstances per create.
    let existing = if token_is_new {
        Vec::new()
    } else {
        match cloud.find_instances_by_tag(TAG_UID, &t.uid).await {
            Ok(found) => found,
            Err(e) => return cloud_failure(t, "DescribeInstances", &e).await,
        }
    };
    let attempt_tag = attempt.to_string();
    if let Some(instance) = existing
        .iter()
        .find(|i| i.tag(TAG_ATTEMPT) == Some(attempt_tag.as_str()))
    {
        let id = instance.instance_id.clone();
        Span::current().record("instance_id", id.as_str());
        info!(instance_id = %id, "adopting the instance created by an earlier run");
        t.record(instance);
        t.event(
            EventType::Normal,
            "InstanceAdopted",
            &format!("found {id}, created for this resource by an earlier run"),
            "Create",
        )
        .await;
        return report(t, cloud, instance).await;
    }

    // 3. RunInstances with the persisted token; a retry of the same attempt can only ever
    //    return the same instance.
    let owner = Owner {
        namespace: &t.namespace,
        name: &t.name,
        uid: &t.uid,
        attempt,
    };
    let Some(persisted) = t.persisted_token(&token) else {
        // Not reached: the token was either read back from the API server or stored by
        // `save` above, which fails otherwise. Asking `Target` for it is what lets the
        // compiler hold every RunInstances to that rule; if it ever fails, start over.
        return Ok(Action::requeue(t.ctx.settings.poll_min));
    };
    let request = run_instances_request(spec, &owner, &persisted, password);
    let ids = match cloud.run_instances(&request).await {
        Ok(ids) => ids,
        Err(e) => return cloud_failure(t, "RunInstances", &e).await,
    };
    let Some(id) = ids.into_iter().next() else {
        // "InstanceIdSet does not by itself mean success": look again soon, same token.
        let health = Health::progressing("Creating", "RunInstances returned no instance ID yet");
        t.save(&health, false).await?;
        return Ok(Action::requeue(t.ctx.settings.poll_min));
    };

    // 4. The ID is persisted at once.
    Span::current().record("instance_id", id.as_str());
    info!(instance_id = %id, %token, "instance created");
    t.status.instance_id = Some(id.clone());
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
    Ok(Action::requeue(t.ctx.settings.poll_min))
}

async fn observe(t: &mut Target<'_>, cloud: &Arc<dyn Cloud>, id: &str) -> Result<Action, Error> {
    if sweeper_vouches(t, id) {
        // The safety-net timer of a Ready resource: the sweeper looked at its instance within
        // the last two resync periods, so asking the cloud again would only cost a call.
        return Ok(steady(t));
    }
    match cloud.describe_instance(id).await {
        Err(e) => cloud_failure(t, "DescribeInstances", &e).await,
        Ok(Some(instance)) => {
            if instance.instance_state == "LAUNCH_FAILED" && spec_changed_since_failure(t) {
                return retry_failed_launch(t, cloud.as_ref(), &instance).await;
            }
            t.record(&instance);
            report(t, cloud, &instance).await
        }
        Ok(None) => vanished(t, id).await,
    }
}

/// Whether the resource is Ready for its current spec and the sweeper recently saw its
/// instance unchanged.
fn sweeper_vouches(t: &Target<'_>, id: &str) -> bool {
    t.old.is_ready()
        && t.old.observed_generation == t.obj.metadata.generation
        && t.ctx.sweeper.vouches_for(
            &ObjectRef::from(t.obj.as_ref()),
            id,
            t.ctx.settings.resync.saturating_mul(2),
        )
}

/// A launch failure is retried only once the spec changed after it was reported.
fn spec_changed_since_failure(t: &Target<'_>) -> bool {
    t.old.instance_state.as_deref() == Some("LAUNCH_FAILED")
        && t.obj.metadata.generation != t.old.observed_generation
}

async fn retry_failed_launch(
    t: &mut Target<'_>,
    cloud: &dyn Cloud,
    failed: &Instance,
) -> Result<Action, Error> {
    let id = failed.instance_id.as_str();
    // Best effort: a failed launch holds no resources, and some regions refuse to terminate it.
    let _ = cloud
        .terminate_instances(std::slice::from_ref(failed))
        .await;
    new_attempt(
        t,
        "RetryingLaunch",
        &format!("the spec changed after {id} failed to launch; creating a new instance"),
    )
    .await
}

async fn report(
    t: &mut Target<'_>,
    cloud: &Arc<dyn Cloud>,
    instance: &Instance,
) -> Result<Action, Error> {
    let object = ObjectRef::from(t.obj.as_ref());
    let wants_public_ip = t
        .obj
        .spec
        .network
        .as_ref()
        .is_some_and(|n| n.public_ip.is_some());
    match judge(instance, wants_public_ip) {
        Verdict::Report { health, requeue } => {
            t.save(&health, false).await?;
            Ok(match requeue {
                Requeue::Steady => {
                    t.ctx.reset_backoff(&t.uid);
                    t.ctx.sweeper.register(object, cloud.clone(), instance);
                    steady(t)
                }
                Requeue::Soon => {
                    t.ctx.sweeper.unregister(&object);
                    soon(t)
                }
                Requeue::Slow => {
                    t.ctx.sweeper.unregister(&object);
                    slow_retry(t)
                }
            })
        }
        Verdict::Replacing { health } => {
            t.ctx.sweeper.unregister(&object);
            t.save(&health, true).await?;
            Ok(soon(t))
        }
    }
}

async fn vanished(t: &mut Target<'_>, id: &str) -> Result<Action, Error> {
    let never_seen = t.old.instance_state.is_none();
    if never_seen && t.reconciling_for() < t.ctx.settings.appear_grace {
        // New instances can take a moment to show up in DescribeInstances.
        let health = Health::progressing("Provisioning", format!("waiting for {id} to appear"));
        t.save(&health, false).await?;
        return Ok(soon(t));
    }
    new_attempt(
        t,
        "InstanceVanished",
        &format!("{id} no longer exists (spot reclaim, or terminated outside the operator); creating a new instance"),
    )
    .await
}

/// Starts a new creation attempt: a new token, persisted before anything else happens.
async fn new_attempt(t: &mut Target<'_>, reason: &str, message: &str) -> Result<Action, Error> {
    let attempt = t.status.attempt.unwrap_or(0).saturating_add(1);
    t.forget_instance();
    t.status.attempt = Some(attempt);
    t.status.client_token = Some(client_token(&t.uid, attempt));
    t.event(EventType::Warning, reason, message, "Recreate")
        .await;
    t.save(&Health::progressing(reason, message), true).await?;
    Ok(Action::requeue(Duration::from_millis(200)))
}

/// A failed cloud call becomes the resource's condition (with the Tencent code as reason)
/// and a Warning Event on transition; the retry delay depends on who has to act.
pub async fn cloud_failure(
    t: &mut Target<'_>,
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
        Ok(slow_retry(t))
    } else {
        t.save(&Health::progressing(&reason, message), true).await?;
        let s = &t.ctx.settings;
        Ok(Action::requeue(
            t.ctx.backoff(&t.uid, s.poll_min, s.poll_max),
        ))
    }
}

/// A Ready resource is watched by the sweeper; its own timer is only a safety net.
fn steady(t: &Target<'_>) -> Action {
    Action::requeue(t.ctx.settings.resync.saturating_mul(12))
}

fn soon(t: &Target<'_>) -> Action {
    let s = &t.ctx.settings;
    Action::requeue(poll_interval(t.reconciling_for(), s.poll_min, s.poll_max))
}

pub fn slow_retry(t: &Target<'_>) -> Action {
    let s = &t.ctx.settings;
    Action::requeue(t.ctx.backoff(&t.uid, s.slow_retry, s.slow_retry_max))
}
