//! The executor of a set: settles the launches in flight, launches what the planner says
//! is missing (falling back across offerings within the same pass), removes the surplus,
//! and reports.
//!
//! Every change to `status.launches` is written with the resourceVersion the reconcile
//! read (a PUT of the status): a stale cache or a second leader gets a conflict and starts
//! over from fresh data instead of launching from a stale count.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};

use super::children::{any_machine, child, controlling_set, instances_of, member, selector};
use super::follow::follow;
use super::launch::{new_record, request, template_hash};
use super::plan::{
    self, LaunchFailure, Market, Markets, Member, candidates, census, classify, need, surplus,
    victims,
};
use crate::api::{
    BillingMode, CvmInstance, CvmInstanceSet, CvmInstanceSetStatus, LaunchOffering, LaunchPhase,
    LaunchRecord, OfferingStatus, RemovalRecord, RolloutStrategy, ScaleDownOrder, TAG_LAUNCH,
    ZoneBalance,
};
use crate::cloud::Cloud;
use crate::controller::conditions::{Health, reason_from_code, transition_time};
use crate::controller::credentials::resolve_credentials;
use crate::controller::events::EventType;
use crate::controller::price::format_price;
use crate::controller::{Context, Error, Watched, finalizer};
use kube::core::DeserializeGuard;
use tencent_cloud::error::CloudError;
use tencent_cloud::types::ToTerminate;

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

    /// Removes the children named `doomed`: records them in `status.removal` (the intent,
    /// before any effect), then terminates their instances together (100 IDs a call per
    /// charge type) while it deletes them; their finalizers find the instances TERMINATING
    /// and let go. A child deleted before the calls return waits for them
    /// (`ChildWrites::set_terminating`) instead of making a call of its own, so the calls
    /// stay batched however the deletions interleave; once they return (accepted or not),
    /// its finalizer terminates whatever still runs. Deleting meanwhile rather than after
    /// starts the thousand deletions of a large scale-down a second sooner.
    async fn scale_down(
        &mut self,
        members: &mut [Member],
        doomed: Vec<String>,
        reverted: bool,
    ) -> Result<(), Error> {
        // A removal whose deletions the cache does not show yet stays recorded with this one.
        let mut children = self
            .status
            .removal
            .take()
            .map(|r| r.children)
            .unwrap_or_default();
        children.extend(doomed.iter().cloned());
        self.status.removal = Some(RemovalRecord {
            children,
            deleted: false,
        });
        self.write().await?;
        self.note_removing(&doomed);
        let victims: Vec<Member> = members
            .iter()
            .filter(|m| doomed.contains(&m.name))
            .cloned()
            .collect();
        // As `terminate`: credentials are resolved only when there is a machine to end.
        let cloud = if any_machine(&victims) {
            self.cloud().await?
        } else {
            None
        };
        let keys = self.child_keys(&doomed);
        self.ctx
            .child_writes
            .note_terminating(keys.iter().cloned(), self.ctx.clock.now());
        let terminating = async {
            if let Some(cloud) = &cloud {
                terminate_members(cloud.as_ref(), &victims, false).await;
            }
            self.ctx.child_writes.done_terminating(&keys);
        };
        let (removed, ()) = futures::join!(self.remove(&doomed, reverted), terminating);
        removed?;
        // The children tell nothing of their own removal: one Event for all of them.
        let ids: Vec<&str> = victims
            .iter()
            .filter_map(|m| m.instance_id.as_deref())
            .collect();
        self.event(
            EventType::Normal,
            "ScaledDown",
            &format!(
                "terminating {} instances and deleting their children: {}",
                ids.len(),
                ids.join(", ")
            ),
        )
        .await;
        mark_deleting(members, &doomed);
        // Written with the report.
        if let Some(removal) = &mut self.status.removal {
            removal.deleted = true;
        }
        Ok(())
    }

    /// Carries on the recorded removal: its children count as deleting whatever the cache
    /// says; if an earlier reconcile died before deleting them all (after the record, or
    /// after the TerminateInstances call), what still runs is terminated and every one
    /// deleted; once the cache shows them all deleted, the record goes.
    async fn finish_removal(&mut self, members: &mut [Member]) -> Result<(), Error> {
        let Some(removal) = self.status.removal.clone() else {
            return Ok(());
        };
        let named = |m: &Member| removal.children.contains(&m.name);
        self.note_removing(&removal.children);
        if !removal.deleted {
            let pending: Vec<Member> = members
                .iter()
                .filter(|m| named(m) && !m.deleting)
                .cloned()
                .collect();
            self.terminate(&pending, true).await?;
            let names: Vec<String> = pending.iter().map(|m| m.name.clone()).collect();
            self.remove(&names, false).await?;
            if let Some(removal) = &mut self.status.removal {
                removal.deleted = true;
            }
        } else if !members.iter().any(|m| named(m) && !m.deleting) {
            self.status.removal = None;
        }
        mark_deleting(members, &removal.children);
        Ok(())
    }

    /// Tells the children named that they are being removed (recorded in the status): one
    /// whose machine is gone before its deletion arrives then writes nothing.
    fn note_removing(&self, names: &[String]) {
        self.ctx
            .child_writes
            .note_removing(self.child_keys(names), self.ctx.clock.now());
    }

    /// `namespace/name` of each child named.
    fn child_keys(&self, names: &[String]) -> Vec<String> {
        let namespace = self.set.namespace().unwrap_or_default();
        names
            .iter()
            .map(|name| format!("{namespace}/{name}"))
            .collect()
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
            .publish(&regarding, type_, reason, note, "Launch")
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

    /// Stock and prices, when the offerings API answers; without them, the spec's order.
    async fn markets(&mut self) -> Markets {
        let mut markets = Markets::new();
        let Ok(Some(cloud)) = self.cloud().await else {
            return markets;
        };
        for (charge_type, billing) in [
            ("POSTPAID_BY_HOUR", BillingMode::PayAsYouGo),
            ("SPOTPAID", BillingMode::Spot),
        ] {
            if let Ok(offerings) = self.ctx.offerings.get(&cloud, charge_type).await {
                for o in offerings.iter() {
                    markets.insert(
                        (o.zone.clone(), o.instance_type.clone(), billing),
                        Market {
                            available: o.available,
                            hourly_price: o.hourly_price,
                            stock_rank: plan::stock_rank(&o.stock),
                        },
                    );
                }
            }
        }
        markets
    }

    /// Fallback machines run, spot has capacity again, and they have run on fallback for
    /// `revertToSpot.after`.
    fn reverting(&self, members: &[Member], markets: &Markets) -> bool {
        let policy = &self.set.spec.capacity.revert_to_spot;
        let spec = &self.set.spec;
        if !policy.enabled
            || spec.template.spec.billing.mode != BillingMode::Spot
            || !members.iter().any(|m| m.fallback && !m.deleting)
        {
            return false;
        }
        let now = self.ctx.clock.now();
        let spot = candidates(
            spec,
            BillingMode::Spot,
            &self.status.offerings,
            markets,
            now,
        );
        let since = self
            .status
            .condition(CAPACITY_DEGRADED)
            .filter(|c| c.status == "True")
            .map_or(now, |c| c.last_transition_time.0);
        !spot.is_empty() && now.duration_since(since) >= parse_after(&policy.after)
    }

    async fn scale_up(
        &mut self,
        wanted: plan::Need,
        reverting: bool,
        markets: &Markets,
        members: &[Member],
    ) -> Result<(), Error> {
        if self.cloud().await?.is_none() {
            return Ok(());
        }
        let now = self.ctx.clock.now();
        let spec = self.set.spec.clone();
        let on_demand = candidates(
            &spec,
            BillingMode::PayAsYouGo,
            &self.status.offerings,
            markets,
            now,
        );
        let left = self
            .launch_across(&on_demand, wanted.on_demand, false, members)
            .await?;
        if left > 0 || self.stall.is_some() || self.retry {
            return Ok(());
        }
        let spot = candidates(
            &spec,
            BillingMode::Spot,
            &self.status.offerings,
            markets,
            now,
        );
        let left = self
            .launch_across(&spot, wanted.spot, false, members)
            .await?;
        // No spot capacity anywhere: pay-as-you-go in its place, if allowed (and not while
        // replacing fallback machines, which would only swap one for another).
        if left > 0
            && spec.capacity.fallback_to_on_demand
            && !reverting
            && self.stall.is_none()
            && !self.retry
        {
            let now = self.ctx.clock.now();
            let on_demand = candidates(
                &spec,
                BillingMode::PayAsYouGo,
                &self.status.offerings,
                markets,
                now,
            );
            let before = left;
            let left = self.launch_across(&on_demand, left, true, members).await?;
            if left < before {
                self.fell_back = true;
                self.event(
                    EventType::Warning,
                    "SpotFallback",
                    &format!(
                        "no spot offering has capacity; launched {} pay-as-you-go instead",
                        before - left
                    ),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Launches `n` across `offerings`, by the set's `zoneBalance`; how many are still
    /// missing.
    async fn launch_across(
        &mut self,
        offerings: &[LaunchOffering],
        n: i32,
        fallback: bool,
        members: &[Member],
    ) -> Result<i32, Error> {
        let balanced = self
            .set
            .spec
            .offerings
            .as_ref()
            .is_some_and(|o| o.zone_balance == ZoneBalance::Balanced);
        if !balanced {
            return self.launch_in_order(offerings, n, fallback).await;
        }
        // Each round splits what is missing among the zones still open; a zone that launched
        // less than its share has no more capacity now and is left out of the next round, so
        // every round either completes or closes a zone.
        let mut left = n;
        let mut closed: HashSet<String> = HashSet::new();
        while left > 0 {
            let open: Vec<LaunchOffering> = offerings
                .iter()
                .filter(|o| !closed.contains(&o.zone))
                .cloned()
                .collect();
            let counts = plan::zone_counts(members, &self.status.launches);
            let shares = plan::zone_shares(&open, &counts, left);
            if shares.is_empty() {
                break;
            }
            for (zone, share) in shares {
                let in_zone: Vec<LaunchOffering> =
                    open.iter().filter(|o| o.zone == zone).cloned().collect();
                let missing = self.launch_in_order(&in_zone, share, fallback).await?;
                left -= share - missing;
                if missing > 0 {
                    closed.insert(zone);
                }
                if self.stall.is_some() || self.retry {
                    return Ok(left);
                }
            }
        }
        Ok(left)
    }

    /// Launches `n` across `offerings` in order, moving on when one has no capacity; how
    /// many are still missing.
    async fn launch_in_order(
        &mut self,
        offerings: &[LaunchOffering],
        mut n: i32,
        fallback: bool,
    ) -> Result<i32, Error> {
        let max = self.set.spec.launch.max_per_call.clamp(1, 100);
        for offering in offerings {
            while n > 0 {
                if plan::unavailable(offering, &self.status.offerings, self.ctx.clock.now()) {
                    break;
                }
                let count = n.min(max);
                match self.launch(offering, count, fallback).await? {
                    Some(launched) => {
                        n -= launched;
                        // Partial stock (MinCount): this offering has nothing more now.
                        if launched < count {
                            break;
                        }
                    }
                    None => break,
                }
                if self.stall.is_some() || self.retry {
                    return Ok(n);
                }
            }
            if n == 0 || self.stall.is_some() || self.retry {
                break;
            }
        }
        Ok(n)
    }

    /// One launch: the record written first, then RunInstances, then the IDs recorded (the
    /// caller creates the children once every launch of the pass is sent). `None` when the
    /// call failed.
    async fn launch(
        &mut self,
        offering: &LaunchOffering,
        count: i32,
        fallback: bool,
    ) -> Result<Option<i32>, Error> {
        let Some(cloud) = self.cloud().await? else {
            return Ok(None);
        };
        let seq = self.status.next_launch_seq;
        let record = new_record(
            &self.set,
            seq,
            offering.clone(),
            count,
            fallback,
            self.ctx.clock.now(),
        );
        self.status.next_launch_seq = seq + 1;
        self.status.launches.push(record.clone());
        self.write().await?;
        let result = cloud.run_instances(&request(&self.set, &record)).await;
        let ids = match result {
            Ok(ids) => ids,
            Err(error) => {
                if !self.failed(&record, &error).await {
                    self.status.launches.retain(|r| r.seq != seq);
                    self.write().await?;
                }
                return Ok(None);
            }
        };
        let launched = ids.len() as i32;
        info!(seq, count, launched, zone = %offering.zone, instance_type = %offering.instance_type, "launched");
        if let Some(r) = self.status.launches.iter_mut().find(|r| r.seq == seq) {
            r.phase = LaunchPhase::Issued;
            r.instance_ids = ids;
        }
        self.write().await?;
        self.event(
            EventType::Normal,
            "LaunchIssued",
            &format!(
                "launch {seq}: {launched} of {count} {:?} {} in {} (one RunInstances call)",
                offering.billing, offering.instance_type, offering.zone
            ),
        )
        .await;
        Ok(Some(launched))
    }

    /// Acts on a failed RunInstances of `record`; whether the record stays Pending (the
    /// call may have launched: replay later).
    async fn failed(&mut self, record: &LaunchRecord, error: &CloudError) -> bool {
        let code = error.code().to_string();
        let offering = &record.offering;
        match classify(error) {
            LaunchFailure::OfferingSoldOut => {
                self.mark(
                    &offering.zone,
                    &offering.instance_type,
                    offering.billing,
                    &code,
                );
                self.event(
                    EventType::Warning,
                    "OfferingUnavailable",
                    &format!(
                        "{:?} {} in {}: {code}: {}; trying the next offering",
                        offering.billing,
                        offering.instance_type,
                        offering.zone,
                        error.message()
                    ),
                )
                .await;
                false
            }
            LaunchFailure::NoSpot => {
                self.mark("*", "*", BillingMode::Spot, &code);
                self.event(
                    EventType::Warning,
                    "OfferingUnavailable",
                    &format!("spot: {code}: {}", error.message()),
                )
                .await;
                false
            }
            LaunchFailure::Retry => {
                warn!(error = %error, seq = record.seq, "RunInstances without an answer; replaying the same token later");
                self.retry = true;
                true
            }
            LaunchFailure::Stall => {
                self.stall = Some((
                    reason_from_code(&code),
                    format!("RunInstances: {code}: {}", error.message()),
                ));
                false
            }
        }
    }

    /// Skips (zone, type, billing) until now + `unavailableOfferingSeconds`.
    fn mark(&mut self, zone: &str, instance_type: &str, billing: BillingMode, code: &str) {
        let ttl =
            SignedDuration::from_secs(i64::from(self.set.spec.launch.unavailable_offering_seconds));
        let until = self
            .ctx
            .clock
            .now()
            .checked_add(ttl)
            .unwrap_or(Timestamp::MAX);
        let entry =
            match self.status.offerings.iter_mut().find(|o| {
                o.zone == zone && o.instance_type == instance_type && o.billing == billing
            }) {
                Some(entry) => entry,
                None => {
                    self.status.offerings.push(OfferingStatus {
                        zone: zone.into(),
                        instance_type: instance_type.into(),
                        billing,
                        replicas: 0,
                        ready: 0,
                        hourly_price: None,
                        unavailable_until: None,
                        last_error: None,
                    });
                    self.status.offerings.last_mut().expect("just pushed")
                }
            };
        entry.unavailable_until = Some(Time(until));
        entry.last_error = Some(code.into());
    }

    /// Deletes `names` (their instances are terminated already, or their finalizers do it:
    /// a lost child's instance is gone, a hand-deleted one's finalizer terminates it).
    async fn remove(&self, names: &[String], reverted: bool) -> Result<(), Error> {
        let api = &self.children_api;
        futures::stream::iter(names.to_vec())
            .map(|name| async move {
                let _turn = self.ctx.child_writes.permit().await;
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(CHILD_WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        info!(count = names.len(), "removing children");
        if reverted {
            self.event(
                EventType::Normal,
                "RevertedToSpot",
                &format!(
                    "spot replacements are Ready; removing {} fallback instances",
                    names.len()
                ),
            )
            .await;
        }
        Ok(())
    }

    /// Terminates the instances of `doomed` (recorded in `status.removal`, or of a deleted
    /// set) in one go: the client sends them 100 to a TerminateInstances call per charge
    /// type, where each child's finalizer alone would trickle them through 50 ms batch
    /// windows. With `describe_first` (a removal resumed after a crash, a deleted set looked
    /// at again) some may be TERMINATING already, and a call naming one of those is refused
    /// whole: they are described first (one call per 100) and only the others terminated.
    /// Best effort: a failure leaves the work to the children's finalizers once they are
    /// deleted.
    async fn terminate(&mut self, doomed: &[Member], describe_first: bool) -> Result<(), Error> {
        if !any_machine(doomed) {
            return Ok(());
        }
        if let Some(cloud) = self.cloud().await? {
            terminate_members(cloud.as_ref(), doomed, describe_first).await;
        }
        Ok(())
    }

    async fn report(&mut self, members: &[Member]) -> Result<Action, Error> {
        let c = census(members, &self.status.launches);
        let now = self.ctx.clock.now();
        let spec = &self.set.spec;
        let generation = self.set.meta().generation;
        let previous = self.status.conditions.clone().unwrap_or_default();
        self.status.observed_generation = generation;
        self.status.selector = Some(selector(&self.set));
        self.status.replicas = c.live;
        self.status.ready_replicas = c.ready;
        let live = members.iter().filter(|m| !m.deleting);
        self.status.updated_replicas = live.filter(|m| m.up_to_date).count() as i32;
        self.status.template_hash = Some(template_hash(&self.set));
        self.status.spot_replicas = c.spot;
        self.status.on_demand_replicas = c.on_demand + c.fallback;
        self.status.fallback_replicas = c.fallback;
        self.status.offerings = offering_rows(&self.status.offerings, members, now);
        self.status.hourly_price = total_price(members.iter().filter(|m| !m.deleting));
        let rolling = spec.rollout.strategy == RolloutStrategy::Surge && c.outdated() > 0;
        let complete = c.live == spec.replicas
            && c.ready == spec.replicas
            && self.status.launches.is_empty()
            && !rolling;
        let marked = self
            .status
            .offerings
            .iter()
            .any(|o| o.unavailable_until.is_some());
        let health = match &self.stall {
            Some((reason, message)) => Health::stalled(reason, message.clone()),
            None if complete => Health::ready(
                "Ready",
                format!("{} of {} instances Ready", c.ready, spec.replicas),
            ),
            None if marked && c.live < spec.replicas && !self.retry => Health::progressing(
                "WaitingForCapacity",
                format!(
                    "{} of {} instances; no offering has capacity now",
                    c.live, spec.replicas
                ),
            ),
            None if rolling => Health::progressing(
                "RollingOut",
                format!(
                    "{} of {} instances run the current template, {} Ready; replacing up to {} at a time, each out-of-date instance removed once its replacement is Ready",
                    self.status.updated_replicas, spec.replicas, c.ready, spec.rollout.max_surge
                ),
            ),
            None => Health::progressing(
                "Scaling",
                format!(
                    "{} of {} instances, {} Ready, {} launching",
                    c.live, spec.replicas, c.ready, c.in_flight
                ),
            ),
        };
        let mut conditions = health.conditions(&previous, generation, now);
        let degraded = c.fallback > 0;
        let status = if degraded { "True" } else { "False" };
        conditions.push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: CAPACITY_DEGRADED.into(),
            status: status.into(),
            reason: if degraded {
                "SpotFallback"
            } else {
                "NotDegraded"
            }
            .into(),
            message: if degraded {
                format!("{} pay-as-you-go instances stand in for spot", c.fallback)
            } else {
                String::new()
            },
            observed_generation: generation,
            last_transition_time: transition_time(&previous, CAPACITY_DEGRADED, status, now),
        });
        let outdated = members
            .iter()
            .filter(|m| !m.deleting && !m.up_to_date)
            .count();
        let status = if outdated > 0 { "True" } else { "False" };
        conditions.push(k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: OUT_OF_DATE.into(),
            status: status.into(),
            reason: if outdated > 0 {
                "TemplateNotApplicable"
            } else {
                "UpToDate"
            }
            .into(),
            message: if outdated > 0 {
                format!(
                    "{outdated} instances run an older template: {} cannot change on a running machine; {}",
                    if self.behind.is_empty() {
                        "the template".to_string()
                    } else {
                        self.behind.join(", ")
                    },
                    if rolling {
                        "the Surge rollout replaces them"
                    } else {
                        "they go first on scale-down, a child deleted by hand is replaced from the current template, \
                         and spec.rollout.strategy: Surge replaces them all"
                    }
                )
            } else {
                String::new()
            },
            observed_generation: generation,
            last_transition_time: transition_time(&previous, OUT_OF_DATE, status, now),
        });
        let stalled_now = matches!(health, Health::Stalled { .. });
        let was_stalled = previous.iter().any(|cond| {
            cond.type_ == "Stalled" && cond.status == "True" && cond.reason == health.reason()
        });
        self.status.conditions = Some(conditions);
        if Some(&self.status) != self.set.status.as_ref() {
            self.write().await?;
        }
        if stalled_now && !was_stalled {
            self.event(EventType::Warning, health.reason(), health.message())
                .await;
        }
        // The children's Ready is told here, once for all of them.
        let was_ready = previous
            .iter()
            .any(|cond| cond.type_ == "Ready" && cond.status == "True");
        if complete && self.stall.is_none() && !was_ready {
            self.event(EventType::Normal, "Ready", health.message())
                .await;
        }
        let s = &self.ctx.settings;
        Ok(if stalled_now {
            Action::requeue(s.slow_retry)
        } else if self.retry || self.follow_again {
            Action::requeue(s.poll_min)
        } else if let Some(until) = earliest_mark(&self.status.offerings, now) {
            Action::requeue(until.max(s.poll_min))
        } else if complete && c.fallback == 0 {
            Action::requeue(s.resync)
        } else {
            Action::requeue(s.poll_max)
        })
    }

    /// A deleted set: instances of launches without children are terminated (children go
    /// by garbage collection, each terminating its own), then the finalizer goes.
    async fn on_delete(&mut self) -> Result<Action, Error> {
        if !finalizer::carries(&self.set, FINALIZER) {
            return Ok(Action::await_change());
        }
        let members = self.members().await?;
        // Unless the set's children are to stay (`--cascade=orphan`), terminate their
        // instances together and delete them now, rather than wait for the garbage
        // collector to delete them one by one after the set is gone. The set's deletion is
        // the recorded intent; a second look (after a crash, or launches still settling)
        // terminates only what still runs.
        if !self.set.finalizers().iter().any(|f| f == ORPHAN) {
            let remaining: Vec<Member> = members.iter().filter(|m| !m.deleting).cloned().collect();
            if !remaining.is_empty() {
                self.terminate(&remaining, true).await?;
                let names: Vec<String> = remaining.iter().map(|m| m.name.clone()).collect();
                self.remove(&names, false).await?;
            }
        }
        let mut open = Vec::new();
        for record in self.status.launches.clone() {
            if !self.terminate_launch(&record, &members).await? {
                open.push(record);
            }
        }
        if !open.is_empty() {
            if open != self.status.launches {
                self.status.launches = open;
                self.write().await?;
            }
            return Ok(Action::requeue(self.ctx.settings.poll_min));
        }
        finalizer::remove(&self.api, &self.set, FINALIZER).await?;
        Ok(Action::await_change())
    }

    /// Terminates what `record` launched that no child holds; whether it is settled.
    async fn terminate_launch(
        &mut self,
        record: &LaunchRecord,
        members: &[Member],
    ) -> Result<bool, Error> {
        let Some(cloud) = self.cloud().await? else {
            return Ok(false);
        };
        let orphans = match record.phase {
            LaunchPhase::Issued => {
                let ids: Vec<String> = record
                    .instance_ids
                    .iter()
                    .filter(|id| {
                        !members
                            .iter()
                            .any(|m| m.instance_id.as_deref() == Some(id.as_str()))
                    })
                    .cloned()
                    .collect();
                if ids.is_empty() {
                    return Ok(true);
                }
                cloud.describe_instances(&ids).await
            }
            LaunchPhase::Pending => {
                cloud
                    .find_instances_by_tag(TAG_LAUNCH, &record.client_token)
                    .await
            }
        };
        let orphans = match orphans {
            Ok(found) => found,
            Err(error) => {
                warn!(error = %error, "finding the instances of a launch");
                return Ok(false);
            }
        };
        if orphans.is_empty() {
            // A Pending launch may show up by tag late.
            let age = self.ctx.clock.now().duration_since(record.created.0);
            let grace = SignedDuration::try_from(self.ctx.settings.tag_grace)
                .unwrap_or(SignedDuration::MAX);
            return Ok(record.phase == LaunchPhase::Issued || age >= grace);
        }
        let live: Vec<_> = orphans
            .into_iter()
            .filter(|i| i.instance_state != "TERMINATING")
            .collect();
        if live.is_empty() {
            return Ok(record.phase == LaunchPhase::Issued);
        }
        let live: Vec<ToTerminate> = live.iter().map(ToTerminate::from).collect();
        if let Err(error) = cloud.terminate_instances(&live).await {
            warn!(error = %error, "terminating the instances of a launch");
        }
        Ok(false)
    }
}

/// Terminates the instances of `doomed` in one go (see [`Run::terminate`]). Best effort: a
/// failure leaves the work to the children's finalizers once they are deleted.
async fn terminate_members(cloud: &dyn Cloud, doomed: &[Member], describe_first: bool) {
    let mut instances = instances_of(doomed);
    if instances.is_empty() {
        return;
    }
    if describe_first {
        let ids: Vec<String> = instances.iter().map(|i| i.instance_id.clone()).collect();
        let running: Vec<String> = match cloud.describe_instances(&ids).await {
            Ok(found) => found
                .into_iter()
                .filter(|i| i.instance_state != "TERMINATING")
                .map(|i| i.instance_id)
                .collect(),
            Err(error) => {
                warn!(error = %error, "describing removed children's instances; their finalizers will terminate them");
                return;
            }
        };
        instances.retain(|i| running.contains(&i.instance_id));
        if instances.is_empty() {
            return;
        }
    }
    match cloud.terminate_instances(&instances).await {
        Ok(()) => info!(
            count = instances.len(),
            "terminated the removed children's instances"
        ),
        Err(error) if error.is_already_terminated() => {}
        Err(error) => {
            warn!(error = %error, "terminating removed children's instances; their finalizers will");
        }
    }
}

/// Marks the members named in `names` as being deleted: this reconcile counts them no more.
fn mark_deleting(members: &mut [Member], names: &[String]) {
    for m in members.iter_mut().filter(|m| names.contains(&m.name)) {
        m.deleting = true;
    }
}

/// The hourly price of `members` together, formatted like an instance's; `None` when none
/// of them has a price (prices unknown), so an absent price never reads as free.
fn total_price<'a>(members: impl Iterator<Item = &'a Member>) -> Option<String> {
    let prices: Vec<f64> = members.filter_map(|m| m.hourly_price).collect();
    (!prices.is_empty()).then(|| format_price(prices.iter().sum()))
}

/// Per offering in use or marked: machines, Ready ones, and the mark while it lasts.
fn offering_rows(
    marks: &[OfferingStatus],
    members: &[Member],
    now: Timestamp,
) -> Vec<OfferingStatus> {
    let mut rows: Vec<OfferingStatus> = marks
        .iter()
        .filter(|m| m.unavailable_until.as_ref().is_some_and(|t| t.0 > now))
        .map(|m| OfferingStatus {
            replicas: 0,
            ready: 0,
            hourly_price: None,
            ..m.clone()
        })
        .collect();
    for m in members.iter().filter(|m| !m.deleting) {
        let row = match rows.iter_mut().find(|r| {
            r.zone == m.zone && r.instance_type == m.instance_type && r.billing == m.billing
        }) {
            Some(row) => row,
            None => {
                rows.push(OfferingStatus {
                    zone: m.zone.clone(),
                    instance_type: m.instance_type.clone(),
                    billing: m.billing,
                    replicas: 0,
                    ready: 0,
                    hourly_price: None,
                    unavailable_until: None,
                    last_error: None,
                });
                rows.last_mut().expect("just pushed")
            }
        };
        row.replicas += 1;
        row.ready += i32::from(m.ready);
    }
    for row in &mut rows {
        row.hourly_price = total_price(members.iter().filter(|m| {
            !m.deleting
                && m.zone == row.zone
                && m.instance_type == row.instance_type
                && m.billing == row.billing
        }));
    }
    rows.sort_by(|a, b| {
        (&a.zone, &a.instance_type, format!("{:?}", a.billing)).cmp(&(
            &b.zone,
            &b.instance_type,
            format!("{:?}", b.billing),
        ))
    });
    rows
}

fn earliest_mark(offerings: &[OfferingStatus], now: Timestamp) -> Option<Duration> {
    offerings
        .iter()
        .filter_map(|o| o.unavailable_until.as_ref())
        .filter(|t| t.0 > now)
        .map(|t| Duration::try_from(t.0.duration_since(now)).unwrap_or_default())
        .min()
}

/// `30s`, `5m`, `1h` (admission checked the form).
pub fn parse_after(text: &str) -> SignedDuration {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().unwrap_or(0);
    match unit {
        "h" => SignedDuration::from_hours(n),
        "m" => SignedDuration::from_mins(n),
        _ => SignedDuration::from_secs(n),
    }
}
