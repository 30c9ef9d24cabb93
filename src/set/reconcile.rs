//! The executor of a set: settles the launches in flight, launches what the planner says
//! is missing (falling back across offerings within the same pass), removes the surplus,
//! and reports. This module is the pass; its parts are `launching` (write-ahead launches
//! across offerings and zones), `removal` (scale-down and the set's deletion) and `report`
//! (status, conditions and Events).
//!
//! Every change to `status.launches` is written with the resourceVersion the reconcile
//! read (a PUT of the status): a stale cache or a second leader gets a conflict and starts
//! over from fresh data instead of launching from a stale count.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::jiff::SignedDuration;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};

use super::children::{child, controlling_set, member, selector};
use super::follow::follow;
use super::launch::{request, template_hash};
use super::plan::{Markets, Member, census, need, surplus, victims};
use crate::api::{
    CvmInstance, CvmInstanceSet, CvmInstanceSetStatus, LaunchPhase, LaunchRecord, ScaleDownOrder,
    TAG_LAUNCH,
};
use crate::cloud::Cloud;
use crate::controller::credentials::resolve_credentials;
use crate::controller::events::EventType;
use crate::controller::{Context, Error, Watched, finalizer};
use kube::core::DeserializeGuard;
use removal::mark_deleting;

mod launching;
mod removal;
mod report;

/// Holds a deleted set until the launches it has in flight are settled: their instances
/// have no child yet, so nothing else would terminate them.
pub const FINALIZER: &str = "cvm-operator.io/settle-launches";
pub const CAPACITY_DEGRADED: &str = "CapacityDegraded";
/// True while some children run an older template than the set's.
pub const OUT_OF_DATE: &str = "OutOfDate";
const MANAGER: &str = "cvm-operator";
/// The API server's finalizer on an object deleted with orphan propagation.
const ORPHAN: &str = "orphan";
/// Children created or deleted at once.
const CHILD_WRITE_CONCURRENCY: usize = 32;

/// One reconcile of one set.
struct Run<'a> {
    ctx: &'a Context,
    api: Api<CvmInstanceSet>,
    children_api: Api<CvmInstance>,
    /// The set as last read or written (its resourceVersion is the next write's precondition).
    set: CvmInstanceSet,
    status: CvmInstanceSetStatus,
    cloud: Option<Arc<dyn Cloud>>,
    /// A failure a person must fix (configuration, quota), with its Tencent code.
    stall: Option<(String, String)>,
    /// A call may have been processed without an answer: replay later with backoff.
    retry: bool,
    fell_back: bool,
    /// The children as `members` read them (the template is carried to them).
    children_seen: Vec<Arc<Watched>>,
    /// Top-level template fields some children do not match (`offering`: one the set no
    /// longer offers).
    behind: Vec<String>,
    /// A child could not be patched: look again soon.
    follow_again: bool,
}

pub async fn reconcile(set: Arc<CvmInstanceSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = set
        .namespace()
        .ok_or(Error::MissingObjectKey("namespace"))?;
    let mut run = Run {
        ctx: &ctx,
        api: Api::namespaced(ctx.kube.clone(), &namespace),
        children_api: Api::namespaced(ctx.kube.clone(), &namespace),
        status: set.status.clone().unwrap_or_default(),
        set: set.as_ref().clone(),
        cloud: None,
        stall: None,
        retry: false,
        fell_back: false,
        children_seen: Vec::new(),
        behind: Vec::new(),
        follow_again: false,
    };
    if set.meta().deletion_timestamp.is_some() {
        return run.on_delete().await;
    }
    if !finalizer::carries(&run.set, FINALIZER) {
        run.set = finalizer::add(&run.api, &run.set, FINALIZER).await?;
    }
    run.reconcile().await
}

impl Run<'_> {
    async fn reconcile(&mut self) -> Result<Action, Error> {
        let mut members = self.members().await?;
        self.finish_removal(&mut members).await?;
        self.replace_lost(&mut members).await?;
        self.settle_launches(&members).await?;
        // First, so that what the scaling sees as out of date is what no running machine
        // can take (a Surge rollout replaces those), not every child a moment before its
        // template patch.
        self.follow_template(&mut members).await;
        if self.stall.is_none() && !self.retry {
            let c = census(&members, &self.status.launches);
            // Stock and prices matter only to a launch or a revert: a steady set makes no
            // cloud call at all (and reads no Secret).
            let markets = if c.fallback > 0 || need(&self.set.spec, &c, false).total() > 0 {
                self.markets().await
            } else {
                Markets::new()
            };
            let reverting = self.reverting(&members, &markets);
            let wanted = need(&self.set.spec, &c, reverting);
            if wanted.total() > 0 {
                let first_new = self.status.next_launch_seq;
                self.scale_up(wanted, reverting, &markets, &members).await?;
                // Every launch first, then the children: the last batch boots as early as
                // the rate limit allows, not after the earlier batches' children are written.
                for record in self.status.launches.clone() {
                    if record.seq >= first_new && record.phase == LaunchPhase::Issued {
                        self.create_children(&record, &members).await?;
                    }
                }
            }
            let c = census(&members, &self.status.launches);
            let n = surplus(&self.set.spec, &c, reverting);
            if n > 0 {
                if self.set.spec.scale_down.order == ScaleDownOrder::Cost {
                    let markets = self.markets().await;
                    for m in &mut members {
                        let key = (m.zone.clone(), m.instance_type.clone(), m.billing);
                        m.hourly_price = markets.get(&key).and_then(|market| market.hourly_price);
                    }
                }
                let doomed = victims(&self.set.spec, &members, n, reverting);
                self.scale_down(&mut members, doomed, reverting && c.fallback > 0)
                    .await?;
            }
        }
        self.report(&members).await
    }

    /// Carries the template to every existing child that lacks some of it (patches only
    /// where something differs, at most `CHILD_WRITE_CONCURRENCY` at once), and records
    /// which children match it. A failed patch (a conflict with a newer child, most often)
    /// is retried by the next reconcile, which the child's own change triggers.
    async fn follow_template(&mut self, members: &mut [Member]) {
        let hash = template_hash(&self.set);
        let uid = self.set.uid().unwrap_or_default();
        let mut behind: Vec<String> = Vec::new();
        let mut patches = Vec::new();
        let seen = std::mem::take(&mut self.children_seen);
        for existing in seen
            .iter()
            .filter_map(|w| w.0.as_ref().ok())
            .filter(|c| c.meta().deletion_timestamp.is_none())
            .filter(|c| controlling_set(c) == Some(uid.as_str()))
        {
            let name = existing.name_any();
            let Some(m) = members.iter_mut().find(|m| m.name == name && !m.deleting) else {
                continue;
            };
            let f = follow(&self.set, existing, &hash);
            m.up_to_date = f.up_to_date;
            for field in f.behind {
                if !behind.contains(&field) {
                    behind.push(field);
                }
            }
            if let Some(patch) = f.patch {
                patches.push((name, patch));
            }
        }
        behind.sort();
        self.behind = behind;
        if patches.is_empty() {
            return;
        }
        let api = &self.children_api;
        let writes = &self.ctx.child_writes;
        let results: Vec<Result<(), kube::Error>> = futures::stream::iter(patches)
            .map(|(name, patch)| async move {
                let _turn = writes.permit().await;
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            })
            .buffer_unordered(CHILD_WRITE_CONCURRENCY)
            .collect()
            .await;
        let failed: Vec<&kube::Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        info!(
            patched = results.len() - failed.len(),
            failed = failed.len(),
            "carried the template to children"
        );
        if let Some(error) = failed.first() {
            warn!(error = %error, count = failed.len(), "children not brought up to date yet; retrying");
            self.follow_again = true;
        }
    }

    /// Deletes the children whose instance is gone for good; the deficit this leaves is
    /// launched again like any other.
    async fn replace_lost(&mut self, members: &mut [Member]) -> Result<(), Error> {
        let lost: Vec<String> = members
            .iter()
            .filter(|m| m.lost && !m.deleting)
            .map(|m| m.name.clone())
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        self.remove(&lost, false).await?;
        self.event(
            EventType::Warning,
            "InstanceLost",
            &format!(
                "replacing {} instances that are gone or failed to launch: {}",
                lost.len(),
                lost.join(", ")
            ),
        )
        .await;
        mark_deleting(members, &lost);
        Ok(())
    }

    /// The children, from the shared cache when there is one (shared, not copied: ten sets
    /// of 1,000 reconciling at once would otherwise hold a second copy of the cache).
    async fn members(&mut self) -> Result<Vec<Member>, Error> {
        let uid = self.set.uid().unwrap_or_default();
        let ours = |c: &CvmInstance| {
            c.namespace() == self.set.namespace() && controlling_set(c) == Some(uid.as_str())
        };
        let children: Vec<Arc<Watched>> = match &self.ctx.instances {
            Some(cache) => cache
                .state()
                .into_iter()
                .filter(|w| w.0.as_ref().is_ok_and(ours))
                .collect(),
            None => self
                .children_api
                .list(&ListParams::default().labels(&selector(&self.set)))
                .await?
                .items
                .into_iter()
                .filter(|c| ours(c))
                .map(|c| Arc::new(DeserializeGuard(Ok(c))))
                .collect(),
        };
        let hash = template_hash(&self.set);
        let members = children
            .iter()
            .filter_map(|w| w.0.as_ref().ok())
            .map(|c| member(c, &hash))
            .collect();
        self.children_seen = children;
        Ok(members)
    }

    async fn cloud(&mut self) -> Result<Option<Arc<dyn Cloud>>, Error> {
        if let Some(cloud) = &self.cloud {
            return Ok(Some(cloud.clone()));
        }
        let spec = &self.set.spec.template.spec;
        let namespace = self.set.namespace().unwrap_or_default();
        let resolved = resolve_credentials(
            &self.ctx.kube,
            spec.credentials_secret_ref.as_ref(),
            &namespace,
            self.ctx.settings.default_credentials.as_ref(),
        )
        .await?;
        match resolved {
            Ok(resolved) => {
                let cloud = self.ctx.clouds.get(&resolved.credentials, &spec.region);
                self.cloud = Some(cloud.clone());
                Ok(Some(cloud))
            }
            Err(problem) => {
                self.stall = Some((
                    problem
                        .reason(crate::controller::credentials::Purpose::Credentials)
                        .into(),
                    problem.to_string(),
                ));
                Ok(None)
            }
        }
    }

    /// Writes the status under the resourceVersion last read: a conflict ends the reconcile
    /// (the error policy retries from fresh data).
    async fn write(&mut self) -> Result<(), Error> {
        let mut body = self.set.clone();
        body.status = Some(self.status.clone());
        body.metadata.managed_fields = None;
        let params = PostParams {
            field_manager: Some(MANAGER.into()),
            ..PostParams::default()
        };
        self.set = self
            .api
            .replace_status(&self.set.name_any(), &params, &body)
            .await?;
        Ok(())
    }

    async fn event(&self, type_: EventType, reason: &str, note: &str) {
        let regarding = self.set.object_ref(&());
        if let Err(e) = self
            .ctx
            .events
            .publish(&regarding, type_, reason, note, action_of(reason))
            .await
        {
            warn!(error = %e, reason, "could not publish Event");
        }
    }

    /// Brings every recorded launch to children: Issued ones get their missing children
    /// (and are pruned once the cache shows them all); Pending ones are replayed with their
    /// token, or found by tag when the template changed since.
    async fn settle_launches(&mut self, members: &[Member]) -> Result<(), Error> {
        let before = self.status.launches.clone();
        let mut kept = Vec::new();
        for record in before.clone() {
            let record = match record.phase {
                LaunchPhase::Pending => match self.resolve_pending(&record).await? {
                    Some(record) => record,
                    None => continue,
                },
                LaunchPhase::Issued => record,
            };
            if record.phase == LaunchPhase::Issued {
                let adopted = |id: &String| {
                    members
                        .iter()
                        .any(|m| m.instance_id.as_deref() == Some(id.as_str()))
                };
                if record.instance_ids.iter().all(adopted) {
                    continue;
                }
                self.create_children(&record, members).await?;
            }
            kept.push(record);
        }
        if kept != before {
            self.status.launches = kept;
            self.write().await?;
        }
        Ok(())
    }

    /// A Pending record after a crash, or after a call with no answer: `None` once it is
    /// known that nothing was launched under it.
    async fn resolve_pending(
        &mut self,
        record: &LaunchRecord,
    ) -> Result<Option<LaunchRecord>, Error> {
        let Some(cloud) = self.cloud().await? else {
            return Ok(Some(record.clone()));
        };
        let mut record = record.clone();
        if record.template_hash == template_hash(&self.set) {
            // The identical request under the identical token: the first call's instances.
            match cloud.run_instances(&request(&self.set, &record)).await {
                Ok(ids) => {
                    record.phase = LaunchPhase::Issued;
                    record.instance_ids = ids;
                    return Ok(Some(record));
                }
                Err(error) => {
                    return Ok(self.failed(&record, &error).await.then_some(record));
                }
            }
        }
        // The template changed: the same token must not carry a different request. Find
        // what the first call launched, if anything, by the launch tag.
        match cloud
            .find_instances_by_tag(TAG_LAUNCH, &record.client_token)
            .await
        {
            Ok(found) if !found.is_empty() => {
                record.phase = LaunchPhase::Issued;
                record.instance_ids = found.into_iter().map(|i| i.instance_id).collect();
                Ok(Some(record))
            }
            Ok(_) => {
                let age = self.ctx.clock.now().duration_since(record.created.0);
                let grace = SignedDuration::try_from(self.ctx.settings.tag_grace)
                    .unwrap_or(SignedDuration::MAX);
                if age < grace {
                    // Tags show up late: look again before concluding nothing was launched.
                    self.retry = true;
                    return Ok(Some(record));
                }
                self.event(
                    EventType::Normal,
                    "LaunchAbandoned",
                    &format!(
                        "launch {} ({} instances) found nothing tagged {}; the template changed, so it is not replayed",
                        record.seq, record.count, record.client_token
                    ),
                )
                .await;
                Ok(None)
            }
            Err(error) => {
                warn!(error = %error, "finding a launch by tag");
                self.retry = true;
                Ok(Some(record))
            }
        }
    }

    /// Creates the children of `record` (an Issued launch) that `members` (the cache) does not show and that
    /// were not created moments ago (the cache lags behind creations).
    async fn create_children(
        &self,
        record: &LaunchRecord,
        members: &[Member],
    ) -> Result<(), Error> {
        let namespace = self.set.namespace().unwrap_or_default();
        let writes = &self.ctx.child_writes;
        let now = self.ctx.clock.now();
        let children: Vec<CvmInstance> = record
            .instance_ids
            .iter()
            .filter(|id| {
                !members
                    .iter()
                    .any(|m| m.instance_id.as_deref() == Some(id.as_str()))
            })
            .map(|id| child(&self.set, &record.offering, id, record.fallback))
            .filter(|c| !writes.recently_created(&format!("{namespace}/{}", c.name_any()), now))
            .collect();
        let api = &self.children_api;
        let namespace = &namespace;
        futures::stream::iter(children)
            .map(|c| async move {
                let _turn = writes.permit().await;
                let key = format!("{namespace}/{}", c.name_any());
                match api.create(&PostParams::default(), &c).await {
                    Ok(_) => {
                        writes.note_created(key, self.ctx.clock.now());
                        Ok(())
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(CHILD_WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

/// The Event's `action` (what the set did) for each `reason` it reports.
fn action_of(reason: &str) -> &'static str {
    match reason {
        "LaunchIssued" | "LaunchAbandoned" | "OfferingUnavailable" | "SpotFallback" => "Launch",
        "ScaledDown" | "RevertedToSpot" => "ScaleDown",
        "InstanceLost" => "Replace",
        _ => "Reconcile",
    }
}

#[cfg(test)]
mod tests {
    use super::action_of;

    #[test]
    fn events_name_what_the_set_did() {
        for (reason, action) in [
            ("LaunchIssued", "Launch"),
            ("SpotFallback", "Launch"),
            ("ScaledDown", "ScaleDown"),
            ("RevertedToSpot", "ScaleDown"),
            ("InstanceLost", "Replace"),
            ("Ready", "Reconcile"),
        ] {
            assert_eq!(action_of(reason), action, "{reason}");
        }
    }
}
