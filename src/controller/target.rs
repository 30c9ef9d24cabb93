//! One reconcile's view of one resource: the status as found, the status being built, and
//! how both reach the API server (status writes and Events).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::warn;

use super::conditions::{Health, READY, RECONCILING, STALLED, same_conditions, transition_time};
use super::context::Context;
use super::error::Error;
use super::events::EventType;
use super::price::{billed_mode, parse_price};
use super::step::reconciling_for;
use super::sweep::{Owner, owner_of};
use crate::api::{CvmInstance, CvmInstanceStatus};
use crate::metrics::SpendLabels;
use crate::set::children::controlling_set;
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

    /// The ClientToken of a set's launch record as the API server stored it: a set sends a
    /// launch only after writing its record (`set::reconcile`), or replays a stored one.
    pub(crate) fn of_stored_launch(record: &crate::api::LaunchRecord) -> Self {
        Self(record.client_token.clone())
    }

    /// For tests of request building, which have no API server to persist to.
    #[cfg(test)]
    pub(crate) fn assume_persisted(token: String) -> Self {
        Self(token)
    }
}

/// The field manager that owns the status.
pub const MANAGER: &str = "cvm-operator";

/// A kind whose status this operator writes: kstatus conditions and an observed generation
/// beside its own fields. The status writer, Events and conditions are generic over it; a
/// new kind implements it and gets the same write-only-on-change and Event-on-transition.
pub trait Managed:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    type Status: Clone + Default + PartialEq + Serialize + Send + Sync;

    fn status(&self) -> Option<&Self::Status>;
    /// The status without the API server's placeholder (the CRD's default for `status`).
    fn written_by_operator(status: Self::Status) -> Self::Status;
    fn conditions(status: &Self::Status) -> &[Condition];
    fn conditions_mut(status: &mut Self::Status) -> &mut Option<Vec<Condition>>;
    fn observed_generation_mut(status: &mut Self::Status) -> &mut Option<i64>;
    /// What the per-resource state metric shows; `None` for no state.
    fn state_metric(_status: &Self::Status) -> Option<&str> {
        None
    }
    /// What this resource adds to the hourly spend metric: its billing mode label
    /// (`PayAsYouGo`, `Spot`) and price per hour; `None` while nothing is billed.
    fn spend_metric(&self, _status: &Self::Status) -> Option<(&'static str, f64)> {
        None
    }
    /// Whether the Normal milestone Events of this resource (Ready, adopted, terminated) are
    /// told by its owner in aggregate instead: a set's thousand children would write a
    /// thousand Events each time (an API call and an etcd object for an hour each) and slow
    /// every child's status behind them. Warnings are always the resource's own.
    fn milestones_on_owner(&self) -> bool {
        false
    }
}

impl Managed for CvmInstance {
    type Status = CvmInstanceStatus;

    fn status(&self) -> Option<&CvmInstanceStatus> {
        self.status.as_ref()
    }
    fn written_by_operator(status: CvmInstanceStatus) -> CvmInstanceStatus {
        status.written_by_operator()
    }
    fn conditions(status: &CvmInstanceStatus) -> &[Condition] {
        status.conditions.as_deref().unwrap_or_default()
    }
    fn conditions_mut(status: &mut CvmInstanceStatus) -> &mut Option<Vec<Condition>> {
        &mut status.conditions
    }
    fn observed_generation_mut(status: &mut CvmInstanceStatus) -> &mut Option<i64> {
        &mut status.observed_generation
    }
    fn state_metric(status: &CvmInstanceStatus) -> Option<&str> {
        status.instance_state.as_deref()
    }
    fn spend_metric(&self, status: &CvmInstanceStatus) -> Option<(&'static str, f64)> {
        let price = parse_price(status.hourly_price.as_deref())?;
        Some((self.spec.billing.mode.as_str(), price))
    }
    fn milestones_on_owner(&self) -> bool {
        controlling_set(self).is_some()
    }
}

pub struct Target<'a, K: Managed> {
    pub ctx: &'a Context,
    pub api: Api<K>,
    pub obj: Arc<K>,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The status as last written (or read).
    pub old: K::Status,
    /// The status this reconcile is building.
    pub status: K::Status,
    /// Conditions besides the kstatus three for the next write; `None` keeps the old ones.
    other_conditions: Option<Vec<(String, bool, String, String)>>,
}

impl<'a, K: Managed> Target<'a, K> {
    pub fn new(obj: Arc<K>, ctx: &'a Context) -> Result<Self, Error> {
        let namespace = obj
            .namespace()
            .ok_or(Error::MissingObjectKey("namespace"))?;
        let uid = obj.uid().ok_or(Error::MissingObjectKey("uid"))?;
        // Until our first write, the API server shows the CRD's placeholder status.
        let status = K::written_by_operator(obj.status().cloned().unwrap_or_default());
        Ok(Self {
            ctx,
            api: Api::namespaced(ctx.kube.clone(), &namespace),
            name: obj.name_any(),
            namespace,
            uid,
            old: status.clone(),
            status,
            obj,
            other_conditions: None,
        })
    }

    /// Starts over from `obj`, as returned by a write to it (e.g. adding the finalizer).
    pub fn reset(&mut self, obj: Arc<K>) {
        self.refresh(obj.status().cloned().unwrap_or_default());
        self.obj = obj;
    }

    /// Replaces the cached status with `fresh`, read from the API server.
    pub fn refresh(&mut self, fresh: K::Status) {
        let fresh = K::written_by_operator(fresh);
        self.old = fresh.clone();
        self.status = fresh;
    }

    /// The object as an owner the sweeper can trigger.
    pub fn owner(&self) -> Owner {
        owner_of(self.obj.as_ref())
    }

    /// Sets `health`, writes the status if anything changed, and publishes an Event when the
    /// Ready condition changes reason. `warning` marks the transition as a Warning Event.
    pub async fn save(&mut self, health: &Health, warning: bool) -> Result<(), Error> {
        let previous = K::conditions(&self.old).to_vec();
        let generation = self.obj.meta().generation;
        let now = self.ctx.clock.now();
        let mut conditions = health.conditions(&previous, generation, now);
        conditions.extend(self.other_conditions(&previous, generation, now));
        *K::conditions_mut(&mut self.status) = Some(conditions.clone());
        *K::observed_generation_mut(&mut self.status) = generation;

        // Metrics follow the status even when nothing is written, so that after a restart
        // they count the resources whose status was already right.
        self.update_metrics();
        let changed = !same_conditions(&previous, &conditions)
            || without_conditions::<K>(&self.status) != without_conditions::<K>(&self.old);
        if !changed {
            return Ok(());
        }
        let ready_before = previous.iter().find(|c| c.type_ == "Ready");
        let transition = ready_before
            .is_none_or(|c| c.reason != health.reason() || c.status != conditions[0].status);

        // The whole status in one JSON patch (`add` replaces it, or creates it on the first
        // write): the operator is its only writer, and fields it no longer sets go with it.
        // Not server-side apply: its structured merge over the CRD schema is API-server CPU
        // on every write, and that CPU is what bounds a set of 1,000 children on a small
        // control plane (docs/performance.md: 23.4 s to Ready with this, 24.4-25.5 s before).
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/status", "value": self.status}
        ]))
        .expect("one add operation is a valid JSON patch");
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..PatchParams::default()
        };
        self.api
            .patch_status(&self.name, &params, &Patch::Json::<()>(patch))
            .await?;
        self.old = self.status.clone();

        // Steps of normal progress (Creating, Provisioning, WaitingForPublicIp, Terminating)
        // get no Event of their own: the condition says where things stand, and the explicit
        // Events (InstanceCreated, TerminatingInstance...) mark the milestones. Each Event is
        // an API call and an object in etcd for an hour.
        let type_ = match health {
            Health::Stalled { .. } => Some(EventType::Warning),
            _ if warning => Some(EventType::Warning),
            Health::Ready { .. } if !self.obj.milestones_on_owner() => Some(EventType::Normal),
            _ => None,
        };
        if transition && let Some(type_) = type_ {
            self.event(type_, health.reason(), health.message(), "Reconcile")
                .await;
        }
        Ok(())
    }

    fn update_metrics(&self) {
        let metrics = &self.ctx.metrics;
        metrics.instance_state(&self.uid, K::state_metric(&self.status));
        let spend = self.obj.spend_metric(&self.status).map(|(billing, price)| {
            let labels = SpendLabels {
                namespace: self.namespace.clone(),
                billing: billing.to_string(),
            };
            (labels, price)
        });
        metrics.hourly_spend(&self.uid, spend);
    }

    /// Conditions besides Ready, Reconciling and Stalled (`Drifted`, `RestartRequired`...):
    /// the ones set for this write, or else the ones written before, so a pass that did not
    /// look at them (a failed call, say) does not drop them.
    fn other_conditions(
        &mut self,
        previous: &[Condition],
        generation: Option<i64>,
        now: Timestamp,
    ) -> Vec<Condition> {
        let Some(set) = self.other_conditions.take() else {
            return previous
                .iter()
                .filter(|c| !CORE_CONDITIONS.contains(&c.type_.as_str()))
                .cloned()
                .collect();
        };
        set.into_iter()
            .map(|(type_, status, reason, message)| {
                let status = if status { "True" } else { "False" }.to_string();
                let since = transition_time(previous, &type_, &status, now);
                Condition {
                    type_,
                    status,
                    reason,
                    message,
                    observed_generation: generation,
                    last_transition_time: since,
                }
            })
            .collect()
    }

    /// Sets the conditions besides the three kstatus ones for the next `save`, each as
    /// (type, status, reason, message).
    pub fn set_other_conditions(&mut self, conditions: Vec<(String, bool, String, String)>) {
        self.other_conditions = Some(conditions);
    }

    /// How long the resource has been Reconciling without interruption.
    pub fn reconciling_for(&self) -> Duration {
        reconciling_for(K::conditions(&self.status), self.ctx.clock.now())
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

fn without_conditions<K: Managed>(status: &K::Status) -> K::Status {
    let mut status = status.clone();
    *K::conditions_mut(&mut status) = None;
    status
}

/// The conditions kstatus reads, always written from the health.
const CORE_CONDITIONS: [&str; 3] = [READY, RECONCILING, STALLED];

/// What only a CvmInstance's status holds: its one instance and its creation token.
impl Target<'_, CvmInstance> {
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
        // Only a price lookup ([`super::price`]) sets a price; what is not billed has none.
        if billed_mode(instance, &self.obj.spec).is_none() {
            self.status.hourly_price = None;
        }
    }

    /// Forgets the current instance, e.g. after it vanished.
    pub fn forget_instance(&mut self) {
        self.status.instance_id = None;
        self.status.instance_state = None;
        self.status.private_ip_addresses = None;
        self.status.public_ip_addresses = None;
        self.status.hourly_price = None;
    }
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}
