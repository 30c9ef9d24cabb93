//! Removal: the surplus children and their machines on scale-down, the record that carries a
//! removal across a crash, and the set's own deletion.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::jiff::SignedDuration;
use kube::ResourceExt;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use tracing::{info, warn};

use super::{CHILD_WRITE_CONCURRENCY, FINALIZER, ORPHAN, Run};
use crate::api::{LaunchPhase, LaunchRecord, RemovalRecord, TAG_LAUNCH};
use crate::cloud::Cloud;
use crate::controller::events::EventType;
use crate::controller::{Error, finalizer};
use crate::set::children::{any_machine, instances_of};
use crate::set::plan::Member;
use tencent_cloud::types::ToTerminate;

impl Run<'_> {
    /// Removes the children named `doomed`: records them in `status.removal` (the intent,
    /// before any effect), then terminates their instances together (100 IDs a call per
    /// charge type) while it deletes them; their finalizers find the instances TERMINATING
    /// and let go. A child deleted before the calls return waits for them
    /// (`ChildWrites::set_terminating`) instead of making a call of its own, so the calls
    /// stay batched however the deletions interleave; once they return (accepted or not),
    /// its finalizer terminates whatever still runs. Deleting meanwhile rather than after
    /// starts the thousand deletions of a large scale-down a second sooner.
    pub(super) async fn scale_down(
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
    pub(super) async fn finish_removal(&mut self, members: &mut [Member]) -> Result<(), Error> {
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
    pub(super) fn note_removing(&self, names: &[String]) {
        self.ctx
            .child_writes
            .note_removing(self.child_keys(names), self.ctx.clock.now());
    }

    /// `namespace/name` of each child named.
    pub(super) fn child_keys(&self, names: &[String]) -> Vec<String> {
        let namespace = self.set.namespace().unwrap_or_default();
        names
            .iter()
            .map(|name| format!("{namespace}/{name}"))
            .collect()
    }

    /// Deletes `names` (their instances are terminated already, or their finalizers do it:
    /// a lost child's instance is gone, a hand-deleted one's finalizer terminates it).
    pub(super) async fn remove(&self, names: &[String], reverted: bool) -> Result<(), Error> {
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
    pub(super) async fn terminate(
        &mut self,
        doomed: &[Member],
        describe_first: bool,
    ) -> Result<(), Error> {
        if !any_machine(doomed) {
            return Ok(());
        }
        if let Some(cloud) = self.cloud().await? {
            terminate_members(cloud.as_ref(), doomed, describe_first).await;
        }
        Ok(())
    }

    /// A deleted set: instances of launches without children are terminated (children go
    /// by garbage collection, each terminating its own), then the finalizer goes.
    pub(super) async fn on_delete(&mut self) -> Result<Action, Error> {
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
    pub(super) async fn terminate_launch(
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
pub(super) async fn terminate_members(cloud: &dyn Cloud, doomed: &[Member], describe_first: bool) {
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
pub(super) fn mark_deleting(members: &mut [Member], names: &[String]) {
    for m in members.iter_mut().filter(|m| names.contains(&m.name)) {
        m.deleting = true;
    }
}
