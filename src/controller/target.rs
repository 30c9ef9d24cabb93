//! One reconcile's view of one resource: the status as found, the status being built, and
//! how both reach the API server (status writes and Events).

use std::sync::Arc;
use std::time::Duration;

use super::events::EventType;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use tracing::warn;

use super::conditions::{Health, RECONCILING, same_conditions};
use super::context::Context;
use super::error::Error;
use crate::api::{CvmInstance, CvmInstanceStatus};
use tencent_cloud::types::Instance;

/// A ClientToken that is in the status stored by the API server. Only [`Target`] makes one,
/// from the status as last written or read back, and RunInstances requests are built only
/// from one ([`super::request::run_instances_request`]): sending a token that a crash could
/// lose, and with it the way back to the instance, does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedToken(String);

impl PersistedToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For tests of request building, which have no API server to persist to.
    #[cfg(test)]
    pub(crate) fn assume_persisted(token: String) -> Self {
        Self(token)
    }
}

/// The field manager that owns the status.
pub const MANAGER: &str = "cvm-operator";

pub struct Target<'a> {
    pub ctx: &'a Context,
    pub api: Api<CvmInstance>,
    pub obj: Arc<CvmInstance>,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The status as last written (or read).
    pub old: CvmInstanceStatus,
    /// The status this reconcile is building.
    pub status: CvmInstanceStatus,
}

impl<'a> Target<'a> {
    pub fn new(obj: Arc<CvmInstance>, ctx: &'a Context) -> Result<Self, Error> {
        let namespace = obj
            .namespace()
            .ok_or(Error::MissingObjectKey("namespace"))?;
        let uid = obj.uid().ok_or(Error::MissingObjectKey("uid"))?;
        // Until our first write, the API server shows the CRD's placeholder status.
        let status = obj.status.clone().unwrap_or_default().written_by_operator();
        Ok(Self {
            ctx,
            api: Api::namespaced(ctx.kube.clone(), &namespace),
            name: obj.name_any(),
            namespace,
            uid,
            old: status.clone(),
            status,
            obj,
        })
    }

    /// Replaces the cached status with `fresh`, read from the API server.
    pub fn refresh(&mut self, fresh: CvmInstanceStatus) {
        let fresh = fresh.written_by_operator();
        self.old = fresh.clone();
        self.status = fresh;
    }

    /// The ClientToken of the stored status, if it is `expected`.
    pub fn persisted_token(&self, expected: &str) -> Option<PersistedToken> {
        (self.old.client_token.as_deref() == Some(expected))
            .then(|| PersistedToken(expected.to_string()))
    }

    pub fn instance_id(&self) -> Option<&str> {
        self.status.instance_id.as_deref()
    }

    /// Copies what the cloud says about the instance into the status.
    pub fn record(&mut self, instance: &Instance) {
        self.status.instance_id = Some(instance.instance_id.clone());
        self.status.instance_state = Some(instance.instance_state.clone());
        self.status.private_ip_addresses = non_empty(&instance.private_ip_addresses);
        self.status.public_ip_addresses = non_empty(&instance.public_ip_addresses);
    }

    /// Forgets the current instance, e.g. after it vanished.
    pub fn forget_instance(&mut self) {
        self.status.instance_id = None;
        self.status.instance_state = None;
        self.status.private_ip_addresses = None;
        self.status.public_ip_addresses = None;
    }

    /// How long the resource has been Reconciling without interruption.
    pub fn reconciling_for(&self) -> Duration {
        self.status
            .condition(RECONCILING)
            .filter(|c| c.status == "True")
            .map(|c| {
                self.ctx
                    .clock
                    .now()
                    .duration_since(c.last_transition_time.0)
            })
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or_default()
    }

    /// Sets `health`, writes the status if anything changed, and publishes an Event when the
    /// Ready condition changes reason. `warning` marks the transition as a Warning Event.
    pub async fn save(&mut self, health: &Health, warning: bool) -> Result<(), Error> {
        let previous = self.old.conditions.clone().unwrap_or_default();
        let generation = self.obj.meta().generation;
        let conditions = health.conditions(&previous, generation, self.ctx.clock.now());
        self.status.conditions = Some(conditions.clone());
        self.status.observed_generation = generation;

        let changed = !same_conditions(&previous, &conditions)
            || CvmInstanceStatus {
                conditions: None,
                ..self.status.clone()
            } != CvmInstanceStatus {
                conditions: None,
                ..self.old.clone()
            };
        if !changed {
            return Ok(());
        }
        let ready_before = previous.iter().find(|c| c.type_ == "Ready");
        let transition = ready_before
            .is_none_or(|c| c.reason != health.reason() || c.status != conditions[0].status);

        // Server-side apply names the kind; taken from the type, so a version bump follows.
        let body = serde_json::json!({
            "apiVersion": CvmInstance::api_version(&()),
            "kind": CvmInstance::kind(&()),
            "status": self.status,
        });
        self.api
            .patch_status(
                &self.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(body),
            )
            .await?;
        self.old = self.status.clone();
        self.ctx
            .metrics
            .instance_state(&self.uid, self.status.instance_state.as_deref());

        // Steps of normal progress (Creating, Provisioning, WaitingForPublicIp, Terminating)
        // get no Event of their own: the condition says where things stand, and the explicit
        // Events (InstanceCreated, TerminatingInstance...) mark the milestones. Each Event is
        // an API call and an object in etcd for an hour.
        let type_ = match health {
            Health::Stalled { .. } => Some(EventType::Warning),
            _ if warning => Some(EventType::Warning),
            Health::Ready { .. } => Some(EventType::Normal),
            _ => None,
        };
        if transition && let Some(type_) = type_ {
            self.event(type_, health.reason(), health.message(), "Reconcile")
                .await;
        }
        Ok(())
    }

    /// Publishes an Event; a failure to publish is logged, never fatal.
    pub async fn event(&self, type_: EventType, reason: &str, note: &str, action: &str) {
        let regarding = self.obj.object_ref(&());
        if let Err(e) = self
            .ctx
            .events
            .publish(&regarding, type_, reason, note, action)
            .await
        {
            warn!(error = %e, reason, "could not publish Event");
        }
    }
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}
