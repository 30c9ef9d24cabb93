//! Deletion: terminate the instance and wait until it is gone before the finalizer goes
//! (design §5), or leave it running under `deletionPolicy: Orphan`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::events::EventType;
use kube::runtime::controller::Action;
use tracing::info;

use super::conditions::Health;
use super::context::Context;
use super::error::Error;
use super::finalizer;
use super::reconcile::{cloud_client, cloud_failure};
use super::target::Target;
use crate::api::{CvmInstance, DeletionPolicy, TAG_UID};
use tencent_cloud::types::Instance;

pub async fn cleanup(obj: Arc<CvmInstance>, ctx: &Context) -> Result<Action, Error> {
    let mut t = Target::new(obj, ctx)?;
    ctx.sweeper
        .unregister(&kube::runtime::reflector::ObjectRef::from(t.obj.as_ref()));
    if t.obj.spec.deletion_policy == DeletionPolicy::Orphan {
        let what = t.instance_id().unwrap_or("no instance").to_string();
        t.event(
            EventType::Normal,
            "InstanceOrphaned",
            &format!("deletionPolicy is Orphan: {what} is left running"),
            "Delete",
        )
        .await;
        return release(&t).await;
    }
    let cloud = match cloud_client(&mut t).await? {
        Ok(cloud) => cloud,
        // Without credentials nothing can be terminated: keep the finalizer (no leak), and
        // say so. Setting deletionPolicy: Orphan lets the resource go.
        Err(action) => return Ok(action),
    };

    // Once the recorded instance was told to terminate, following it takes only its ID
    // (batched 100 a call); the tag lookup (5 resources a call) runs once more at the end,
    // to confirm that nothing else carrying the UID is left.
    if let Some(id) = terminating_instance(&t) {
        match cloud.describe_instance(&id).await {
            Ok(Some(instance)) if instance.instance_state == "TERMINATING" => {
                return Ok(Action::requeue(ctx.settings.poll_min));
            }
            Ok(_) => {}
            Err(e) => return cloud_failure(&mut t, "DescribeInstances", &e).await,
        }
    }

    // Everything that may belong to this resource: the recorded instance and anything
    // carrying its UID tag (earlier attempts, or a creation whose ID was never recorded).
    let mut live = Vec::new();
    let mut seen = BTreeSet::new();
    match cloud.find_instances_by_tag(TAG_UID, &t.uid).await {
        Ok(found) => {
            for instance in found {
                if seen.insert(instance.instance_id.clone()) {
                    live.push(instance);
                }
            }
        }
        // A region the API does not serve holds no instance: nothing to wait for, and
        // keeping the finalizer would make a mistyped region undeletable.
        Err(e) if e.is_region_unsupported() && t.instance_id().is_none() => {
            t.event(
                EventType::Normal,
                "RegionUnsupported",
                &format!("no instance can exist: {}: {}", e.code(), e.message()),
                "Delete",
            )
            .await;
            return release(&t).await;
        }
        Err(e) => return cloud_failure(&mut t, "DescribeInstances", &e).await,
    }
    if let Some(id) = t.instance_id().map(str::to_string)
        && !seen.contains(&id)
    {
        match cloud.describe_instance(&id).await {
            Ok(Some(instance)) => live.push(instance),
            Ok(None) => {}
            Err(e) => return cloud_failure(&mut t, "DescribeInstances", &e).await,
        }
    }

    if live.is_empty() {
        if creation_may_be_unseen(&t) {
            let health = Health::progressing(
                "ConfirmingNoInstance",
                "a creation was requested but no instance ID was recorded; waiting for tags to propagate before letting go",
            );
            t.save(&health, false).await?;
            return Ok(Action::requeue(ctx.settings.poll_min));
        }
        let what = t.instance_id().unwrap_or("no instance").to_string();
        info!(instance = %what, "instance gone; releasing the resource");
        t.event(
            EventType::Normal,
            "InstanceTerminated",
            &format!("{what} is gone"),
            "Delete",
        )
        .await;
        return release(&t).await;
    }

    let to_terminate: Vec<Instance> = live
        .iter()
        .filter(|i| i.instance_state != "TERMINATING")
        .cloned()
        .collect();
    if !to_terminate.is_empty() {
        if let Err(e) = cloud.terminate_instances(&to_terminate).await
            && !e.is_already_terminated()
        {
            return cloud_failure(&mut t, "TerminateInstances", &e).await;
        }
        let ids: Vec<&str> = to_terminate
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect();
        t.event(
            EventType::Normal,
            "TerminatingInstance",
            &format!("TerminateInstances {}", ids.join(", ")),
            "Delete",
        )
        .await;
    }
    if let Some(current) = live
        .iter()
        .find(|i| Some(i.instance_id.as_str()) == t.instance_id())
    {
        t.status.instance_state = Some("TERMINATING".to_string());
        t.status.instance_id = Some(current.instance_id.clone());
    }
    let ids: Vec<&str> = live.iter().map(|i| i.instance_id.as_str()).collect();
    let health = Health::progressing(
        "Terminating",
        format!("waiting for {} to be gone", ids.join(", ")),
    );
    t.save(&health, false).await?;
    Ok(Action::requeue(ctx.settings.poll_min))
}

/// The recorded instance, if this cleanup already saw it terminating.
fn terminating_instance(t: &Target<'_>) -> Option<String> {
    (t.status.instance_state.as_deref() == Some("TERMINATING"))
        .then(|| t.instance_id().map(str::to_string))
        .flatten()
}

/// A token was persisted but no ID: RunInstances may have succeeded without the operator
/// recording it, and Tencent attaches tags asynchronously, so an empty tag lookup right
/// after deletion proves nothing yet. No creation starts after deletion began, so waiting
/// `tag_grace` from the deletion timestamp covers every possible creation.
fn creation_may_be_unseen(t: &Target<'_>) -> bool {
    if t.status.client_token.is_none() || t.instance_id().is_some() {
        return false;
    }
    let Some(deleted_at) = t.obj.metadata.deletion_timestamp.as_ref() else {
        return false;
    };
    let waited =
        Duration::try_from(t.ctx.clock.now().duration_since(deleted_at.0)).unwrap_or_default();
    waited < t.ctx.settings.tag_grace
}

async fn release(t: &Target<'_>) -> Result<Action, Error> {
    finalizer::remove(&t.api, &t.obj).await?;
    t.ctx.reset_backoff(&t.uid);
    t.ctx.metrics.instance_state(&t.uid, None);
    Ok(Action::await_change())
}
