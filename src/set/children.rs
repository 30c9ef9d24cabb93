//! A set's children: one `CvmInstance` per launched instance, which adopts it (never
//! launches), and how the planner sees one.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::launch::{spec_on, template_hash};
use super::plan::Member;
use crate::api::{
    CvmInstance, CvmInstanceSet, DELETE_PRIORITY, DeletionPolicy, FALLBACK_LABEL, LaunchOffering,
    SET_LABEL, TEMPLATE_HASH,
};
use crate::controller::price::parse_price;
use tencent_cloud::types::ToTerminate;

/// `<set>-<the ID without "ins-">`: derived from the instance alone, so creating a child
/// twice (a replay, a crash between creations) finds the first one, whatever order the
/// IDs came back in.
pub fn child_name(set: &str, instance_id: &str) -> String {
    format!(
        "{set}-{}",
        instance_id.strip_prefix("ins-").unwrap_or(instance_id)
    )
}

/// The selector of the children (`status.selector`, the scale subresource's).
pub fn selector(set: &CvmInstanceSet) -> String {
    format!("{SET_LABEL}={}", set.name_any())
}

/// The child for `instance_id`, launched on `offering`: the template's spec in that
/// offering's zone, subnet, type and billing, adopting the instance and terminating it when
/// deleted. Owned by the set (controller, blockOwnerDeletion), so deleting the set deletes
/// every child, and each child's finalizer terminates its instance.
pub fn child(
    set: &CvmInstanceSet,
    offering: &LaunchOffering,
    instance_id: &str,
    fallback: bool,
) -> CvmInstance {
    let template = &set.spec.template;
    let mut labels: BTreeMap<String, String> = template.metadata.labels.clone().unwrap_or_default();
    labels.insert(SET_LABEL.into(), set.name_any());
    if fallback {
        labels.insert(FALLBACK_LABEL.into(), "true".into());
    }
    let mut spec = spec_on(&template.spec, offering);
    spec.instance_id = Some(instance_id.to_string());
    spec.deletion_policy = Some(DeletionPolicy::Delete);
    // A batch names its instances with an index suffix, and the host name pattern too: the
    // child does not govern either, so neither is reported as drift nor "corrected".
    spec.instance_name = None;
    spec.host_name = None;
    CvmInstance {
        metadata: ObjectMeta {
            name: Some(child_name(&set.name_any(), instance_id)),
            namespace: set.namespace(),
            labels: Some(labels),
            // Built from this template: up to date until the template changes.
            annotations: Some(BTreeMap::from([(
                TEMPLATE_HASH.to_string(),
                template_hash(set),
            )])),
            owner_references: Some(vec![owner_reference(set)]),
            // Born with the finalizer: its first reconcile has no write to make for it.
            finalizers: Some(vec![crate::api::FINALIZER.into()]),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

fn owner_reference(set: &CvmInstanceSet) -> OwnerReference {
    OwnerReference {
        api_version: CvmInstanceSet::api_version(&()).into(),
        kind: CvmInstanceSet::kind(&()).into(),
        name: set.name_any(),
        uid: set.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The UID of the CvmInstanceSet that controls `instance`, if one does.
pub fn controlling_set(instance: &CvmInstance) -> Option<&str> {
    instance
        .owner_references()
        .iter()
        .find(|r| {
            r.controller == Some(true)
                && r.kind == CvmInstanceSet::kind(&())
                && r.api_version == CvmInstanceSet::api_version(&())
        })
        .map(|r| r.uid.as_str())
}

/// How the planner sees `child` (its price is filled in when a scale-down goes by cost);
/// `template_hash` is the set's current one.
pub fn member(child: &CvmInstance, template_hash: &str) -> Member {
    let spec = &child.spec;
    let conditions = child
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    // Ready for the child's current spec: right after the set carried a template change to
    // it, its Ready still describes the spec before (the set is Ready again only once every
    // child has applied the change).
    let generation = child.meta().generation;
    let ready = conditions.iter().any(|c| {
        c.type_ == "Ready"
            && c.status == "True"
            && (generation.is_none() || c.observed_generation >= generation)
    });
    let failed = child
        .status
        .as_ref()
        .is_some_and(|s| s.instance_state.as_deref() == Some("LAUNCH_FAILED"));
    let vanished = conditions
        .iter()
        .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "InstanceNotFound");
    Member {
        name: child.name_any(),
        instance_id: spec.instance_id.clone(),
        zone: spec.zone.clone(),
        instance_type: spec.instance_type.clone(),
        billing: spec.billing.mode,
        fallback: child.labels().get(FALLBACK_LABEL).map(String::as_str) == Some("true"),
        ready,
        deleting: child.meta().deletion_timestamp.is_some(),
        delete_priority: child.annotations().contains_key(DELETE_PRIORITY),
        up_to_date: child.annotations().get(TEMPLATE_HASH).map(String::as_str)
            == Some(template_hash),
        lost: failed || vanished,
        created: child
            .meta()
            .creation_timestamp
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        hourly_price: parse_price(
            child
                .status
                .as_ref()
                .and_then(|s| s.hourly_price.as_deref()),
        ),
    }
}

/// Whether any of `members` has a machine (an instance ID) to terminate.
pub fn any_machine(members: &[Member]) -> bool {
    members.iter().any(|m| m.instance_id.is_some())
}

/// The instances of `members` as TerminateInstances needs them: the ID and the charge
/// type, which picks the call (one charge type per call).
pub fn instances_of(members: &[Member]) -> Vec<ToTerminate> {
    members
        .iter()
        .filter_map(|m| {
            Some(ToTerminate {
                instance_id: m.instance_id.clone()?,
                charge_type: m.billing.charge_type().into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_instance_id() {
        assert_eq!(child_name("web", "ins-abcd1234"), "web-abcd1234");
    }

    #[test]
    fn a_child_whose_instance_vanished_or_failed_is_lost() {
        use crate::controller::conditions::Health;
        let child = |status: serde_json::Value| -> CvmInstance {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "web-abcd1234"},
                "spec": crate::controller::step::table::spec(serde_json::json!({})),
                "status": status,
            }))
            .unwrap()
        };
        let now = Timestamp::UNIX_EPOCH;
        let with = |health: Health| serde_json::json!({"conditions": health.conditions(&[], Some(1), now)});
        let running = child(with(Health::ready("InstanceRunning", "")));
        assert!(member(&running, "h").ready && !member(&running, "h").lost);
        let vanished = child(with(Health::stalled("InstanceNotFound", "gone")));
        assert!(member(&vanished, "h").lost);
        let failed = child(serde_json::json!({"instanceState": "LAUNCH_FAILED"}));
        assert!(member(&failed, "h").lost);
        let quota = child(with(Health::stalled("LimitExceeded_InstanceQuota", "")));
        assert!(!member(&quota, "h").lost);
    }
}
