//! Template changes reaching the machines that already run: what a set writes to an
//! existing child when its template changes, as a pure function (`follow`).
//!
//! A child carries the fields a running machine can take (the CvmInstance controller's day-2
//! machinery then does the cloud work, restart and reimage classes only as the child's
//! `updatePolicy`, copied from the template, allows). Whatever else differs from the
//! template (a field admission keeps immutable on a CvmInstance, or one the set does not
//! carry) is left alone, and the child is out of date: it keeps the template hash it was
//! last brought up to date with, `status.updatedReplicas` does not count it, and it goes
//! first on scale-down. The offering fields (zone, subnet, instance type, billing) are the
//! set's choice per machine and `instanceName`/`hostName` are not the child's (see
//! `children::child`), so neither is ever written here.

use kube::ResourceExt;
use serde_json::{Map, Value, json};

use super::children::child;
use crate::api::{
    BillingMode, CvmInstance, CvmInstanceSet, CvmInstanceSetSpec, CvmInstanceSpec, FALLBACK_LABEL,
    LaunchOffering, Login, Network, SystemDisk, TEMPLATE_HASH,
};

/// The cloud's system disk size when a spec omits it (as admission's grow-only rule counts).
const DEFAULT_SYSTEM_DISK_GIB: i32 = 50;

/// What the current template asks of one child.
#[derive(Debug, Clone, PartialEq)]
pub struct Follow {
    /// A JSON merge patch for the child (guarded by its resourceVersion), or `None` when it
    /// already has everything it can take: a steady set writes nothing.
    pub patch: Option<Value>,
    /// Once patched, the child matches the template entirely (on its own offering).
    pub up_to_date: bool,
    /// What keeps it out of date: top-level spec fields, or `offering` when the set no
    /// longer offers its zone, subnet, instance type or billing.
    pub behind: Vec<String>,
}

/// The offering `child` runs on, as the set launched it.
pub fn offering_of(child: &CvmInstance) -> LaunchOffering {
    LaunchOffering {
        zone: child.spec.zone.clone(),
        subnet_id: child
            .spec
            .network
            .as_ref()
            .and_then(|n| n.subnet_id.clone()),
        instance_type: child.spec.instance_type.clone(),
        billing: child.spec.billing.mode,
    }
}

/// What `set`'s template (whose hash is `hash`) asks of `existing`.
pub fn follow(set: &CvmInstanceSet, existing: &CvmInstance, hash: &str) -> Follow {
    let offering = offering_of(existing);
    let fallback = existing.labels().get(FALLBACK_LABEL).map(String::as_str) == Some("true");
    let id = existing.spec.instance_id.clone().unwrap_or_default();
    // The child the set would make today for this same machine on this same offering.
    let wanted = child(set, &offering, &id, fallback);
    let mut spec = existing.spec.clone();
    carry_in_place(&wanted.spec, &mut spec);
    // Compared as values first: with 1,000 children and an unchanged template, every
    // reconcile asks this of each, and the JSON below is built only when something differs.
    let mut behind = if spec == wanted.spec {
        Vec::new()
    } else {
        differing_fields(&spec, &wanted.spec)
    };
    if !offered(&set.spec, &offering) {
        behind.push("offering".into());
    }
    let up_to_date = behind.is_empty();

    // Labels are only added or overwritten: the set cannot tell a label a person put on a
    // child from one an earlier template put there.
    let mut labels = existing.labels().clone();
    labels.extend(wanted.labels().clone());
    let mut annotations = existing.annotations().clone();
    if up_to_date {
        annotations.insert(TEMPLATE_HASH.into(), hash.into());
    }
    if spec == existing.spec
        && labels == *existing.labels()
        && annotations == *existing.annotations()
    {
        return Follow {
            patch: None,
            up_to_date,
            behind,
        };
    }
    let before = json!({
        "metadata": {"labels": existing.labels(), "annotations": existing.annotations()},
        "spec": existing.spec,
    });
    let after = json!({
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": spec,
    });
    let patch = merge_diff(&before, &after).map(|mut patch| {
        // The resourceVersion the decision was made on: a child changed meanwhile (or a
        // stale cache) gets 409, not a write made from an old view.
        patch["metadata"]["resourceVersion"] = json!(
            existing
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default()
        );
        patch
    });
    Follow {
        patch,
        up_to_date,
        behind,
    }
}

/// Copies into `spec` what of `wanted` a running machine takes in place: tags, security
/// groups, bandwidth, project, update policy, image (a reimage, as the policy allows), SSH
/// keys (a restart, as the policy allows) and disk sizes that grow.
fn carry_in_place(wanted: &CvmInstanceSpec, spec: &mut CvmInstanceSpec) {
    spec.tags = wanted.tags.clone();
    spec.project_id = wanted.project_id;
    spec.update_policy = wanted.update_policy;
    spec.image_id = wanted.image_id.clone();

    // Key IDs, while the login stays by keys: a switch to or from the image's own login is
    // not a key change, and is not carried.
    let without_keys = |l: Option<&Login>| Login {
        key_ids: None,
        ..l.cloned().unwrap_or_default()
    };
    if without_keys(spec.login.as_ref()) == without_keys(wanted.login.as_ref()) {
        spec.login = wanted.login.clone();
    }

    let mut network = spec.network.clone().unwrap_or_default();
    let wanted_network = wanted.network.clone().unwrap_or_default();
    network.security_group_ids = wanted_network.security_group_ids.clone();
    // The bandwidth only while both have a public IP: adding or removing one is immutable.
    if let (Some(ip), Some(wanted_ip)) = (network.public_ip.as_mut(), &wanted_network.public_ip) {
        ip.max_bandwidth_out_mbps = wanted_ip.max_bandwidth_out_mbps;
    }
    spec.network = (network != Network::default()).then_some(network);

    // Grow only: a smaller size in the template is refused on the child, so it is not sent.
    let size = |d: Option<&SystemDisk>| {
        d.and_then(|d| d.size_gib)
            .unwrap_or(DEFAULT_SYSTEM_DISK_GIB)
    };
    if let Some(wanted_size) = wanted.system_disk.as_ref().and_then(|d| d.size_gib)
        && wanted_size >= size(spec.system_disk.as_ref())
    {
        spec.system_disk
            .get_or_insert_with(SystemDisk::default)
            .size_gib = Some(wanted_size);
    }
    if let (Some(disks), Some(wanted_disks)) = (spec.data_disks.as_mut(), &wanted.data_disks)
        && disks.len() == wanted_disks.len()
    {
        for (disk, wanted_disk) in disks.iter_mut().zip(wanted_disks) {
            disk.size_gib = disk.size_gib.max(wanted_disk.size_gib);
        }
    }
}

/// The top-level spec fields in which `a` and `b` differ.
fn differing_fields(a: &CvmInstanceSpec, b: &CvmInstanceSpec) -> Vec<String> {
    let (a, b) = (serde_json::to_value(a), serde_json::to_value(b));
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) = (a, b) else {
        return vec!["spec".into()];
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| k.to_string())
        .collect()
}

/// Whether the set still launches on `offering`: its instance type and subnet are listed
/// (or are the template's), and a pay-as-you-go template has no spot machines.
pub fn offered(spec: &CvmInstanceSetSpec, offering: &LaunchOffering) -> bool {
    let template = &spec.template.spec;
    let policy = spec.offerings.clone().unwrap_or_default();
    let type_listed = if policy.instance_types.is_empty() {
        offering.instance_type == template.instance_type
    } else {
        policy.instance_types.contains(&offering.instance_type)
    };
    let place_listed = if policy.subnets.is_empty() {
        let subnet = template.network.as_ref().and_then(|n| n.subnet_id.as_ref());
        offering.zone == template.zone && offering.subnet_id.as_ref() == subnet
    } else {
        policy
            .subnets
            .iter()
            .any(|s| s.zone == offering.zone && offering.subnet_id.as_ref() == Some(&s.subnet_id))
    };
    let billing = !(template.billing.mode == BillingMode::PayAsYouGo
        && offering.billing == BillingMode::Spot);
    type_listed && place_listed && billing
}

/// The JSON merge patch (RFC 7386) that turns `before` into `after`: objects recursively,
/// `null` for a removed member, anything else whole. `None` when they are equal.
fn merge_diff(before: &Value, after: &Value) -> Option<Value> {
    if before == after {
        return None;
    }
    let (Value::Object(old), Value::Object(new)) = (before, after) else {
        return Some(after.clone());
    };
    let mut patch = Map::new();
    for (key, value) in new {
        let changed = match old.get(key) {
            Some(old_value) => merge_diff(old_value, value),
            None => Some(value.clone()),
        };
        if let Some(changed) = changed {
            patch.insert(key.clone(), changed);
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    Some(Value::Object(patch))
}

#[cfg(test)]
#[path = "follow_table.rs"]
mod table;
